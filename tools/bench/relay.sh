#!/usr/bin/env bash
# Relay benchmark (issue: roamhubd relay): relayed PRStartReq/s and latency p50/p99 with wrk,
# on one machine in one run, against
#   1. roamhubd relaying to a stub home network (nginx answering a fixed PRStartAns), sync, keep-alive;
#   2. nginx as a protocol-blind proxy_pass relay (keepalive upstream) to the same stub;
#   3. the stub alone.
# Prints a markdown table (median of RUNS rounds; each round runs the three targets one after the
# other) plus CPU time per relayed message of both relays (total and its user-space part).
# LATENCY=1 adds the fixed-rate latency table: build/tools/bench-openloop (open loop: requests
# sent on a fixed schedule, latency counted from the scheduled time) at 10 %, 50 % and 80 % of the
# hub's peak measured above (or PEAK=msg/s), against the hub, the nginx relay and the stub alone,
# p50/p99/p99.9 in µs, median of LAT_RUNS (3) runs of LAT_SECS (8) s, same connections (plain
# HTTP only: not with TLS=1). APPARATUS=batch|core0 keeps the stub, wrk and bench-openloop from
# taking the relays' CPU (relay_world.sh: SCHED_BATCH, or CPU 0 for them and the rest for the
# relays).
# TLS=1 puts TLS 1.3 in front of the hub and the nginx relay (the same ECDSA P-256 certificate,
# made by this script; the legs to the stub stay plain) and adds the new-connection table: wrk
# with `Connection: close`, so every request pays a full TLS handshake (wrk does not resume
# sessions), against the hub and nginx in rounds, with the CPU time each relay spends per
# connection.
# HUB_LATENCY=1 (with LATENCY=1) turns on the hub's relay.hub_latency (for the whole run, the wrk
# table too) and adds, for the hub's rows, the medians of the p50 and the p99 of the hub's own
# part of each message's round trip (relay_rate.sh says how it is measured).
# HUB_WORKERS=N sets the hub's `workers` (default: the hub's own, one per core). The script
# prints how the nginx relay's workers share the client's connections, measured during its first
# run (nginx accepts from one queue and its split varies from run to run; the hub's SO_REUSEPORT
# workers get about even shares).
# Usage: tools/bench/relay.sh [BUILD_DIR] [RUNS] [SECONDS] [CONNECTIONS]
# Needs: nginx (nginx-light) and wrk from Debian (deploy/bootstrap.sh installs both).
set -euo pipefail
BUILD=${1:-build}
RUNS=${2:-3}
SECS=${3:-10}
CONNS=${4:-64}
. "$(dirname "$0")/relay_world.sh"
HUBD="$BUILD/broker/roamhubd"
[ -x "$HUBD" ] || { echo "no $HUBD: build first" >&2; exit 1; }
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx" >&2; exit 1; }
W=$(mktemp -d /tmp/roamhub-bench.XXXXXX)
cleanup() { relay_world_down "$W"; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT

SCHEME=http; RELAY_TLS=""; HUB_TLS=""
if [ "${TLS:-0}" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$W/tls.key" -out "$W/tls.pem" 2>/dev/null
  SCHEME=https
  RELAY_TLS=" ssl; ssl_certificate $W/tls.pem; ssl_certificate_key $W/tls.key; ssl_protocols TLSv1.3"
  HUB_TLS=',"tls_cert":"'$W/tls.pem'","tls_key":"'$W/tls.key'"'
fi
relay_world_up "$W" "$RELAY_TLS"
# In its own session, as the nginx daemons are (they setsid when they daemonize): with the
# kernel's autogroup scheduling on (Debian's default), each session is one group sharing the CPUs
# fairly, and a hub left in this script's session would share its group with the load client
# while nginx has one to itself. HUB_SESSION=shared keeps the old placement for comparison.
relay_hub_start "$W" "$HUBD" "$HUB_TLS" "${HUB_SESSION:-own}"
if [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
  ag() { sed 's/ nice.*//; s|/autogroup-||' "/proc/$1/autogroup"; }
  echo "autogroups: hub $(ag $HUB_PID), nginx relay $(ag "$(cat "$W/relay.pid")"), stub $(ag "$(cat "$W/stub.pid")"), load client $(ag $$)" >&2
fi

# A realistic ChirpStack-style PRStartReq (1 GWInfo), TransactionID varied per request.
cp "$(dirname "$0")/relay_post.lua" "$W/post.lua"

run_wrk() { # $1 port [$2 scheme] [more wrk options] -> "rps p50_ms p99_ms requests non2xx"
  local p=$1 sch=${2:-http}
  shift; [ $# -gt 0 ] && shift
  apparatus wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$W/post.lua" "$@" "$sch://127.0.0.1:$p/" > "$W/wrk.out" 2>&1
  python3 - "$W/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v); x = float(m.group(1))
    if m.group(2) == "m":
        return x * 60000
    return x / 1000 if m.group(2) == "us" else x * 1000 if m.group(2) == "s" else x
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
# anchored: "Req/Sec ... 69.50%" must not match the 50th percentile
p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1)); p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
req = int(re.search(r"(\d+) requests in", t).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(rps, p50, p99, req, non2xx.group(1) if non2xx else 0)
PY
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# per_round FILE...: the first column of the FILEs side by side, one round per line of them:
# "a/b/c, a/b/c, ..." (rounded to whole numbers).
per_round() {
  awk 'FNR == 1 {f++} {v[FNR] = v[FNR] (f > 1 ? "/" : "") sprintf("%.0f", $1); if (FNR > n) n = FNR}
       END {for (i = 1; i <= n; i++) printf "%s%s", (i > 1 ? ", " : ""), v[i]; print ""}' "$@"
}

# sanity: the hub really relays (Success from the stub through the hub)
python3 - "$HUB" "$SCHEME" <<'PY'
import http.client, sys, json, ssl
if sys.argv[2] == "https":
    c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), timeout=5,
                                    context=ssl._create_unverified_context())
else:
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
req = {"ProtocolVersion":"1.0","SenderID":"000202","ReceiverID":"000505","TransactionID":7,"MessageType":"PRStartReq",
       "PHYPayload":"400100000a800100016b5ed0ec2e5c4f9f09f2bd7b","ULMetaData":{"DataRate":5,"ULFreq":868.1,"RFRegion":"EU868","GWCnt":1,"GWInfo":[]}}
c.request("POST", "/", json.dumps(req), {"Authorization": "Bearer bench-key-0123456789"})
a = json.loads(c.getresponse().read())
assert a["Result"]["ResultCode"] == "Success", a
PY

declare -A RPS P50 P99 CPU USER
for target in hub nginx stub; do : > "$W/$target.runs"; done
# Rounds, not blocks: each round runs the hub, the nginx relay and the stub once, so a slow
# minute of a shared machine falls on all three alike instead of on whichever ran then.
RELAY_WORKERS=$(relay_workers "$W"); STUB_WORKER=$(pgrep -d' ' -P "$(cat "$W/stub.pid")")
for r in $(seq "$RUNS"); do
  for target in hub nginx stub; do
    case $target in hub) P=$HUB; S=$SCHEME; PIDS=$HUB_PID;; nginx) P=$RELAY; S=$SCHEME; PIDS=$RELAY_WORKERS;;
      stub) P=$STUB; S=http; PIDS=$STUB_WORKER;; esac
    c0=$(cpu_ticks $PIDS); u0=$(user_ticks $PIDS)
    if [ "$target" = nginx ] && [ "$r" = 1 ]; then # the relay workers' share of the connections
      ( sleep "$(python3 -c "print($SECS / 2)")"
        ss -tnpH state established "( sport = :$RELAY )" | grep -o "pid=[0-9]*" | sort | uniq -c |
          awk '{printf "%s%d", (NR > 1 ? " + " : ""), $1} END {print ""}' > "$W/nginx.dist" ) &
    fi
    read -r rps p50 p99 req non2xx < <(run_wrk "$P" "$S")
    c1=$(cpu_ticks $PIDS); u1=$(user_ticks $PIDS)
    cpu_us=$(cpu_us_per "$c0" "$c1" "$req")
    [ "$non2xx" = 0 ] || echo "warning: $target returned $non2xx non-2xx responses" >&2
    echo "$rps $p50 $p99 $cpu_us $(cpu_us_per "$u0" "$u1" "$req")" >> "$W/$target.runs"
  done
done
for target in hub nginx stub; do
  RPS[$target]=$(cut -d' ' -f1 "$W/$target.runs" | median)
  P50[$target]=$(cut -d' ' -f2 "$W/$target.runs" | median)
  P99[$target]=$(cut -d' ' -f3 "$W/$target.runs" | median)
  CPU[$target]=$(cut -d' ' -f4 "$W/$target.runs" | median)
  USER[$target]=$(cut -d' ' -f5 "$W/$target.runs" | median)
done
# hub errors would show as non-Success answers: count them through the hub's metrics
curl -s "http://127.0.0.1:$HUB_ADMIN/metrics" | grep '^roamhub_messages_total' > "$W/metrics.txt" || true

echo
echo "relay benchmark ($SCHEME in front of the hub and the nginx relay): $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), wrk -t2 -c$CONNS -d${SECS}s, median of $RUNS runs"
echo
echo "| target | requests/s | p50 ms | p99 ms |"
echo "|---|---:|---:|---:|"
echo "| roamhubd relay -> nginx stub | ${RPS[hub]} | ${P50[hub]} | ${P99[hub]} |"
echo "| nginx proxy_pass relay -> nginx stub | ${RPS[nginx]} | ${P50[nginx]} | ${P99[nginx]} |"
echo "| nginx stub alone (plain HTTP) | ${RPS[stub]} | ${P50[stub]} | ${P99[stub]} |"
echo
python3 -c "print('throughput ratio roamhubd/nginx-relay: %.2f; p99 ratio: %.2f' % (${RPS[hub]}/${RPS[nginx]}, ${P99[hub]}/${P99[nginx]}))"
echo "CPU time per relayed message (user+system, from /proc, median): roamhubd ${CPU[hub]} us (all threads), nginx relay ${CPU[nginx]} us (its worker processes); the stub per answer: ${CPU[stub]} us"
echo "of which user space: roamhubd ${USER[hub]} us, nginx relay ${USER[nginx]} us, the stub ${USER[stub]} us"
echo "per round (requests/s hub nginx stub): $(per_round "$W/hub.runs" "$W/nginx.runs" "$W/stub.runs")"
echo "nginx relay: the client's $CONNS connections per worker process: $(cat "$W/nginx.dist" 2>/dev/null)"
echo "hub outcomes:"; cat "$W/metrics.txt"

if [ "${TLS:-0}" = 1 ]; then
  echo
  echo "new TLS connection per request (wrk -H 'Connection: close', full handshakes), median of $RUNS rounds"
  echo
  echo "| target | requests/s | p50 ms | p99 ms | CPU µs per connection |"
  echo "|---|---:|---:|---:|---:|"
  for target in hub nginx; do : > "$W/$target.nc"; done
  for r in $(seq "$RUNS"); do # rounds, as above
    for target in hub nginx; do
      case $target in hub) P=$HUB; PIDS=$HUB_PID;; nginx) P=$RELAY; PIDS=$RELAY_WORKERS;; esac
      c0=$(cpu_ticks $PIDS)
      read -r rps p50 p99 req non2xx < <(run_wrk "$P" https -H "Connection: close")
      c1=$(cpu_ticks $PIDS)
      echo "$rps $p50 $p99 $(cpu_us_per "$c0" "$c1" "$req" 1)" >> "$W/$target.nc"
    done
  done
  for target in hub nginx; do
    echo "| $target | $(cut -d' ' -f1 "$W/$target.nc" | median) | $(cut -d' ' -f2 "$W/$target.nc" | median) | $(cut -d' ' -f3 "$W/$target.nc" | median) | $(cut -d' ' -f4 "$W/$target.nc" | median) |"
  done
  echo "per round (new connections/s hub nginx): $(per_round "$W/hub.nc" "$W/nginx.nc")"
fi

[ -n "${LATENCY:-}" ] || exit 0
# bench-openloop speaks plain HTTP only: with TLS=1 every request would fail (the table would
# show only losses); measure the latency table with TLS=0.
if [ "${TLS:-0}" = 1 ]; then echo; echo "(fixed-rate latency table: plain HTTP only, run with TLS=0)"; exit 0; fi
OPENLOOP="$BUILD/tools/bench-openloop"
[ -x "$OPENLOOP" ] || { echo "no $OPENLOOP: build first" >&2; exit 1; }
PEAK=${PEAK:-${RPS[hub]}}
LAT_RUNS=${LAT_RUNS:-3}
LAT_SECS=${LAT_SECS:-8}
echo
echo "fixed-rate latency (bench-openloop -c$CONNS, ${LAT_SECS}s + 1s warm-up, median of $LAT_RUNS runs; hub peak $PEAK msg/s)"
echo
LAT_H="" LAT_S="" NCOL=5
if [ "${HUB_LATENCY:-0}" = 1 ]; then LAT_H=" hub-added p50 / p99 µs |"; LAT_S="---:|"; NCOL=7; fi
echo "| load | target | rate msg/s | p50 µs | p99 µs | p99.9 µs | lost+non-2xx | client late p99 µs |$LAT_H"
echo "|---|---|---:|---:|---:|---:|---:|---:|$LAT_S"
for pct in 10 50 80; do
  rate=$(python3 -c "print(int($PEAK * $pct / 100))")
  for target in stub nginx hub; do : > "$W/lat.$target"; done
  for r in $(seq "$LAT_RUNS"); do # rounds, as above
    for target in stub nginx hub; do
      case $target in hub) P=$HUB;; nginx) P=$RELAY;; stub) P=$STUB;; esac
      HUB_ADDED_ARGS=()
      [ -n "$LAT_H" ] && [ $target = hub ] && hub_added_begin "$W" "$HUB_ADMIN"
      apparatus "$OPENLOOP" -p "$P" -r "$rate" -d "$LAT_SECS" -c "$CONNS" "${HUB_ADDED_ARGS[@]}" > "$W/ol.out"
      added="- -"
      [ -n "$LAT_H" ] && [ $target = hub ] && added=$(hub_added_end "$W" "$HUB_ADMIN" | cut -d' ' -f2,3)
      python3 - "$W/ol.out" "$added" >> "$W/lat.$target" <<'PY'
import sys
kv = dict(x.split("=") for x in open(sys.argv[1]).read().split())
print(kv["p50_us"], kv["p99_us"], kv["p999_us"], int(kv["lost"]) + int(kv["bad"]), kv["late_us"],
      sys.argv[2])
PY
    done
  done
  for target in stub nginx hub; do
    row=""
    for col in $(seq 5); do row="$row | $(cut -d' ' -f$col "$W/lat.$target" | median)"; done
    if [ "$NCOL" = 7 ]; then
      if [ $target = hub ]; then
        row="$row | $(cut -d' ' -f6 "$W/lat.$target" | median) / $(cut -d' ' -f7 "$W/lat.$target" | median)"
      else row="$row | -"; fi
    fi
    echo "| $pct % | $target | $rate$row |"
  done
done
