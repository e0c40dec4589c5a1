-- replaces: 0001
-- The event store: one append-only table, the source of truth.
--
-- Positions are assigned by the appender while it holds a transaction-scoped advisory
-- lock (see shared/eventstore/store.py), so they are gapless and commit in position order:
-- a reader that reads "position > N" can never miss an event that commits later.
CREATE TABLE events (
    position        bigint      PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    stream_id       text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version >= 1),
    category        text        NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL DEFAULT 1,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- Optimistic concurrency is enforced by this constraint even for a writer that
    -- bypassed the appender; the appender checks first so a conflict is a typed error.
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_category_position ON events (category, position);
CREATE INDEX events_type_position ON events (event_type, position);
CREATE INDEX events_recorded_at ON events (recorded_at);

-- The log is append-only: forbid UPDATE and DELETE at the database level too.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % is not allowed', TG_OP;
END;
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();
