-- replaces: 0006
-- Who each request is for (a keyed hash of the NIK or family card), so that intake can
-- answer a second request for the same person and document with the open ticket instead
-- of giving a new one.
ALTER TABLE request_status ADD COLUMN subject_key text;
CREATE INDEX request_status_subject ON request_status (subject_key) WHERE subject_key IS NOT NULL;
