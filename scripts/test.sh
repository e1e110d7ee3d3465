#!/usr/bin/env bash
# The test command: installs what is missing (toolchain pieces, chromium, MariaDB, an
# S3-compatible server, the e2e npm packages), then runs every test layer:
#   1. the WASM + server build, and a check that no server-only crate reaches the browser
#   2. unit tests
#   3. store and API tests against SQLite, MariaDB and a real S3 server
#   4. Playwright tests driving the real app in Debian's chromium
#   5. schemathesis fuzzing the REST API against its OpenAPI document
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh --test
source scripts/lib.sh

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

step "S3-compatible server (moto) on loopback"
s3_port=$(free_port)
moto_server -H 127.0.0.1 -p "$s3_port" >"$work/moto.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$s3_port/" 60
export SB_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"

step "MariaDB: dropping databases left by earlier test runs"
for db in $(mariadb -h127.0.0.1 -uroot -N -e "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'sb\\_t\\_%' OR schema_name LIKE 'sb\\_e2e\\_%' OR schema_name LIKE 'sb\\_bench\\_%'"); do
    mariadb -h127.0.0.1 -uroot -e "DROP DATABASE \`$db\`"
done

step "1. build: WASM front end and server (scripts/build.sh)"
./scripts/build.sh

step "1b. the browser build contains no server-only crate"
wasm_tree=$(cargo tree -p frontend --target wasm32-unknown-unknown -e normal --prefix none)
for forbidden in sea-orm sqlx aws-sdk-s3 axum tokio reqwest argon2 mio; do
    if grep -q "^$forbidden v" <<<"$wasm_tree"; then
        echo "server-only crate '$forbidden' reached the WASM build" >&2
        exit 1
    fi
done
echo "ok: none of sea-orm, sqlx, aws-sdk-s3, axum, tokio, reqwest, argon2, mio in the WASM tree"

step "2+3. unit, store and API tests (SQLite, MariaDB, S3)"
cargo test -p app -p server -p migrations --features app/ssr

step "4. end-to-end: Playwright in chromium against the real server"
# Server A: the embedded default (SQLite + folder). Servers M1 and M2: two processes on one
# MariaDB database, for what must cross processes (a webhook on one, the page on the other).
export SB_E2E_CALENDLY_KEY="e2e-$(free_port)-signing-key"
# One sealing key for every e2e process (M1 and M2 share a database, so they must share
# it), and sign-up/log-in limits above what the browser tests use from one address.
export SB_SECRET_KEY="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
export SB_SIGNUP_RATE_PER_HOUR=1000 SB_LOGIN_RATE_PER_MIN=1000
export SB_E2E_ADMIN_USER=e2eadmin SB_E2E_ADMIN_PASSWORD="e2e $(free_port) admin password"
e2e_db="sb_e2e_$(free_port)"
mariadb -h127.0.0.1 -uroot -e "CREATE DATABASE $e2e_db CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
start_server() { # name port database-url data-dir demo-data
    mkdir -p "$4"
    # The embedded server keeps its webhook key as `run` does, in <data>/secrets (it
    # counts as the development key there, which the demo's test bookings need); the
    # MariaDB ones are configured with it.
    local key_var=(CALENDLY_WEBHOOK_SIGNING_KEY="$SB_E2E_CALENDLY_KEY")
    if [ "$5" = true ]; then
        (umask 077 && mkdir -p "$4/secrets" && printf '%s' "$SB_E2E_CALENDLY_KEY" >"$4/secrets/calendly-signing-key")
        key_var=()
    fi
    env SB_LISTEN="127.0.0.1:$2" DATABASE_URL="$3" SB_DATA_DIR="$4" SB_DEMO_DATA="$5" RUST_LOG=warn \
        BROKER_ALLOWED_TARGETS=127.0.0.1 BROKER_RETRY_BASE_MS=200 BROKER_RETRY_MAX_MS=1000 \
        SB_CHAT_ARCHIVE_EVERY_SECS=1 "${key_var[@]}" \
        "$(server_bin)" >"$work/e2e-$1.log" 2>&1 &
    pids+=($!)
    if ! wait_http "http://127.0.0.1:$2/readyz" 60; then cat "$work/e2e-$1.log"; exit 1; fi
}
sqlite_url="sqlite://$work/e2e-a/switchboard.db?mode=rwc"
mkdir -p "$work/e2e-a"
SB_ADMIN_PASSWORD="$SB_E2E_ADMIN_PASSWORD" DATABASE_URL="$sqlite_url" SB_DATA_DIR="$work/e2e-a" \
    "$(server_bin)" create-admin --username "$SB_E2E_ADMIN_USER" >/dev/null
port_a=$(free_port); port_m1=$(free_port); port_m2=$(free_port)
# The embedded server seeds the wage portal's demo (OEWS + synthetic sample), as `run` does.
start_server a "$port_a" "$sqlite_url" "$work/e2e-a" true
start_server m1 "$port_m1" "mysql://root@127.0.0.1:3306/$e2e_db" "$work/e2e-m1" false
start_server m2 "$port_m2" "mysql://root@127.0.0.1:3306/$e2e_db" "$work/e2e-m2" false
(cd end2end && SB_E2E_BASE_URL="http://127.0.0.1:$port_a" \
    SB_E2E_MARIADB_A="http://127.0.0.1:$port_m1" SB_E2E_MARIADB_B="http://127.0.0.1:$port_m2" \
    npx playwright test) || {
    for log in "$work"/e2e-*.log; do echo "--- $log ---"; tail -30 "$log"; done; exit 1;
}

step "5. API fuzzing: schemathesis over every operation of /api/openapi.json"
# As the admin (the widest rights), on the embedded server. Every response must be non-5xx
# and match its documented schema. Token deletion is left out: the fuzzer would revoke its
# own credentials and test the rest anonymously. A fixed seed keeps CI reproducible.
credentials=$(python3 -c 'import json, os; print(json.dumps({"username": os.environ["SB_E2E_ADMIN_USER"], "password": os.environ["SB_E2E_ADMIN_PASSWORD"]}))')
token=$(curl -fsS -X POST "http://127.0.0.1:$port_a/api/v1/auth/tokens" -H 'content-type: application/json' -d "$credentials" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
"$SB_TOOLS/venv/bin/schemathesis" run "http://127.0.0.1:$port_a/api/openapi.json" \
    -H "Authorization: Bearer $token" --checks not_a_server_error,response_schema_conformance \
    --max-examples 10 --workers 1 --seed 1 --request-timeout 10 --exclude-path-regex '/me/tokens/' || {
    tail -40 "$work/e2e-a.log"; exit 1;
}
mariadb -h127.0.0.1 -uroot -e "DROP DATABASE $e2e_db"

step "all test layers passed"
