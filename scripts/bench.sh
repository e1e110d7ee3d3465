#!/usr/bin/env bash
# Benchmarks (not tests): builds the server in release mode and prints a Markdown table
# of figures for the hot paths, on SQLite and on MariaDB, each beside the ceiling measured
# in the same run.
#   ./scripts/bench.sh            # everything
#   ./scripts/bench.sh broker     # one capability (ceilings, chat, broker, meetings, scheduler, wages)
#   SB_BENCH_DATABASES=sqlite ./scripts/bench.sh
# HTTP load comes from separate processes: Debian's `wrk` (closed loop, as fast as it goes)
# and `oha` from crates.io (open loop at a fixed rate, for the p99 targets). Both are
# installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh --test

if ! command -v wrk >/dev/null; then
    apt_install wrk
fi
oha_root="$SB_TOOLS/tools"
oha_want=1.16.0
if [ "$("$oha_root/bin/oha" --version 2>/dev/null | awk '{print $2}')" != "$oha_want" ]; then
    sb_log "installing oha $oha_want from crates.io (takes ~10 min once)"
    cargo install oha --version "$oha_want" --locked --root "$oha_root"
fi
export SB_BENCH_OHA="$oha_root/bin/oha"

cargo build --release -p server --bin bench --features bench >&2
exec "${CARGO_TARGET_DIR:-target}/release/bench" "${@:-all}"
