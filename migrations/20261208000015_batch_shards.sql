-- A first-come coupon batch spread over `shards` buckets, like an event (engine::leases). A
-- batch's coupons are numbered by position (the code at position n is the n-th code), so its
-- buckets lease positions, not only a count: `positions` is a bucket's leased positions as
-- half-open ranges [from, to), flattened (from1, to1, from2, to2 …) in the order leased, its
-- n-th issue taking the n-th position they list; on the batch's own row (the pool),
-- `free_positions` lists the positions its buckets handed back and nobody leased again. The
-- pool's next unleased position is its `reserved` plus the length of `free_positions`. Both
-- are empty for every other scope. Set at creation only, SELF batches only.
ALTER TABLE coupon_batches
    ADD COLUMN shards smallint NOT NULL DEFAULT 1,
    ADD CONSTRAINT coupon_batches_shards CHECK (shards BETWEEN 1 AND 16);
ALTER TABLE scope_reservations
    ADD COLUMN positions bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN free_positions bigint[] NOT NULL DEFAULT '{}';
