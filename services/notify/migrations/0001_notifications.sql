-- replaces: 0008
-- Notify's outbox: one row per message the office owes a citizen, from the intent to send
-- it to its last delivery status. The events on the notification stream are the truth
-- (NotificationQueued, NotificationSent / NotificationFailed, NotificationStatusChanged);
-- this table says what is due when and can be rebuilt from them.
--
-- state: queued (waiting for its turn or a retry), sending (an attempt began: recorded
-- before the call, so a crash leaves the row here and reconciliation decides from the
-- delivery statuses whether it went out), sent, failed (for good, with the reason).
CREATE TABLE notification_outbox (
    notification_id  text        PRIMARY KEY,
    seq              bigserial   NOT NULL,
    recipient        text        NOT NULL,          -- the citizen stream (a pseudonym)
    ticket           text,
    kind             text        NOT NULL,
    message          jsonb       NOT NULL,
    inbound_at       timestamptz,                   -- the citizen message it answers
    state            text        NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_at          timestamptz NOT NULL,
    leased_until     timestamptz,
    force_template   boolean     NOT NULL DEFAULT false,
    wamid            text,
    form             text,
    delivery         text        CHECK (delivery IN ('sent', 'delivered', 'read', 'failed')),
    error_code       integer,
    reason           text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE INDEX notification_outbox_due ON notification_outbox (next_at)
    WHERE state IN ('queued', 'sending');
CREATE INDEX notification_outbox_recipient ON notification_outbox (recipient, seq)
    WHERE state IN ('queued', 'sending');
CREATE INDEX notification_outbox_ticket ON notification_outbox (ticket);
CREATE INDEX notification_outbox_failed ON notification_outbox (updated_at)
    WHERE state = 'failed' OR delivery = 'failed';

-- The 24-hour window: each citizen's last message (by the time WhatsApp says it was sent).
CREATE TABLE whatsapp_contact (
    recipient        text        PRIMARY KEY,       -- the citizen stream (a pseudonym)
    last_inbound_at  timestamptz NOT NULL
);
