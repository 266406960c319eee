#!/usr/bin/env bash
# Brings up a 3-node container cluster running ZooKeeper + Kafka and prints its status.
# Everything comes from this machine: the node image from a Debian root filesystem, ZooKeeper
# and Kafka tarballs assembled from Maven Central jars and served by a local mirror.
#   scripts/demo.sh          # up (idempotent: re-running re-applies and prints status)
#   scripts/demo.sh down     # remove the containers and network
set -euo pipefail
cd "$(dirname "$0")/.."
INVENTORY=${INVENTORY:-$PWD/demo/inventory.yaml}
PORT=${MIRROR_PORT:-18080}

if [[ ${1:-} == down ]]; then
  exec target/release/clusterctl lab down "$INVENTORY"
fi

scripts/setup-machine.sh
mirror=$(scripts/fixtures.sh)
cargo build --release --locked
bin=target/release/clusterctl

$bin lab image
mkdir -p "$(dirname "$INVENTORY")"
[[ -f $INVENTORY ]] || $bin lab up "$INVENTORY" --nodes 3

# A local mirror in Apache's archive layout, only for the apply.
python3 -m http.server "$PORT" --bind 127.0.0.1 -d "$mirror" >/dev/null 2>&1 &
mirror_pid=$!
trap 'kill $mirror_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

CLUSTERCTL_MIRROR=http://127.0.0.1:$PORT $bin apply "$INVENTORY"
$bin status "$INVENTORY"
