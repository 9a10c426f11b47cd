#!/bin/sh
# Joins the six nodes of the cluster layout (docker-compose.cluster.yml) into 3 primaries with
# one replica each, once: a cluster that already answers cluster_state:ok is left as it is.
set -eu
export REDISCLI_AUTH="${REDIS_PASSWORD:?}"
nodes="redis-1:6379 redis-2:6379 redis-3:6379 redis-4:6379 redis-5:6379 redis-6:6379"
if redis-cli -h redis-1 cluster info | grep -q '^cluster_state:ok'; then
  echo "cluster already formed"
  exit 0
fi
# shellcheck disable=SC2086
redis-cli --cluster create $nodes --cluster-replicas 1 --cluster-yes
until redis-cli -h redis-1 cluster info | grep -q '^cluster_state:ok'; do sleep 0.5; done
echo "cluster formed"
