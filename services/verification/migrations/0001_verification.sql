-- replaces: 0005
-- Verification: officers' accounts, and the read models of the officers' queue and of
-- complaints. The read models are projections of the request and complaint streams,
-- rebuildable from the log; officers' accounts are access control, kept as plain rows.

CREATE TABLE officers (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('operator', 'supervisor', 'admin')),
    kecamatan   text[]      NOT NULL DEFAULT '{}',
    -- SHA-256 of the bearer token: tokens are 256 random bits, so a fast hash is enough
    -- and a stolen table does not give working tokens.
    token_hash  text        NOT NULL UNIQUE,
    disabled    boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL
);

CREATE TABLE verification_requests (
    ticket          text        PRIMARY KEY,
    doc_type        text        NOT NULL,
    kecamatan_code  text,
    state           text        NOT NULL,
    -- Keyed hash of who the request is for (NIK or family card), to find duplicates.
    subject_key     text,
    flags           jsonb       NOT NULL DEFAULT '[]',
    attachments     integer     NOT NULL DEFAULT 0,
    claimed_by      text,
    claimed_by_name text,
    claimed_at      timestamptz,
    returned_to     text,
    received_at     timestamptz NOT NULL,
    amended_at      timestamptz,
    first_action_at timestamptz,
    decided_at      timestamptz,
    last_event_at   timestamptz NOT NULL,
    version         integer     NOT NULL,
    position        bigint      NOT NULL
);

CREATE INDEX verification_requests_queue
    ON verification_requests (state, kecamatan_code, doc_type, received_at);
CREATE INDEX verification_requests_subject
    ON verification_requests (subject_key)
    WHERE state IN ('received', 'in_queue', 'claimed', 'changes_requested', 'amended');

CREATE TABLE complaints (
    ticket          text        PRIMARY KEY,
    related_ticket  text,
    kecamatan_code  text,
    state           text        NOT NULL CHECK (state IN ('open', 'answered')),
    received_at     timestamptz NOT NULL,
    answered_at     timestamptz,
    answered_by     text,
    version         integer     NOT NULL,
    position        bigint      NOT NULL
);

CREATE INDEX complaints_open ON complaints (state, received_at);
