#!/usr/bin/env bash
# Runs every libFuzzer target of a ROAMHUB_FUZZ=ON build for N seconds each (default 60),
# starting from its committed corpus (new inputs go to a scratch directory, not the repo).
# Usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
secs=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
shopt -s nullglob
ran=0
for bin in "$build"/tests/fuzz_*; do
  name=$(basename "$bin"); short=${name#fuzz_}
  scratch=$(mktemp -d)
  echo "--- $name for ${secs}s"
  "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 "$scratch" "$here/corpus/$short" 2>&1 | tail -n 3
  rm -rf "$scratch"
  ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || { echo "no fuzz targets in $build/tests" >&2; exit 1; }
