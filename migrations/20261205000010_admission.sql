-- The waiting room (admission gate) of a golden-ticket event: its settings and its live state.
-- Off (admission_enabled = false) means no room: issuing as before. When on, the three
-- settings are set. admission_state is the admin's live control: RUNNING admits at
-- admit_per_second, PAUSED admits nobody, CLOSED admits nobody and takes no new joins.
ALTER TABLE ticket_events
    ADD COLUMN admission_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN prequeue_opens_at timestamptz,
    ADD COLUMN admit_per_second integer,
    ADD COLUMN pass_ttl_seconds integer,
    ADD COLUMN admission_state text NOT NULL DEFAULT 'RUNNING',
    ADD CONSTRAINT ticket_events_admission_set CHECK (
        NOT admission_enabled
        OR (prequeue_opens_at IS NOT NULL AND admit_per_second IS NOT NULL AND pass_ttl_seconds IS NOT NULL)),
    ADD CONSTRAINT ticket_events_admit_rate CHECK (admit_per_second IS NULL OR admit_per_second BETWEEN 1 AND 1000000),
    ADD CONSTRAINT ticket_events_pass_ttl CHECK (pass_ttl_seconds IS NULL OR pass_ttl_seconds BETWEEN 1 AND 86400),
    ADD CONSTRAINT ticket_events_admission_state CHECK (admission_state IN ('RUNNING', 'PAUSED', 'CLOSED'));
