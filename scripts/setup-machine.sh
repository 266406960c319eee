#!/usr/bin/env bash
# Idempotent machine setup for the lab tests and CI (Debian 12, run as root).
#
# - installs the Debian packages the tests need, only those `dpkg -s` reports missing, so a
#   second run does no apt work at all (~1 s);
# - writes /etc/containers/containers.conf only if absent. It fixes two quirks of these VMs for
#   hand-run podman commands (crun: "cgroups in hybrid mode not supported"; default rlimits above
#   the hard limit). clusterctl itself passes --runtime/--ulimit explicitly and never needs it.
set -euo pipefail

PACKAGES=(
  podman runc debootstrap   # lab nodes: containers built from a debootstrap root filesystem
  catatonit                 # the --init PID 1 of lab containers (only a Recommends of podman)
  kcat netcat-openbsd       # independent Kafka / ZooKeeper checks from outside the tool
  openssh-server openssh-client
  python3 python3-venv      # the librdkafka client of the secured-cluster test (below)
  maven openjdk-17-jdk-headless  # fixtures.sh: ZooKeeper and Kafka jars from Maven Central
)
CONTAINERS_CONF=/etc/containers/containers.conf

log() { echo "setup-machine: $*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "setup-machine: must run as root (installs packages, writes /etc/containers)" >&2
  exit 1
fi

installed() {
  # `dpkg -s` also succeeds for removed-but-configured packages; require "install ok installed".
  dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
  log "installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "all ${#PACKAGES[@]} packages already installed: ${PACKAGES[*]}"
fi

if [[ -e $CONTAINERS_CONF ]]; then
  log "$CONTAINERS_CONF exists, left as is"
else
  log "writing $CONTAINERS_CONF (runc runtime, ulimits within this VM's hard limits)"
  mkdir -p "$(dirname "$CONTAINERS_CONF")"
  cat >"$CONTAINERS_CONF" <<'EOF'
# written by clusterctl scripts/setup-machine.sh for hand-run podman commands;
# clusterctl passes --runtime and --ulimit itself and does not read this file.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
EOF
fi

# A current librdkafka for the secured-cluster test: Debian 12's (2.0.2, kcat's) builds a SCRAM
# client-final message Kafka 4.x refuses (fixed in librdkafka 2.6.1, confluentinc/librdkafka
# #4895). confluent-kafka's wheel bundles its own librdkafka; kept in a venv, made once.
RDKAFKA_VENV=${HOME}/.cache/clusterctl/rdkafka-venv
CONFLUENT_KAFKA=2.12.1
if "$RDKAFKA_VENV/bin/python" -c "import confluent_kafka, sys; sys.exit(confluent_kafka.version()[0] != '$CONFLUENT_KAFKA')" 2>/dev/null; then
  log "confluent-kafka $CONFLUENT_KAFKA already in $RDKAFKA_VENV"
else
  log "installing confluent-kafka $CONFLUENT_KAFKA into $RDKAFKA_VENV"
  rm -rf "$RDKAFKA_VENV"
  /usr/bin/python3 -m venv "$RDKAFKA_VENV"
  "$RDKAFKA_VENV/bin/pip" install -q --disable-pip-version-check "confluent-kafka==$CONFLUENT_KAFKA"
fi

log "done"
