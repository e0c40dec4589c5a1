-- replaces: 0003
-- TRUNCATE bypasses row triggers; the log must survive it too.
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();
