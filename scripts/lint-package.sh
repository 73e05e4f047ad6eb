#!/usr/bin/env bash
# Lints the package as npm would publish it: publint (strict) on the package directory, and
# arethetypeswrong on one tarball packed without re-running the build (`npm test` built it).
# ESM-only on purpose (profile esm-only); the .wasm subpaths are assets, not modules.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
npx publint --strict --pack false
tarball=$(npm pack --ignore-scripts --silent --pack-destination "$dir" | tail -n 1)
npx attw "$dir/$tarball" --profile esm-only \
  --exclude-entrypoints lease-core.wasm lease-core.shared.wasm lease-core.wasi.wasm
