-- What Redis may issue of a scope, reserved in Postgres ahead of it, and the fence of the
-- scope's Redis history.
--
-- `reserved`: units (and, for a coupon batch, positions 0 .. reserved - 1) that Redis may have
-- answered. issue.lua never issues past the ceiling its meta was given from this row, and the
-- api raises the row before it raises a ceiling; so after any loss of Redis a rebuild resumes at
-- `reserved`, above every position that could have been answered, and no more than the
-- quantity is ever answered. Units reserved but never answered before a loss are stranded.
--
-- `fence`: a new value from `scope_fences` for every rebuild of the scope's Redis copy, taken
-- under this row's lock before the rebuild reads Postgres (a sequence never hands a value out
-- twice, also not one of a rebuild that rolled back). Stream records carry the fence their copy
-- was built under; the drain takes the row's lock in its transaction and writes only records
-- of the current fence or a later one, so a batch read from a history that a rebuild replaced
-- cannot commit after the rebuild read Postgres.
CREATE SEQUENCE scope_fences;

CREATE TABLE scope_reservations (
    scope_kind text NOT NULL,
    scope_id text NOT NULL,
    reserved bigint NOT NULL DEFAULT 0,
    fence bigint NOT NULL DEFAULT nextval('scope_fences'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT scope_reservations_pkey PRIMARY KEY (scope_kind, scope_id),
    CONSTRAINT scope_reservations_kind CHECK (scope_kind IN ('ticket', 'coupon')),
    CONSTRAINT scope_reservations_reserved CHECK (reserved >= 0),
    CONSTRAINT scope_reservations_fence CHECK (fence >= 1)
);
