-- replaces: 0004
-- Read model: each request's status as the citizen sees it (#STATUS#). Built by intake's
-- projection consumer from the request streams; rebuildable from the log.
CREATE TABLE request_status (
    ticket          text        PRIMARY KEY,
    citizen         text        NOT NULL,
    doc_type        text        NOT NULL,
    kecamatan_code  text,
    status          text        NOT NULL,
    received_at     timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    position        bigint      NOT NULL
);

CREATE INDEX request_status_citizen ON request_status (citizen);
