-- Marketing campaigns of small-business owners (the event-marketing seed). A campaign's prize
-- is a golden-ticket event or a first-come coupon batch on the issuance engine, created in the
-- transaction that approves the campaign: the prize columns are set exactly when the status
-- leaves DRAFT.
CREATE TYPE campaign_objective AS ENUM ('NEW_CUSTOMER', 'REVISIT', 'SALES_INCREASE', 'BRAND_AWARENESS');
-- COMPLETED is never stored: an APPROVED or ACTIVE campaign whose period ended (KST) reads as
-- COMPLETED (see store::campaigns).
CREATE TYPE campaign_status AS ENUM ('DRAFT', 'APPROVED', 'ACTIVE', 'COMPLETED');
CREATE TYPE prize_kind AS ENUM ('GOLDEN_TICKET', 'COUPON');
CREATE TYPE campaign_job_kind AS ENUM ('RECOMMENDATION', 'IMAGES');
CREATE TYPE campaign_job_status AS ENUM ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED');
CREATE TYPE banner_style AS ENUM ('simple', 'fancy', 'trendy');
CREATE TYPE channel_type AS ENUM
    ('URINEIGHBOR_TV', 'RINGO_BIZ', 'GENIE_TV', 'INSTAGRAM', 'NAVER_BLOG', 'KAKAO_CHANNEL');
CREATE TYPE distribution_status AS ENUM ('SUCCESS', 'FAILED');

CREATE TABLE campaigns (
    campaign_id           uuid        PRIMARY KEY,
    owner_id              bigint      NOT NULL,
    objective             campaign_objective NOT NULL,
    store_name            text        NOT NULL,
    industry              text        NOT NULL,
    region                text        NOT NULL,
    address               text,
    status                campaign_status NOT NULL DEFAULT 'DRAFT',
    -- The chosen recommendation, as the owner edited it.
    title                 text,
    prize_name            text,
    participation_method  text,
    estimated_cost        bigint,
    estimated_participants bigint,
    estimated_roi         double precision,
    prize_kind            prize_kind,
    prize_quantity        integer,
    start_date            date,
    end_date              date,
    -- The chosen banner and its edited content.
    selected_image_id     uuid,
    edited_content        jsonb,
    -- The prize on the engine.
    event_key             text        REFERENCES ticket_events (event_key),
    coupon_batch_id       bigint      REFERENCES coupon_batches (batch_id),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    published_at          timestamptz,
    CONSTRAINT campaigns_status_stored CHECK (status <> 'COMPLETED'),
    CONSTRAINT campaigns_period_check CHECK (start_date <= end_date),
    -- No campaign past DRAFT without its prize on the engine.
    CONSTRAINT campaigns_prize_when_approved CHECK (
        status = 'DRAFT'
        OR (prize_kind = 'GOLDEN_TICKET' AND event_key IS NOT NULL)
        OR (prize_kind = 'COUPON' AND coupon_batch_id IS NOT NULL))
);
CREATE INDEX campaigns_owner_created ON campaigns (owner_id, created_at DESC);
CREATE INDEX campaigns_status_created ON campaigns (status, created_at DESC);

-- Recommendation and banner jobs. The row is the truth (status, progress, result, lease); an
-- apalis task in queue 'campaign-jobs' only says "run job X" and is pushed in the transaction
-- that writes the row.
CREATE TABLE campaign_jobs (
    job_id        uuid        PRIMARY KEY,
    campaign_id   uuid        NOT NULL REFERENCES campaigns (campaign_id),
    kind          campaign_job_kind NOT NULL,
    status        campaign_job_status NOT NULL DEFAULT 'PENDING',
    progress      integer     NOT NULL DEFAULT 0,
    result        jsonb,
    error         text,
    attempts      integer     NOT NULL DEFAULT 0,
    lease_owner   text,
    lease_until   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaign_jobs_progress_check CHECK (progress BETWEEN 0 AND 100)
);
CREATE INDEX campaign_jobs_campaign ON campaign_jobs (campaign_id, kind, created_at DESC);
CREATE INDEX campaign_jobs_leased ON campaign_jobs (lease_until) WHERE status = 'PROCESSING';

-- Rendered banners (PNG), served under /api/events/images/{imageId}. Kept in Postgres so every
-- api process serves every image and a backup keeps them.
CREATE TABLE campaign_images (
    image_id     uuid        PRIMARY KEY,
    campaign_id  uuid        NOT NULL REFERENCES campaigns (campaign_id),
    style        banner_style NOT NULL,
    png          bytea       NOT NULL,
    width        integer     NOT NULL,
    height       integer     NOT NULL,
    -- The generated banner this one re-renders with edited content, if any.
    source_id    uuid        REFERENCES campaign_images (image_id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_images_campaign ON campaign_images (campaign_id);

-- What each channel answered when the campaign was distributed to it.
CREATE TABLE campaign_channels (
    campaign_id      uuid        NOT NULL REFERENCES campaigns (campaign_id),
    channel_type     channel_type NOT NULL,
    status           distribution_status NOT NULL,
    settings         jsonb       NOT NULL DEFAULT '{}',
    distribution_id  text,
    estimated_reach  bigint,
    error            text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, channel_type)
);
