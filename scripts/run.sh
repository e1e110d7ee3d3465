#!/usr/bin/env bash
# The run command: installs what is missing, builds, and serves Switchboard on
# http://127.0.0.1:3000 with the embedded default (SQLite file and object folder under
# data/, migrations applied, demo content). Configuration: see README. Arguments go to
# the server (e.g. `./scripts/run.sh migrate`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
source scripts/lib.sh
step "building the front end and the server"
./scripts/build.sh
step "serving on http://${SB_LISTEN:-127.0.0.1:3000}"
exec "$(server_bin)" "$@"
