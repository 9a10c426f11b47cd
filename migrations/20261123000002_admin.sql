-- The admin domain: marketing events, coupon inventories and their batches, the codes of a
-- batch, the background jobs that make those codes, and the users and products of the shop.
--
-- Statuses are Postgres enums, so a row can never hold a value the API does not know.

CREATE TYPE event_status AS ENUM ('READY', 'ONGOING', 'COMPLETED', 'DISABLED');
CREATE TYPE inventory_status AS ENUM ('READY', 'ONGOING', 'END');
CREATE TYPE batch_status AS ENUM ('PENDING', 'READY', 'DISABLED');
CREATE TYPE issue_type AS ENUM ('SELF', 'MAPPED');
CREATE TYPE discount_type AS ENUM ('PERCENT', 'AMOUNT');
CREATE TYPE job_type AS ENUM ('COUPON_GENERATION', 'PARTNER_COUPON_UPLOAD');
CREATE TYPE job_status AS ENUM ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED');
CREATE TYPE code_status AS ENUM ('AVAILABLE', 'ISSUED', 'USED', 'EXPIRED');
CREATE TYPE user_channel AS ENUM ('WEB', 'APP', 'OFFLINE');
CREATE TYPE product_status AS ENUM ('ON_SALE', 'SOLD_OUT', 'HIDDEN');

CREATE TABLE events (
    event_id     bigint       GENERATED ALWAYS AS IDENTITY,
    event_name   text         NOT NULL,
    description  text         NOT NULL DEFAULT '',
    from_at      timestamptz  NOT NULL,
    until_at     timestamptz  NOT NULL,
    event_status event_status NOT NULL,
    created_by   text         NOT NULL,
    updated_by   text         NOT NULL,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    updated_at   timestamptz  NOT NULL DEFAULT now(),
    -- Deletion is soft: inventories and their codes keep pointing here.
    deleted_at   timestamptz,
    CONSTRAINT events_pkey PRIMARY KEY (event_id),
    CONSTRAINT events_period CHECK (from_at < until_at)
);

-- At most one live (not final, not deleted) event per name; races end in a unique violation
-- that the repo turns into DUPLICATE_EVENT.
CREATE UNIQUE INDEX events_live_name_key ON events (event_name)
    WHERE deleted_at IS NULL AND event_status IN ('READY', 'ONGOING');
CREATE INDEX events_created ON events (created_at) WHERE deleted_at IS NULL;

CREATE TABLE coupon_inventories (
    inventory_id      bigint           GENERATED ALWAYS AS IDENTITY,
    event_id          bigint           NOT NULL,
    inventory_name    text             NOT NULL,
    usable_from_at    timestamptz      NOT NULL,
    usable_until_at   timestamptz      NOT NULL,
    total_count       integer          NOT NULL,
    inventory_status  inventory_status NOT NULL,
    discount_type     discount_type,
    discount_value    bigint,
    max_discount      bigint,
    -- The last batch number handed out; bumped under the row lock, so numbers never repeat.
    last_batch_number integer          NOT NULL DEFAULT 0,
    created_by        text             NOT NULL,
    updated_by        text             NOT NULL,
    created_at        timestamptz      NOT NULL DEFAULT now(),
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    CONSTRAINT coupon_inventories_pkey PRIMARY KEY (inventory_id),
    CONSTRAINT coupon_inventories_event_fkey FOREIGN KEY (event_id) REFERENCES events (event_id),
    CONSTRAINT coupon_inventories_period CHECK (usable_from_at < usable_until_at),
    CONSTRAINT coupon_inventories_total_range CHECK (total_count BETWEEN 1 AND 10000000),
    CONSTRAINT coupon_inventories_discount CHECK (
        (discount_type IS NULL AND discount_value IS NULL AND max_discount IS NULL)
        OR (discount_type = 'PERCENT' AND discount_value BETWEEN 1 AND 100
            AND (max_discount IS NULL OR max_discount >= 1))
        OR (discount_type = 'AMOUNT' AND discount_value >= 1 AND max_discount IS NULL))
);

CREATE INDEX coupon_inventories_event ON coupon_inventories (event_id);

CREATE TABLE coupon_batches (
    batch_id       bigint       GENERATED ALWAYS AS IDENTITY,
    inventory_id   bigint       NOT NULL,
    batch_number   integer      NOT NULL,
    batch_name     text         NOT NULL,
    issue_count    integer      NOT NULL,
    issue_type     issue_type   NOT NULL,
    daily_limit    integer,
    valid_from_at  timestamptz  NOT NULL,
    valid_until_at timestamptz  NOT NULL,
    batch_status   batch_status NOT NULL,
    -- Codes of this batch that count: rows with seq < code_count. A job raises it only when it
    -- completes, in the same transaction as its last rows, so the rows of a cancelled, failed or
    -- still running job are never visible or usable (they are deleted afterwards).
    code_count     integer      NOT NULL DEFAULT 0,
    created_by     text         NOT NULL,
    updated_by     text         NOT NULL,
    created_at     timestamptz  NOT NULL DEFAULT now(),
    updated_at     timestamptz  NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    CONSTRAINT coupon_batches_pkey PRIMARY KEY (batch_id),
    CONSTRAINT coupon_batches_inventory_fkey FOREIGN KEY (inventory_id)
        REFERENCES coupon_inventories (inventory_id),
    CONSTRAINT coupon_batches_number_key UNIQUE (inventory_id, batch_number),
    CONSTRAINT coupon_batches_period CHECK (valid_from_at < valid_until_at),
    CONSTRAINT coupon_batches_count_range CHECK (issue_count BETWEEN 1 AND 10000000),
    CONSTRAINT coupon_batches_daily_range CHECK (daily_limit IS NULL OR daily_limit BETWEEN 1 AND issue_count),
    CONSTRAINT coupon_batches_codes_range CHECK (code_count BETWEEN 0 AND issue_count)
);

-- The codes of every batch. Written by COPY in large chunks, so it carries no foreign key (a
-- lookup per row would halve the rate); the job checks the batch before it writes. `seq` is the
-- code's position in its batch: generated codes are a keyed permutation of (batch_id, seq).
CREATE TABLE coupon_codes (
    batch_id bigint      NOT NULL,
    seq      integer     NOT NULL,
    code     text        COLLATE "C" NOT NULL,
    status   code_status NOT NULL DEFAULT 'AVAILABLE',
    CONSTRAINT coupon_codes_pkey PRIMARY KEY (batch_id, seq),
    -- Unique by construction for generated codes; this guards partner codes and everything else.
    CONSTRAINT coupon_codes_code_key UNIQUE (code)
);

-- Job ids are snowflake-style decimals: milliseconds since 2025-01-01 UTC, then 22 bits of a
-- sequence, so they sort by creation and never repeat.
CREATE SEQUENCE coupon_jobs_seq;

CREATE TABLE coupon_jobs (
    job_id          bigint      NOT NULL DEFAULT (
        ((floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1735689600000) << 22)
        | (nextval('coupon_jobs_seq') & 4194303)),
    job_type        job_type    NOT NULL,
    batch_id        bigint      NOT NULL,
    job_status      job_status  NOT NULL DEFAULT 'PENDING',
    total           integer     NOT NULL,
    processed       integer     NOT NULL DEFAULT 0,
    message         text        NOT NULL,
    -- The per-line report of an upload.
    result          jsonb,
    -- Which CODE_SECRET made the codes: a worker with another secret never resumes the job.
    key_fingerprint text,
    -- The worker holding the job, until when; an expired lease means that worker is gone.
    lease_owner     text,
    lease_until     timestamptz,
    -- How many workers took the job; past a limit it fails instead of being taken again.
    attempts        integer     NOT NULL DEFAULT 0,
    requeued_at     timestamptz,
    requested_by    text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    -- Cleared once the rows of a cancelled or failed job are deleted.
    needs_cleanup   boolean     NOT NULL DEFAULT false,
    CONSTRAINT coupon_jobs_pkey PRIMARY KEY (job_id),
    CONSTRAINT coupon_jobs_batch_fkey FOREIGN KEY (batch_id) REFERENCES coupon_batches (batch_id),
    CONSTRAINT coupon_jobs_progress CHECK (processed BETWEEN 0 AND total)
);

-- One live job per batch, also when two requests race.
CREATE UNIQUE INDEX coupon_jobs_live_batch_key ON coupon_jobs (batch_id)
    WHERE job_status IN ('PENDING', 'IN_PROGRESS');
CREATE INDEX coupon_jobs_created ON coupon_jobs (created_at);
CREATE INDEX coupon_jobs_lease ON coupon_jobs (lease_until) WHERE job_status = 'IN_PROGRESS';
CREATE INDEX coupon_jobs_cleanup ON coupon_jobs (job_id) WHERE needs_cleanup;

-- The CSV an upload job works on, kept until the job ends.
CREATE TABLE coupon_job_uploads (
    job_id bigint NOT NULL,
    body   bytea  NOT NULL,
    CONSTRAINT coupon_job_uploads_pkey PRIMARY KEY (job_id),
    CONSTRAINT coupon_job_uploads_job_fkey FOREIGN KEY (job_id) REFERENCES coupon_jobs (job_id)
        ON DELETE CASCADE
);

CREATE TABLE users (
    user_id    bigint       GENERATED ALWAYS AS IDENTITY,
    name       text         NOT NULL,
    email      text,
    channel    user_channel NOT NULL DEFAULT 'WEB',
    created_at timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (user_id),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE products (
    product_id  bigint         GENERATED ALWAYS AS IDENTITY,
    name        text           NOT NULL,
    description text           NOT NULL DEFAULT '',
    price       bigint         NOT NULL,
    stock       integer        NOT NULL,
    status      product_status NOT NULL DEFAULT 'ON_SALE',
    images      text[]         NOT NULL DEFAULT '{}',
    created_at  timestamptz    NOT NULL DEFAULT now(),
    updated_at  timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT products_pkey PRIMARY KEY (product_id),
    CONSTRAINT products_price_range CHECK (price >= 0),
    CONSTRAINT products_stock_range CHECK (stock >= 0)
);
