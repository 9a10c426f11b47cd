-- The outbox relay's indexes, and the nightly best-products snapshots.

-- Dead letters, listed by admins and counted for the metrics.
CREATE INDEX outbox_dead ON outbox (outbox_id) WHERE status = 'DEAD';

-- Sales by payment time, for the best-products window.
CREATE INDEX orders_paid ON orders (paid_at) WHERE status = 'PAID';

-- One snapshot per KST day: top products by units sold in PAID orders over
-- [range_from, range_to), the three whole KST days before `day`. Recomputing a day replaces
-- its snapshot (same window, same answer), so the job is idempotent per day.
CREATE TABLE best_product_snapshots (
    day         date        NOT NULL,
    range_days  integer     NOT NULL,
    range_from  timestamptz NOT NULL,
    range_to    timestamptz NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT best_product_snapshots_pkey PRIMARY KEY (day),
    CONSTRAINT best_product_snapshots_range CHECK (range_from < range_to AND range_days > 0)
);

CREATE TABLE best_product_items (
    day        date    NOT NULL,
    rank       integer NOT NULL,
    product_id bigint  NOT NULL,
    name       text    NOT NULL,
    sold_qty   bigint  NOT NULL,
    CONSTRAINT best_product_items_pkey PRIMARY KEY (day, rank),
    CONSTRAINT best_product_items_day_fkey FOREIGN KEY (day)
        REFERENCES best_product_snapshots (day) ON DELETE CASCADE,
    CONSTRAINT best_product_items_product_fkey FOREIGN KEY (product_id) REFERENCES products (product_id),
    CONSTRAINT best_product_items_sold CHECK (sold_qty > 0)
);
