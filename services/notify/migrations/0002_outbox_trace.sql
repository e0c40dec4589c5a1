-- replaces: 0011
-- The trace context of the event that asked for each message, so that the worker's send
-- continues the request's trace (and the NotificationSent it records belongs to it).
ALTER TABLE notification_outbox ADD COLUMN trace jsonb NOT NULL DEFAULT '{}'::jsonb;
