#!/usr/bin/env bash
# Builds the browser bundle in release mode (wasm-opt from npm binaryen) into its own
# site folder and prints its size raw, gzip -9 and brotli — the figure to follow as the
# app grows. Does not touch the debug site that `run`/`test` serve.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
site=target/site-release
./scripts/build.sh --release --frontend-only --site "$site" >&2
python3 - "$site/pkg" <<'PY'
import gzip, pathlib, sys
pkg = pathlib.Path(sys.argv[1])
try:
    import brotli  # optional: pip install brotli
except ImportError:
    brotli = None
print(f"{'file':<22}{'raw':>12}{'gzip -9':>12}{'brotli':>12}")
for name in ("switchboard.wasm", "switchboard.js", "switchboard.css"):
    data = (pkg / name).read_bytes()
    gz = len(gzip.compress(data, 9))
    br = len(brotli.compress(data, quality=11)) if brotli else None
    kb = lambda n: f"{n / 1024:,.1f} KiB" if n is not None else "n/a"
    print(f"{name:<22}{kb(len(data)):>12}{kb(gz):>12}{kb(br):>12}")
PY
