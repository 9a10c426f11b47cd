-- Golden-ticket events and the tickets issued for them.
--
-- Postgres is the source of truth for an event's rules; Redis holds a copy that is rebuilt from
-- here whenever it goes missing. Tickets arrive through the issuance-stream drain, which may
-- replay an entry: both unique constraints make a replay change nothing.

CREATE TABLE ticket_events (
    event_key       text        NOT NULL,
    name            text        NOT NULL,
    total_quantity  integer     NOT NULL,
    daily_limit     integer,
    start_at        timestamptz NOT NULL,
    end_at          timestamptz NOT NULL,
    is_active       boolean     NOT NULL DEFAULT true,
    -- Grows with every change, so a slow rebuild of the Redis copy never undoes a newer one.
    version         bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ticket_events_pkey PRIMARY KEY (event_key),
    CONSTRAINT ticket_events_key_format CHECK (event_key ~ '^[a-z0-9-]{1,64}$'),
    CONSTRAINT ticket_events_total_range CHECK (total_quantity BETWEEN 1 AND 10000000),
    CONSTRAINT ticket_events_daily_range CHECK (daily_limit IS NULL OR daily_limit BETWEEN 1 AND total_quantity),
    CONSTRAINT ticket_events_period CHECK (start_at < end_at)
);

CREATE INDEX ticket_events_window ON ticket_events (start_at, end_at) WHERE is_active;

CREATE TABLE tickets (
    ticket_id   uuid        NOT NULL,
    event_key   text        NOT NULL,
    user_id     bigint      NOT NULL,
    issued_at   timestamptz NOT NULL,
    -- When the drain wrote the row; issued_at is when Redis decided.
    persisted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tickets_pkey PRIMARY KEY (ticket_id),
    CONSTRAINT tickets_event_user_key UNIQUE (event_key, user_id),
    CONSTRAINT tickets_event_fkey FOREIGN KEY (event_key) REFERENCES ticket_events (event_key)
);

CREATE INDEX tickets_user ON tickets (user_id, issued_at);
