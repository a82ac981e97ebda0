#!/usr/bin/env bash
# Growth benchmark, admin and peers part (issue 18 items 2, 3, 5): admin member writes at 10 / 1k /
# 10k members, 30-day hourly statistics queries over 10 and 1000 pairs, and the same relay load
# over 1 vs 1000 home endpoints; each against a reference hub built from REF (default: the main
# branch, exported with git archive and built in the work directory) and this tree's build, in the
# same run. Prints markdown (docs/PERFORMANCE.md, "growth"). tools/bench/growth.sh (routing table
# part) calls this script for its admin sections.
# Usage: tools/bench/growth-admin.sh [BUILD_DIR] [REF_BUILD_DIR|-] [SECTION...]
#   SECTION: members stats homes (default: all). Environment: RUNS (3), WRITES (200), SECS (8),
#   CONNS (64), REF (git ref for the reference, default main).
# Needs: nginx, wrk, ss (deploy/bootstrap.sh installs them). Takes ~10 min; the machine is shared,
# so every figure is a median of RUNS runs with the reference measured in the same run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
REF_BUILD=${2:--}
shift $(( $# > 2 ? 2 : $# ))
[ -x "$BUILD/broker/roamhubd" ] && [ -x "$BUILD/tools/bench-stats" ] || { echo "build first: $BUILD" >&2; exit 1; }
W=$(mktemp -d /tmp/roamhub-growth-admin.XXXXXX)
trap 'rm -rf "$W"' EXIT
if [ "$REF_BUILD" = - ]; then
  mkdir -p "$W/ref"
  git -C "$ROOT" archive "${REF:-main}" | tar -x -C "$W/ref"
  cmake -S "$W/ref" -B "$W/ref/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$W/ref-build.log"
  cmake --build "$W/ref/build" -j2 --target roamhubd >> "$W/ref-build.log" 2>&1
  REF_BUILD="$W/ref/build"
fi
echo "growth (admin, peers): $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);"
echo "REF = ${REF:-main} ($(git -C "$ROOT" rev-parse --short "${REF:-main}")), NEW = $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo '+changes')"
python3 "$ROOT/tools/bench/growth_admin.py" "$REF_BUILD" "$BUILD" "$W" "$@"
