-- The waiting room of a first-come (SELF) coupon batch: the same settings and live state as a
-- golden-ticket event's (20261205000010_admission.sql).
ALTER TABLE coupon_batches
    ADD COLUMN admission_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN prequeue_opens_at timestamptz,
    ADD COLUMN admit_per_second integer,
    ADD COLUMN pass_ttl_seconds integer,
    ADD COLUMN admission_state text NOT NULL DEFAULT 'RUNNING',
    ADD CONSTRAINT coupon_batches_admission_set CHECK (
        NOT admission_enabled
        OR (prequeue_opens_at IS NOT NULL AND admit_per_second IS NOT NULL AND pass_ttl_seconds IS NOT NULL)),
    ADD CONSTRAINT coupon_batches_admit_rate CHECK (admit_per_second IS NULL OR admit_per_second BETWEEN 1 AND 1000000),
    ADD CONSTRAINT coupon_batches_pass_ttl CHECK (pass_ttl_seconds IS NULL OR pass_ttl_seconds BETWEEN 1 AND 86400),
    ADD CONSTRAINT coupon_batches_admission_state CHECK (admission_state IN ('RUNNING', 'PAUSED', 'CLOSED'));
