-- replaces: 0007
-- What #STATUS# adds after verification: the day the document can be collected, and
-- whether the one-question survey waits for this request's answer.
-- (The old global migration 0007 added these columns together with issuance's table, so
-- issuance's 0001 replaces 0007 too.)
ALTER TABLE request_status
    ADD COLUMN promised_on date,
    ADD COLUMN survey_pending boolean NOT NULL DEFAULT false;
