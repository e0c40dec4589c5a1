-- replaces: 0009
-- Crypto-shredding: each citizen's data key, with which the personal fields of their events
-- are sealed (see shared/keyring.py). Erasing a citizen's data sets wrapped_key to NULL:
-- every event sealed with that key then reads as placeholders, wherever it was copied.
--
-- Keys are stored wrapped (AES-256-GCM) with a key-encryption key derived from the office's
-- secret key, which is never in the database: a dump of it alone opens nothing.
CREATE TABLE citizen_keys (
    key_id       uuid        PRIMARY KEY,
    citizen      text        NOT NULL,          -- the citizen stream (a keyed pseudonym)
    wrapped_key  bytea,                         -- NULL once erased
    created_at   timestamptz NOT NULL DEFAULT now(),
    erased_at    timestamptz,
    CONSTRAINT citizen_keys_erased_has_no_key
        CHECK ((erased_at IS NULL) = (wrapped_key IS NOT NULL))
);

-- One live key per citizen: concurrent first messages agree on it. An erased citizen who
-- writes again gets a new key; what was erased stays erased.
CREATE UNIQUE INDEX citizen_keys_live ON citizen_keys (citizen) WHERE erased_at IS NULL;
