# Sourced by loadtest/bench and loadtest/run: starts release builds of the api, the workers and
# a stand-in data platform against a fresh database and a new Redis key prefix, and stops them
# when the calling script exits.
#
#   STACK_DB=issuance_bench PORT=18080 OPS_PORT=19091; source loadtest/stack.sh
#
# Then: need_k6 (installs k6 if missing), $base (the api's URL), $bin (the binaries), $TOKEN (an admin token), $RECEIVER (the data
# platform's URL); DATABASE_URL, KEY_PREFIX, JWT_SECRET and the rest are exported for
# `workers check`. ORDER_TTL_MS (3 s) and the global rate limit (off) suit load runs; set them
# before sourcing to change them.

source loadtest/need-k6.sh

DATABASE_NAME="$STACK_DB" scripts/services >/dev/null
export PGPASSWORD="${PGPASSWORD:-postgres}"
psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $STACK_DB WITH (FORCE)"
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $STACK_DB"
cargo build --release -q -p api -p workers
bin="${CARGO_TARGET_DIR:-target}/release"

export DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/$STACK_DB"
export KEY_PREFIX="${STACK_DB}$(date +%s):"
export API_ADDR="127.0.0.1:$PORT" WORKERS_ADDR="127.0.0.1:$OPS_PORT"
export JWT_SECRET="${JWT_SECRET:-loadtest-secret}" CODE_SECRET="${CODE_SECRET:-loadtest-code-secret}"
export RUST_LOG="${RUST_LOG:-warn}"
export RATE_LIMIT_GLOBAL_PER_SEC="${RATE_LIMIT_GLOBAL_PER_SEC:-0}"
export ORDER_TTL_MS="${ORDER_TTL_MS:-3000}"
RECEIVER="http://127.0.0.1:$((PORT + 1))/events"
export DATA_PLATFORM_URL="$RECEIVER"

"$bin"/api & stack_api=$!
"$bin"/workers & stack_workers=$!
"$bin"/workers receiver --addr "127.0.0.1:$((PORT + 1))" >/dev/null 2>&1 & stack_receiver=$!
trap 'kill $stack_api $stack_workers $stack_receiver 2>/dev/null; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://$API_ADDR/ready" >/dev/null && break; sleep 0.1; done
curl -sf "http://$API_ADDR/ready" >/dev/null || { echo "the api did not become ready" >&2; exit 1; }

TOKEN=$("$bin"/api token --user 1 --admin)
export TOKEN
base="http://$API_ADDR"
