#!/usr/bin/env bash
# Crash recovery on its own: every test that SIGKILLs a real server process in the middle
# of work — (a) broker delivery, (b) chat archiving, (c) a wage import, (d) webhook intake
# with the database down — restarts it, and checks the capability's promises. The test
# command runs these too, with everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh --test
# The server binary the tests SIGKILL is built by cargo alongside the test binary.
exec cargo test -p server --features app/ssr --test it -- sigkill --test-threads 2
