-- replaces: 0010
-- Signed HTTP webhooks for integrators (services/integrations, docs/WEBHOOKS.md).
--
-- One row per subscriber. `position` is the subscriber's cursor in the event store: every
-- public event at or below it has been delivered (or was not for this subscriber); the
-- dispatcher always sends the first public event after it, one at a time, and moves it only
-- on a 2xx. A failing subscriber keeps its cursor and counts attempts since `failing_since`;
-- after ADMINDUK_WEBHOOK_DEAD_LETTER_AFTER it is parked in state `dead_letter` until a person
-- re-drives it.
--
-- The secret is stored in clear: the dispatcher needs it to compute each HMAC signature
-- (a hash would not do). Protect this table like the rest of the office's database.
CREATE TABLE webhook_subscriptions (
    id                 text        PRIMARY KEY,              -- wh_<random>
    url                text        NOT NULL CHECK (url ~* '^https?://'),
    secret             text        NOT NULL,                 -- whsec_<base64>
    event_types        text[]      NOT NULL DEFAULT '{}',    -- empty: every public type
    description        text        NOT NULL DEFAULT '',
    state              text        NOT NULL DEFAULT 'active'
                       CHECK (state IN ('active', 'dead_letter', 'disabled')),
    position           bigint      NOT NULL DEFAULT 0 CHECK (position >= 0),
    failing_since      timestamptz,                          -- first failure of the current streak
    next_attempt_at    timestamptz,                          -- NULL: due now
    attempts           integer     NOT NULL DEFAULT 0,       -- failed attempts in the streak
    last_error         text,
    last_status        integer,                              -- HTTP status of the last attempt
    last_delivered_at  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by         text        NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_subscriptions_due ON webhook_subscriptions (next_attempt_at)
    WHERE state = 'active';

-- The event a subscriber was stuck on when it was parked, for a person to inspect. At most
-- one is open (resolved_at NULL) per subscriber: nothing more is sent until re-drive.
CREATE TABLE webhook_dead_letters (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id   text        NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id          text        NOT NULL,                  -- the public event id (webhook-id)
    position          bigint      NOT NULL,
    event_type        text        NOT NULL,
    first_failed_at   timestamptz NOT NULL,
    dead_at           timestamptz NOT NULL,
    last_error        text        NOT NULL,
    last_status       integer,
    attempts          integer     NOT NULL,
    resolved_at       timestamptz,
    resolution        text        CHECK (resolution IN ('redriven', 'enabled'))
);

CREATE UNIQUE INDEX webhook_dead_letters_open ON webhook_dead_letters (subscription_id)
    WHERE resolved_at IS NULL;
CREATE INDEX webhook_dead_letters_by_subscription ON webhook_dead_letters (subscription_id, id);
