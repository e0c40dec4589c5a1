-- replaces: 0007
-- Issuance's work list: one row per verified request, from its schedule to its end. The
-- events on the request stream are the truth; this table says what is due when (the SIAK
-- hand-off with its retries, the promise check, the ready day) and can be rebuilt from them.
CREATE TABLE issuance (
    ticket           text        PRIMARY KEY,
    idempotency_key  text        NOT NULL UNIQUE,
    doc_type         text        NOT NULL,
    channel          text        NOT NULL CHECK (channel IN ('office', 'whatsapp')),
    promised_on      date        NOT NULL,
    state            text        NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'issued', 'ready', 'closed', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    document_number  text        UNIQUE,
    ready_on         date,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX issuance_due ON issuance (next_attempt_at) WHERE state = 'queued';
CREATE INDEX issuance_open ON issuance (state) WHERE state IN ('queued', 'issued');
