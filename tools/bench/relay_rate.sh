#!/usr/bin/env bash
# What a relayed message costs at a fixed rate (issue #15, docs/PERFORMANCE.md step 24): the hub
# and the nginx proxy_pass relay of tools/bench/relay.sh (same world: relay_world.sh), driven in
# turn by build/tools/bench-openloop at RATE msg/s for SECS s (+1 s warm-up), ROUNDS rounds.
# Per target and round it prints one line:
#   p50/p99 latency (µs, from the due time), CPU µs per message (user+system of the hub's threads
#   or the nginx relay's worker processes, from /proc; in parentheses the user-space part),
#   voluntary and involuntary context switches per message (summed over their threads, from
#   /proc/PID/task/*/status), system calls per message (perf stat raw_syscalls:sys_enter; "-"
#   without perf or when perf_event_paranoid forbids it), and the count of 100 ms windows of due
#   time whose largest latency is >= 3 ms and >= 10 ms (bench-openloop -s: a periodic stall would
#   show as evenly spaced windows; SERIES=DIR keeps the series files, "ms answered max_us" per
#   window).
# Unlike relay.sh's table (wrk, saturation) this shows the cost per message when each wake-up
# carries few messages, where involuntary context switches (the relay preempted by the client or
# the stub it just woke) add to the latency tail.
# APPARATUS=batch|core0 keeps the stub and bench-openloop from taking the relays' CPU
# (relay_world.sh): the involuntary switches they cause disappear, for the hub and nginx alike.
# HUB_WORKERS=N sets the hub's `workers` (default: one per core), as in relay.sh.
# HUB_LATENCY=1 turns on the hub's relay.hub_latency and adds a column for the hub's rows: the
# hub's own part of each message's round trip (kernel arrival of the request -> answer written,
# less forward written -> kernel arrival of the answer; roamhub_relay_latency_seconds{stage=
# "hub_added"} from the end of the warm-up to the end of the round, relay_world.sh
# hub_added_begin/end), p50 / p99 / p99.9 interpolated within their power-of-two bucket (as
# Prometheus' histogram_quantile), the p99's bucket in brackets.
# Usage: tools/bench/relay_rate.sh [BUILD_DIR] [RATE] [SECS] [ROUNDS]
# Needs: nginx (nginx-light); perf (linux-perf) for the system-call column.
set -euo pipefail
BUILD=${1:-build}
RATE=${2:-14000}
SECS=${3:-8}
ROUNDS=${4:-3}
. "$(dirname "$0")/relay_world.sh"
HUBD="$BUILD/broker/roamhubd"
OPENLOOP="$BUILD/tools/bench-openloop"
[ -x "$HUBD" ] && [ -x "$OPENLOOP" ] || { echo "no $HUBD or $OPENLOOP: build first" >&2; exit 1; }
command -v nginx >/dev/null || { echo "needs nginx" >&2; exit 1; }
W=$(mktemp -d /tmp/roamhub-rate.XXXXXX)
cleanup() {
  relay_world_down "$W"
  if [ -n "${SERIES:-}" ]; then mkdir -p "$SERIES" && cp "$W"/*.series "$SERIES"/ 2>/dev/null || true; fi
  sleep 0.3; rm -rf "$W"
}
trap cleanup EXIT
relay_world_up "$W"
relay_hub_start "$W" "$HUBD"
RELAY_PIDS=$(relay_workers "$W")

switches() { for p in "$@"; do cat /proc/"$p"/task/*/status; done |
  awk '/^voluntary_ctxt/ {v += $2} /^nonvoluntary_ctxt/ {n += $2} END {print v, n}'; }
PERF=0
if command -v perf >/dev/null &&
   perf stat -e raw_syscalls:sys_enter -o /dev/null -- true 2>/dev/null; then PERF=1; fi

echo "fixed rate $RATE msg/s, bench-openloop -c64, ${SECS}s + 1s warm-up, $ROUNDS rounds ($(nproc) cores)"
echo
LAT_H="" LAT_S=""
[ "${HUB_LATENCY:-0}" = 1 ] && { LAT_H=" hub-added p50 / p99 / p99.9 µs [p99's bucket] |"; LAT_S="---|"; }
echo "| round | target | p50 µs | p99 µs | CPU µs/msg (user) | voluntary / involuntary switches per msg | syscalls/msg | windows ≥ 3 ms / ≥ 10 ms |$LAT_H"
echo "|---|---|---:|---:|---:|---|---:|---|$LAT_S"
for r in $(seq "$ROUNDS"); do
  for t in hub nginx; do
    case $t in hub) P=$HUB; PIDS=$HUB_PID;; nginx) P=$RELAY; PIDS=$RELAY_PIDS;; esac
    # shellcheck disable=SC2086
    c0=$(cpu_ticks $PIDS); u0=$(user_ticks $PIDS); read -r v0 n0 <<<"$(switches $PIDS)"
    HUB_ADDED_ARGS=()
    [ -n "$LAT_H" ] && [ $t = hub ] && hub_added_begin "$W" "$HUB_ADMIN"
    if [ "$PERF" = 1 ]; then
      perf stat -e raw_syscalls:sys_enter -p "${PIDS// /,}" -o "$W/perf.out" -- \
        sleep "$(python3 -c "print($SECS + 1)")" 2>/dev/null &
      PERF_PID=$!
    fi
    out=$(apparatus "$OPENLOOP" -p "$P" -r "$RATE" -d "$SECS" -w 1 -c 64 -s "$W/$t.$r.series" "${HUB_ADDED_ARGS[@]}")
    [ "$PERF" = 1 ] && { wait "$PERF_PID" || true; }
    # shellcheck disable=SC2086
    c1=$(cpu_ticks $PIDS); u1=$(user_ticks $PIDS); read -r v1 n1 <<<"$(switches $PIDS)"
    lat=""
    if [ -n "$LAT_H" ]; then
      lat=" - |"
      [ $t = hub ] && lat=" $(hub_added_end "$W" "$HUB_ADMIN" |
                              awk '{printf "%s / %s / %s [%s] (of %s)", $2, $3, $4, $5, $1}') |"
    fi
    sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' <<<"$out")
    p50=$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<<"$out")
    p99=$(sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' <<<"$out")
    sys="-"
    [ "$PERF" = 1 ] && sys=$(awk -v n="$sent" '/raw_syscalls/ {gsub(",", "", $1); printf "%.2f", $1 / n}' "$W/perf.out")
    slow=$(awk '$3 >= 3000 {a++} $3 >= 10000 {b++} END {printf "%d / %d of %d", a, b, NR}' "$W/$t.$r.series")
    cpu="$(cpu_us_per "$c0" "$c1" "$sent" 1) ($(cpu_us_per "$u0" "$u1" "$sent" 1))"
    awk -v r="$r" -v t="$t" -v p50="$p50" -v p99="$p99" -v cpu="$cpu" -v n="$sent" -v v0="$v0" \
        -v v1="$v1" -v n0="$n0" -v n1="$n1" -v sysc="$sys" -v slow="$slow" -v lat="$lat" 'BEGIN {
      if (n <= 0) n = 1
      printf "| %s | %s | %.0f | %.0f | %s | %.2f / %.2f | %s | %s |%s\n", r, t, p50, p99, cpu,
             (v1 - v0) / n, (n1 - n0) / n, sysc, slow, lat }'
  done
done
