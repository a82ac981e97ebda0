#!/usr/bin/env bash
# What a cluster node adds per relayed message, in instructions (issue 13, docs/SCALING.md):
# tools/bench/relay_instr.sh (callgrind, the hub's every thread) on a single node and on a cluster
# node (CLUSTER=1: a `cluster` section, its NATS connection, stream consumer and heartbeats),
# alternately, RUNS times each in the same session; prints each run and the medians.
# ASYNC=1 (passed to relay_instr.sh): the forwarder is an async sender, whose transactions a
# cluster node publishes to the other nodes (broker/cluster_inflight.c).
# Usage: tools/bench/cluster_instr.sh [BUILD_DIR] [RUNS] [N1] [N2]
set -euo pipefail
BUILD=${1:-build}
RUNS=${2:-3}
N1=${3:-300}
N2=${4:-1300}
here=$(dirname "$0")
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > /tmp/roamhub-cluster-instr.$$.single
: > /tmp/roamhub-cluster-instr.$$.cluster
trap 'rm -f /tmp/roamhub-cluster-instr.$$.*' EXIT
for r in $(seq "$RUNS"); do
  for mode in single cluster; do
    c=0; [ "$mode" = cluster ] && c=1
    line=$(CLUSTER=$c "$here/relay_instr.sh" "$BUILD" "$N1" "$N2")
    echo "run $r $mode: $line"
    echo "$line" | awk '{print $5}' >> "/tmp/roamhub-cluster-instr.$$.$mode"
  done
done
s=$(median < /tmp/roamhub-cluster-instr.$$.single)
c=$(median < /tmp/roamhub-cluster-instr.$$.cluster)
echo "median instructions per relayed message: single node $s, cluster node $c, difference $((c - s)) ($(python3 -c "print('%+.1f%%' % (100.0 * ($c - $s) / $s))"))"
