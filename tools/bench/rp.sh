#!/usr/bin/env bash
# Runs the routing-policy benchmark (tools/bench-rp) RUNS times (default 3) and prints each run;
# docs/PERFORMANCE.md ("Routing table and policy") reports the median of the runs.
# Usage: tools/bench/rp.sh BUILD_DIR [RUNS]
set -euo pipefail
build=${1:?usage: rp.sh BUILD_DIR [RUNS]}
runs=${2:-3}
for i in $(seq 1 "$runs"); do
  echo "=== run $i/$runs"
  "$build/tools/bench-rp" --ops 500000 --flips 100 --import 1000000
done
