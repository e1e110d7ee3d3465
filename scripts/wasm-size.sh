#!/usr/bin/env bash
# Builds the browser bundle in release mode (wasm-opt from npm binaryen) into its own
# site folder and prints its size raw, gzip -9 and brotli — the figure to follow as the
# app grows. Does not touch the debug site that `run`/`test` serve.
#   --why   also install twiggy (crates.io, into the tools cache) and say where the bytes
#           of the WASM code go, by kind (the cargo output, before wasm-opt strips names)
set -euo pipefail
why=false
[ "${1:-}" = "--why" ] && why=true
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

$why || exit 0
twiggy="$SB_TOOLS/tools/bin/twiggy"
if [ ! -x "$twiggy" ]; then
    sb_log "installing twiggy 0.8.0 (once)"
    sb_quietly "cargo install twiggy" cargo install --locked twiggy --version 0.8.0 --root "$SB_TOOLS/tools"
fi
wasm="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/frontend.wasm"
"$twiggy" top -n 1000000 -f csv "$wasm" >"$site/twiggy.csv"
python3 - "$site/twiggy.csv" <<'PY'
import collections, csv, sys
# Kinds by the function names the code carries (names and custom sections left out: they
# are stripped from the shipped file).
kinds = [("hydrate_async", "async hydration (lazy routes; unused, but kept by AnyView)"),
         ("hydrate", "hydration"), ("rebuild", "re-rendering"), ("build", "first rendering"),
         ("reactive_graph", "signals and effects"), ("serde", "serde (server-function data)"),
         ("alloc", "alloc:: (collections, strings, boxes)"), ("data segment", "static data")]
sizes, total = collections.Counter(), 0
for row in csv.DictReader(open(sys.argv[1])):
    name, size = row["Name"], int(row["ShallowSize"])
    if "function names" in name or "custom section" in name:
        continue
    total += size
    sizes[next((label for key, label in kinds if key in name), "everything else")] += size
print(f"\nwhere the code goes (before wasm-opt, {total / 1024:,.0f} KiB):")
for label, size in sizes.most_common():
    print(f"  {label:<58}{size / 1024:>9,.0f} KiB {size / total * 100:5.1f} %")
PY
