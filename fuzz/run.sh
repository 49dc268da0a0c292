#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 20 s each) on the nightly toolchain.
# Installs cargo-fuzz when missing. Exits non-zero on the first crash.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
for target in $(cargo +nightly fuzz list); do
    echo "fuzzing $target for ${seconds}s"
    cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=4096 2>&1 | tail -n 3
done
