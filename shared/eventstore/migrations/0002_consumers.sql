-- replaces: 0002
-- What consumers and the relay need beside the log.

-- A consumer's inbox: one row per processed message, written in the same transaction as
-- the consumer's own effects, so a redelivered message finds it and does nothing.
CREATE TABLE inbox (
    consumer      text        NOT NULL,
    message_id    text        NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- Positions of tailing readers: the outbox relay, projections.
CREATE TABLE checkpoints (
    name        text        PRIMARY KEY,
    position    bigint      NOT NULL CHECK (position >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Messages a consumer gave up on, for a person to inspect and re-drive.
CREATE TABLE dead_letters (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer         text        NOT NULL,
    message_id       text        NOT NULL,
    subject          text        NOT NULL,
    event_type       text,
    stream_id        text,
    position         bigint,
    payload          bytea       NOT NULL,
    headers          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error            text        NOT NULL,
    deliveries       integer     NOT NULL,
    status           text        NOT NULL DEFAULT 'dead'
                     CHECK (status IN ('dead', 'redrive', 'redriven', 'discarded')),
    first_failed_at  timestamptz NOT NULL DEFAULT now(),
    last_failed_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz,
    CONSTRAINT dead_letters_once UNIQUE (consumer, message_id)
);

CREATE INDEX dead_letters_open ON dead_letters (consumer, status) WHERE status IN ('dead', 'redrive');
