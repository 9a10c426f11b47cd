-- Orders, their lines, and the outbox of events for the data platform.
--
-- Rows are locked in one global order by every transaction that touches several of them
-- (order → products by id → coupon issue → wallet), so concurrent orders, payments and expiries
-- cannot deadlock.

CREATE TYPE order_status AS ENUM ('NOT_PAID', 'PAID', 'FAILED');

CREATE TABLE orders (
    order_id        bigint       GENERATED ALWAYS AS IDENTITY,
    user_id         bigint       NOT NULL,
    status          order_status NOT NULL DEFAULT 'NOT_PAID',
    subtotal        bigint       NOT NULL,
    discount        bigint       NOT NULL,
    total           bigint       NOT NULL,
    coupon_issue_id bigint,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    -- Unpaid after this instant, the order fails and gives its stock and coupon back.
    expires_at      timestamptz  NOT NULL,
    paid_at         timestamptz,
    failed_at       timestamptz,
    CONSTRAINT orders_pkey PRIMARY KEY (order_id),
    CONSTRAINT orders_user_fkey FOREIGN KEY (user_id) REFERENCES users (user_id),
    CONSTRAINT orders_coupon_fkey FOREIGN KEY (coupon_issue_id) REFERENCES coupon_issues (coupon_issue_id),
    CONSTRAINT orders_amounts CHECK (subtotal >= 0 AND discount BETWEEN 0 AND subtotal AND total = subtotal - discount),
    CONSTRAINT orders_paid CHECK ((status = 'PAID') = (paid_at IS NOT NULL)),
    CONSTRAINT orders_failed CHECK ((status = 'FAILED') = (failed_at IS NOT NULL))
);

CREATE INDEX orders_user ON orders (user_id, order_id);
CREATE INDEX orders_due ON orders (expires_at) WHERE status = 'NOT_PAID';

CREATE TABLE order_items (
    order_id   bigint  NOT NULL,
    product_id bigint  NOT NULL,
    qty        integer NOT NULL,
    unit_price bigint  NOT NULL,
    CONSTRAINT order_items_pkey PRIMARY KEY (order_id, product_id),
    CONSTRAINT order_items_order_fkey FOREIGN KEY (order_id) REFERENCES orders (order_id),
    CONSTRAINT order_items_product_fkey FOREIGN KEY (product_id) REFERENCES products (product_id),
    CONSTRAINT order_items_qty_range CHECK (qty BETWEEN 1 AND 1000),
    CONSTRAINT order_items_price_range CHECK (unit_price >= 0)
);

CREATE INDEX order_items_product ON order_items (product_id);

CREATE TYPE outbox_status AS ENUM ('PENDING', 'DELIVERED', 'DEAD');

-- Written in the transaction of the change it announces; a relay delivers it afterwards.
CREATE TABLE outbox (
    outbox_id       bigint        GENERATED ALWAYS AS IDENTITY,
    event_type      text          NOT NULL,
    order_id        bigint        NOT NULL,
    payload         jsonb         NOT NULL,
    status          outbox_status NOT NULL DEFAULT 'PENDING',
    attempts        integer       NOT NULL DEFAULT 0,
    next_attempt_at timestamptz   NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    CONSTRAINT outbox_pkey PRIMARY KEY (outbox_id),
    CONSTRAINT outbox_order_event_key UNIQUE (order_id, event_type)
);

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'PENDING';
