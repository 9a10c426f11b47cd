#!/bin/sh
# A sentinel of the compose layout: writes its own configuration (a sentinel rewrites the file
# as it learns the layout, so it cannot be a read-only mount) and runs. The primary is found by
# name; its replicas and the other sentinels the sentinels discover themselves.
set -eu
conf=/data/sentinel.conf
cat >"$conf" <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel monitor issuance redis-primary 6379 2
sentinel auth-pass issuance ${REDIS_PASSWORD:?}
sentinel down-after-milliseconds issuance ${SENTINEL_DOWN_AFTER_MS:-2000}
sentinel failover-timeout issuance ${SENTINEL_FAILOVER_TIMEOUT_MS:-5000}
sentinel parallel-syncs issuance 1
CONF
exec redis-server "$conf" --sentinel
