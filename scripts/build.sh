#!/usr/bin/env bash
# Builds what `run` serves and `test` tests, with cargo and the pinned wasm-bindgen CLI
# alone (no cargo-leptos: installing it took ~13 of a fresh machine's first 33 minutes):
#   1. the WASM front end: `frontend` for wasm32, then wasm-bindgen (and, in release,
#      wasm-opt from npm's binaryen) into <site>/pkg/switchboard.js + switchboard.wasm
#   2. the site folder: the stylesheet as pkg/switchboard.css, and public/ at its root
#   3. the server binary (unless --frontend-only)
#
#   scripts/build.sh [--release] [--frontend-only] [--site DIR]   (DIR: default target/site)
#
# The server finds the site through LEPTOS_SITE_ROOT (default target/site). Leptos bakes
# the bundle's name into it at compile time from LEPTOS_OUTPUT_NAME (set for every cargo
# command in .cargo/config.toml, as cargo-leptos did): switchboard.js and switchboard.wasm,
# so wasm-bindgen's switchboard_bg.wasm is renamed.
# Expects bootstrap.sh's tools on PATH (run.sh, test.sh and wasm-size.sh source it).
set -euo pipefail
cd "$(dirname "$0")/.."
release="" frontend_only="" site="${LEPTOS_SITE_ROOT:-target/site}"
while [ $# -gt 0 ]; do
    case "$1" in
        --release) release=1 ;;
        --frontend-only) frontend_only=1 ;;
        --site) site=$2; shift ;;
        *) echo "build.sh: unknown option $1 (expected --release, --frontend-only, --site DIR)" >&2; exit 2 ;;
    esac
    shift
done
target="${CARGO_TARGET_DIR:-target}"
# cargo puts the dev profile's output under debug/, any other profile under its name.
if [ -n "$release" ]; then wasm_profile=wasm-release wasm_dir=wasm-release; else wasm_profile=dev wasm_dir=debug; fi

cargo build -p frontend --lib --target wasm32-unknown-unknown --profile "$wasm_profile"
mkdir -p "$site/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$site/pkg" --out-name switchboard \
    "$target/wasm32-unknown-unknown/$wasm_dir/frontend.wasm"
mv -f "$site/pkg/switchboard_bg.wasm" "$site/pkg/switchboard.wasm"
if [ -n "$release" ]; then
    # Features are read from the module's target-features section.
    wasm-opt -Oz "$site/pkg/switchboard.wasm" -o "$site/pkg/switchboard.wasm"
fi
cp style/main.css "$site/pkg/switchboard.css"
cp -R public/. "$site/"

if [ -z "$frontend_only" ]; then
    cargo build -p server ${release:+--release}
fi
