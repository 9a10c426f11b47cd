-- The drain writes tens of thousands of issue rows per statement. A foreign key checks every row
-- on its own (one lookup and one row lock of the parent per row: about a third of the cost of
-- writing a ticket), although a batch names one scope or a handful. The same rule is kept here
-- once per statement instead, for the two tables the drain writes:
--
--   tickets.event_key       → ticket_events.event_key
--   coupon_issues.batch_id  → coupon_batches.batch_id
--
-- * inserting child rows: the parents they name are share-locked (FOR KEY SHARE, as a foreign key
--   does) and all must exist, or the statement fails with foreign_key_violation under the old
--   constraint's name;
-- * a child row's key, and a parent row's key, never change;
-- * deleting or truncating a parent that still has child rows fails with foreign_key_violation.
-- (Events and batches are soft-deleted; nothing deletes these parents today.)

ALTER TABLE tickets DROP CONSTRAINT tickets_event_fkey;
ALTER TABLE coupon_issues DROP CONSTRAINT coupon_issues_batch_fkey;

-- TG_ARGV: parent table, parent key column, child key column, constraint name.
CREATE FUNCTION statement_key_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing boolean;
BEGIN
    EXECUTE format(
        'SELECT (SELECT count(DISTINCT %3$I) FROM new_rows)
              > (SELECT count(*) FROM (SELECT 1 FROM %1$I WHERE %2$I IN (SELECT %3$I FROM new_rows)
                                       FOR KEY SHARE) p)',
        TG_ARGV[0], TG_ARGV[1], TG_ARGV[2]) INTO missing;
    IF missing THEN
        RAISE EXCEPTION 'insert on table "%" violates foreign key constraint "%"', TG_TABLE_NAME, TG_ARGV[3]
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[3], TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END
$$;

-- TG_ARGV: child table, child key column, parent key column, constraint name.
CREATE FUNCTION statement_key_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    referenced boolean;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %1$I)', TG_ARGV[0]) INTO referenced;
    ELSE
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %1$I WHERE %2$I IN (SELECT %3$I FROM old_rows))',
            TG_ARGV[0], TG_ARGV[1], TG_ARGV[2]) INTO referenced;
    END IF;
    IF referenced THEN
        RAISE EXCEPTION '% on table "%" violates foreign key constraint "%" on table "%"',
            lower(TG_OP), TG_TABLE_NAME, TG_ARGV[3], TG_ARGV[0]
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[3], TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION key_is_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the key % of table "%" never changes', TG_ARGV[0], TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
END
$$;

CREATE TRIGGER tickets_event_fkey AFTER INSERT ON tickets
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION statement_key_inserted('ticket_events', 'event_key', 'event_key', 'tickets_event_fkey');
CREATE TRIGGER tickets_event_fixed BEFORE UPDATE OF event_key ON tickets
    FOR EACH ROW WHEN (OLD.event_key IS DISTINCT FROM NEW.event_key)
    EXECUTE FUNCTION key_is_immutable('event_key');
CREATE TRIGGER ticket_events_referenced AFTER DELETE ON ticket_events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION statement_key_deleted('tickets', 'event_key', 'event_key', 'tickets_event_fkey');
CREATE TRIGGER ticket_events_truncated BEFORE TRUNCATE ON ticket_events
    FOR EACH STATEMENT
    EXECUTE FUNCTION statement_key_deleted('tickets', 'event_key', 'event_key', 'tickets_event_fkey');
CREATE TRIGGER ticket_events_key_fixed BEFORE UPDATE OF event_key ON ticket_events
    FOR EACH ROW WHEN (OLD.event_key IS DISTINCT FROM NEW.event_key)
    EXECUTE FUNCTION key_is_immutable('event_key');

CREATE TRIGGER coupon_issues_batch_fkey AFTER INSERT ON coupon_issues
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION statement_key_inserted('coupon_batches', 'batch_id', 'batch_id', 'coupon_issues_batch_fkey');
CREATE TRIGGER coupon_issues_batch_fixed BEFORE UPDATE OF batch_id ON coupon_issues
    FOR EACH ROW WHEN (OLD.batch_id IS DISTINCT FROM NEW.batch_id)
    EXECUTE FUNCTION key_is_immutable('batch_id');
CREATE TRIGGER coupon_batches_referenced AFTER DELETE ON coupon_batches
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION statement_key_deleted('coupon_issues', 'batch_id', 'batch_id', 'coupon_issues_batch_fkey');
CREATE TRIGGER coupon_batches_truncated BEFORE TRUNCATE ON coupon_batches
    FOR EACH STATEMENT
    EXECUTE FUNCTION statement_key_deleted('coupon_issues', 'batch_id', 'batch_id', 'coupon_issues_batch_fkey');
CREATE TRIGGER coupon_batches_key_fixed BEFORE UPDATE OF batch_id ON coupon_batches
    FOR EACH ROW WHEN (OLD.batch_id IS DISTINCT FROM NEW.batch_id)
    EXECUTE FUNCTION key_is_immutable('batch_id');
