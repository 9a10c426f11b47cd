-- A bucket's share of its event's daily limit (engine::leases), leased like `reserved`: the
-- bucket issues no more than this in any KST day. On the event's own row (the pool), the sum
-- leased to its buckets, never above the daily limit. 0 for every other scope.
ALTER TABLE scope_reservations ADD COLUMN daily_reserved bigint NOT NULL DEFAULT 0;
