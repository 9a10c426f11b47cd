# Sourced by loadtest/bench and loadtest/run: starts release builds of the api, the workers and
# a stand-in data platform against a fresh database and a new Redis key prefix, and stops them
# when the calling script exits.
#
#   STACK_DB=issuance_bench PORT=18080 OPS_PORT=19091; source loadtest/stack.sh
#
# Then: need_k6 (installs k6 if missing), checkout_products and check_delivery (the checkout
# scenario's setup and its delivery check), $base (the api's URL), $bin (the binaries), $TOKEN (an admin token), $RECEIVER (the data
# platform's URL); DATABASE_URL, KEY_PREFIX, JWT_SECRET and the rest are exported for
# `workers check`. ORDER_TTL_MS (3 s) and the global rate limit (off) suit load runs; set them
# before sourcing to change them. STACK_WORKERS=0 leaves the workers process to the caller
# (start_workers / stop_workers).

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
source scripts/secrets.sh
JWT_SECRET="${JWT_SECRET:-$(random_secret)}" CODE_SECRET="${CODE_SECRET:-$(random_secret)}"
export JWT_SECRET CODE_SECRET
export RUST_LOG="${RUST_LOG:-warn}"
export RATE_LIMIT_GLOBAL_PER_SEC="${RATE_LIMIT_GLOBAL_PER_SEC:-0}"
export ORDER_TTL_MS="${ORDER_TTL_MS:-3000}"
RECEIVER="http://127.0.0.1:$((PORT + 1))/events"
export DATA_PLATFORM_URL="$RECEIVER"

stack_workers=""
start_workers() { "$bin"/workers & stack_workers=$!; }
stop_workers() { [ -z "$stack_workers" ] || { kill "$stack_workers"; wait "$stack_workers" 2>/dev/null || true; stack_workers=""; }; }
# STACK_API_WRAPPER runs the api under a tool (loadtest/instructions: callgrind); the api is
# then slower to start, so STACK_READY_SECS (10 by default) gives it longer.
${STACK_API_WRAPPER:-} "$bin"/api & stack_api=$!
[ "${STACK_WORKERS:-1}" = 0 ] || start_workers
"$bin"/workers receiver --addr "127.0.0.1:$((PORT + 1))" >/dev/null 2>&1 & stack_receiver=$!
trap 'kill $stack_api $stack_workers $stack_receiver 2>/dev/null; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 $((${STACK_READY_SECS:-10} * 10))); do curl -sf "http://$API_ADDR/ready" >/dev/null && break; sleep 0.1; done
curl -sf "http://$API_ADDR/ready" >/dev/null || { echo "the api did not become ready" >&2; exit 1; }

TOKEN=$("$bin"/api token --user 1 --admin)
export TOKEN
base="http://$API_ADDR"

# Makes the checkout scenario's 20 products of 2,000 units (prices 1,000 to 5,000), named
# <prefix>-<n>; prints them as its PRODUCTS_JSON ([{id, price}]).
checkout_products() { # prefix
  local json="[" i price id
  for i in $(seq 0 19); do
    price=$((1000 * (1 + i % 5)))
    id=$(curl -sf -XPOST "$base/api/v1/admin/products" -H "Authorization: Bearer $TOKEN" \
      -H 'content-type: application/json' -d "{\"name\":\"$1-$i\",\"price\":$price,\"stock\":2000}" \
      | sed -n 's/.*"productId":\([0-9]*\).*/\1/p')
    json+="{\"id\":$id,\"price\":$price},"
  done
  echo "${json%,}]"
}

# Waits (up to 20 s) until unpaid orders have expired (ORDER_TTL_MS) and the outbox is
# delivered, prints how many paid orders' ORDER_PAID events the data platform received, and
# fails when one is missing.
check_delivery() {
  local left received paid
  for _ in $(seq 1 100); do
    left=$(psql -h 127.0.0.1 -U postgres -d "$STACK_DB" -Atc \
      "SELECT (SELECT count(*) FROM orders WHERE status = 'NOT_PAID') + (SELECT count(*) FROM outbox WHERE status <> 'DELIVERED')")
    [ "$left" = "0" ] && break
    sleep 0.2
  done
  received=$(curl -s "$RECEIVER" | sed -n 's/.*"distinct":\([0-9]*\).*/\1/p')
  paid=$(psql -h 127.0.0.1 -U postgres -d "$STACK_DB" -Atc "SELECT count(*) FROM orders WHERE status = 'PAID'")
  echo "data platform: $received distinct ORDER_PAID events received for $paid paid orders"
  [ "${received:-0}" = "$paid" ] || { echo "MISMATCH: every ORDER_PAID must reach the data platform" >&2; return 1; }
}

