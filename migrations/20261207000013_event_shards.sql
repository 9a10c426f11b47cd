-- An event spread over `shards` buckets, each a Redis copy of its own (on its own cluster
-- master when the cluster has enough), leasing quantity from the event's pool: the event's own
-- scope_reservations row, whose `reserved` is then what all its buckets hold leased. One shard
-- is one copy, as before. Set at creation only: a user's bucket is a hash of the id modulo it.
ALTER TABLE ticket_events
    ADD COLUMN shards smallint NOT NULL DEFAULT 1,
    ADD CONSTRAINT ticket_events_shards CHECK (shards BETWEEN 1 AND 16);
