-- The waiting room's optional cap on passes given and neither used nor expired: the outflow
-- admits at admit_per_second only while fewer than max_unused_passes are outstanding. NULL or 0
-- is no cap.
ALTER TABLE ticket_events
    ADD COLUMN max_unused_passes integer,
    ADD CONSTRAINT ticket_events_max_unused CHECK (max_unused_passes IS NULL OR max_unused_passes BETWEEN 0 AND 1000000);
ALTER TABLE coupon_batches
    ADD COLUMN max_unused_passes integer,
    ADD CONSTRAINT coupon_batches_max_unused CHECK (max_unused_passes IS NULL OR max_unused_passes BETWEEN 0 AND 1000000);
