-- Facts a deployment must keep for the life of its data. Today: the fingerprint of the
-- CODE_SECRET that issued coupon codes are derived from (a keyed hash, never the secret), so a
-- process started with another secret refuses to run instead of handing out codes that match
-- nothing.
CREATE TABLE deployment_settings (
    name       text        PRIMARY KEY,
    value      text        NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now()
);
