#!/usr/bin/env bash
# The run command: installs what is missing, builds, and serves Switchboard on
# http://127.0.0.1:3000 with the embedded default (SQLite file and object folder under
# data/, migrations applied, demo content). Configuration: see README.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
exec cargo leptos serve "$@"
