#!/usr/bin/env bash
# Measures a newcomer's first run: a fresh clone of this repository, an empty cargo home
# (registry and installed tools), an empty target dir and an empty tools cache, then
# `./scripts/run.sh` until the first page answers; prints the minutes it took, then how
# long a second run takes to serve. Not part of the test command (it takes a while and
# wants the machine to itself). The Rust toolchain (rustup) is kept: every machine has it.
#   scripts/first-run.sh [WORK_DIR]    (default: a new temporary folder, removed after)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
work=${1:-$(mktemp -d)}
mkdir -p "$work"
repo=$(pwd)
git clone -q "$repo" "$work/clone"
port=$(free_port)
# Tools installed in the usual cargo home must not count as installed: keep only the
# toolchain's own binaries (cargo, rustc) and rustup on PATH.
toolchain_bin=$(dirname "$(rustup which cargo)")
mkdir -p "$work/bin"
ln -sf "$(command -v rustup)" "$work/bin/rustup"
usual_cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
PATH="$toolchain_bin:$work/bin:$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$usual_cargo_bin" | paste -sd: -)"
export PATH
export CARGO_HOME="$work/cargo" CARGO_TARGET_DIR="$work/target" SB_TOOLS="$work/tools"
export SB_LISTEN="127.0.0.1:$port" SB_DATA_DIR="$work/data"

serve_and_time() { # label log
    local started=$SECONDS pid
    (cd "$work/clone" && ./scripts/run.sh >"$2" 2>&1) &
    pid=$!
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then echo "$1: run.sh ended before serving; see $2" >&2; tail -n 30 "$2" >&2; exit 1; fi
        sleep 1
    done
    local took=$((SECONDS - started))
    printf '%s: first page after %d min %02d s\n' "$1" $((took / 60)) $((took % 60))
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
serve_and_time "first run (fresh clone, empty caches)" "$work/first.log"
serve_and_time "second run" "$work/second.log"
[ -n "${1:-}" ] || rm -rf "$work"
