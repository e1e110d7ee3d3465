#!/usr/bin/env bash
# Benchmarks (not tests): builds the server in release mode and prints a Markdown table
# of figures for the hot paths, on SQLite and on MariaDB.
#   ./scripts/bench.sh            # everything
#   ./scripts/bench.sh broker     # one capability
#   SB_BENCH_DATABASES=sqlite ./scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh --test
cargo build --release -p server --bin bench --features bench >&2
exec "${CARGO_TARGET_DIR:-target}/release/bench" "${@:-all}"
