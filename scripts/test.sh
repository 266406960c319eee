#!/usr/bin/env bash
# Runs every test: machine setup and fixtures first (idempotent, fast when already done), then
# format and lint gates, then unit, SSH loopback and container end-to-end tests.
# Run as root on Debian 12 (the lab needs podman; setup installs what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-machine.sh
scripts/fixtures.sh >/dev/null
# The Rust broker for the nisshi end-to-end test: built once per machine (~16 min), then cached.
scripts/nisshi.sh >/dev/null

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# The end-to-end tests each run a container cluster: one test binary at a time keeps 2 cores
# and the lab's memory within bounds.
# No backtraces: a failed end-to-end test's message ends with the command's output that
# holds the cause, and CI shows the end of the log; a backtrace would push it out.
RUST_BACKTRACE=0 cargo test --locked -- --test-threads=2
