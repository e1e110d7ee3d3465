# Helpers shared by the run/test scripts (sourced).

step() { printf '\n\033[1;32m==> %s\033[0m\n' "$*" >&2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL SECONDS: until URL answers 2xx.
wait_http() {
    local url=$1 deadline=$((SECONDS + ${2:-60}))
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $url" >&2; return 1; fi
        sleep 0.2
    done
}

# The server binary scripts/build.sh built (cargo honours CARGO_TARGET_DIR).
server_bin() { echo "${CARGO_TARGET_DIR:-$sb_root/target}/debug/server"; }
