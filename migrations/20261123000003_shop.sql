-- First-come coupons issued to users, the points wallet and its history.
--
-- Coupon issues arrive through the issuance-stream drain, like tickets: a replayed entry changes
-- nothing (primary key and one issue per user and batch).

-- The Redis copy of a coupon batch's rules is version-guarded like a ticket event's: the copy's
-- version is the sum of the batch's and its inventory's, and both only grow.
ALTER TABLE coupon_batches ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE coupon_inventories ADD COLUMN version bigint NOT NULL DEFAULT 1;

-- EXPIRED is not stored: an ISSUED coupon past its inventory's usable period is expired.
CREATE TYPE coupon_issue_status AS ENUM ('ISSUED', 'USED');

CREATE TABLE coupon_issues (
    -- batch_id * 10,000,000 + seq: known to the api when Redis decides, before this row exists.
    coupon_issue_id bigint              NOT NULL,
    batch_id        bigint              NOT NULL,
    -- The issue's position in its batch (0, 1, 2 …): the coupon's code is the batch's code at
    -- this position.
    seq             integer             NOT NULL,
    user_id         bigint              NOT NULL,
    status          coupon_issue_status NOT NULL DEFAULT 'ISSUED',
    issued_at       timestamptz         NOT NULL,
    used_at         timestamptz,
    order_id        bigint,
    -- When the drain wrote the row; issued_at is when Redis decided.
    persisted_at    timestamptz         NOT NULL DEFAULT now(),
    CONSTRAINT coupon_issues_pkey PRIMARY KEY (coupon_issue_id),
    CONSTRAINT coupon_issues_batch_user_key UNIQUE (batch_id, user_id),
    CONSTRAINT coupon_issues_batch_seq_key UNIQUE (batch_id, seq),
    CONSTRAINT coupon_issues_batch_fkey FOREIGN KEY (batch_id) REFERENCES coupon_batches (batch_id),
    CONSTRAINT coupon_issues_id_shape CHECK (
        seq BETWEEN 0 AND 9999999 AND coupon_issue_id = batch_id * 10000000 + seq),
    CONSTRAINT coupon_issues_used CHECK ((status = 'USED') = (used_at IS NOT NULL))
);

CREATE INDEX coupon_issues_user ON coupon_issues (user_id, issued_at);

-- One row per user who ever charged; a user without one has a balance of 0.
CREATE TABLE wallets (
    user_id    bigint      NOT NULL,
    balance    bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wallets_pkey PRIMARY KEY (user_id),
    CONSTRAINT wallets_user_fkey FOREIGN KEY (user_id) REFERENCES users (user_id),
    CONSTRAINT wallets_balance_range CHECK (balance BETWEEN 0 AND 5000000)
);

CREATE TYPE point_kind AS ENUM ('CHARGE', 'USE', 'REFUND');

-- Every change of a balance, written in the transaction that makes it: per user, the signed sum
-- of amounts equals the balance, and balance_after is the balance right after the row.
CREATE TABLE point_history (
    entry_id      bigint      GENERATED ALWAYS AS IDENTITY,
    user_id       bigint      NOT NULL,
    kind          point_kind  NOT NULL,
    -- Signed: a charge or refund adds, a use subtracts.
    amount        bigint      NOT NULL,
    balance_after bigint      NOT NULL,
    order_id      bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT point_history_pkey PRIMARY KEY (entry_id),
    CONSTRAINT point_history_user_fkey FOREIGN KEY (user_id) REFERENCES users (user_id),
    CONSTRAINT point_history_sign CHECK (
        (kind = 'USE' AND amount < 0) OR (kind <> 'USE' AND amount > 0)),
    CONSTRAINT point_history_balance_range CHECK (balance_after BETWEEN 0 AND 5000000)
);

CREATE INDEX point_history_user ON point_history (user_id, entry_id);
