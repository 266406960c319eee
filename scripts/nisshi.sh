#!/usr/bin/env bash
# Builds the Rust broker (the `nisshi` crate from crates.io) once per machine and version, into
# the same cache clusterctl itself uses for `nisshi: {build: cargo}` inventories:
#
#   $CACHE/nisshi/$VERSION/bin/nisshi
#
# The build takes about 16 minutes on 2 cores, so it is skipped when the binary is there and
# reports the right version. Interrupting is safe: cargo installs the binary only at the end,
# and the target dir is kept until then, so a rerun resumes where it stopped.
# The last line of stdout is the binary's path.
#
# Environment: NISSHI_VERSION=0.8.1  CLUSTERCTL_CACHE=~/.cache/clusterctl
set -euo pipefail

VERSION=${NISSHI_VERSION:-0.8.1}
TOOLCHAIN=${NISSHI_TOOLCHAIN:-1.96.0}
CACHE=${CLUSTERCTL_CACHE:-$HOME/.cache/clusterctl}
ROOT=$CACHE/nisshi/$VERSION
BIN=$ROOT/bin/nisshi

log() { echo "nisshi: $*" >&2; }

if [[ -x $BIN ]] && "$BIN" --version 2>/dev/null | grep -qw "$VERSION"; then
  log "$VERSION already built"
  echo "$BIN"
  exit 0
fi

command -v rustup >/dev/null || { log "error: rustup not found"; exit 1; }
# nisshi 0.8.1's own Cargo.lock pins rama 0.4.0, which needs rustc 1.96; the project's stable
# toolchain may be older, so the broker gets its own pinned toolchain.
rustup toolchain list | grep -q "^$TOOLCHAIN" ||
  rustup toolchain install "$TOOLCHAIN" --profile minimal >&2
log "building $VERSION with cargo install (about 16 minutes on 2 cores)"
# --locked: the crate's own Cargo.lock, so the build does not drift with newer dependencies.
CARGO_TARGET_DIR=$CACHE/nisshi/target cargo "+$TOOLCHAIN" install nisshi --version "$VERSION" \
  --locked --root "$ROOT" >&2
"$BIN" --version >&2
# The build tree (~1.7 GB) is only worth keeping while a build is unfinished.
rm -rf "$CACHE/nisshi/target"
echo "$BIN"
