#!/usr/bin/env bash
# Growth benchmark (issue #18 "Costs that must not grow with the exchange"): what roamhubd costs
# as the exchange grows, measured per table size with the growth factor per 10x of input.
#
# Sections (each helper owns its own; add a section as a function and list it in SECTIONS):
#   relay   #18.1  relay throughput + p99 interleaved with a reference hub holding a tiny table,
#                  relay throughput while the admin API writes 5 routing records/s,
#                  admin write p50/p99 for policies and DevAddr blocks
#   import  #18.4  `roamdb import` time and peak RSS; hub start-up with `import` (time, RSS)
#   index   #18.1  in the routing library alone: full index rebuild vs. the index update after
#                  one write (tools/bench-rp), per table size
#   startup #18.6  hub start-up on an existing database: time to listening, RSS (total/anon)
#   members #18.2  admin member writes p50/p99 at 10 / 1k / 10k members,  } tools/bench/
#                  /healthz p50/p99 during the writes                      } growth-admin.sh
#   stats   #18.3  30-day statistics query, 10 and 1000 pairs             } (against a build
#   homes   #18.5  the same load over 1 vs 1000 home endpoints           }  of main)
#   All by default (the admin part takes about 15 more minutes); -x selects.
#
# Tables: for SIZE blocks, SIZE DevAddr blocks (/25, 1024 per type-3 NetID) and SIZE routing
# policies (forwarders x homes), plus the relay's own records (forwarder 000202, home 000505
# reached at a local nginx stub, block 0A000000/7, default policy). Tables and their databases
# are generated once into WORK and reused by later runs (the 1M table takes minutes to build).
#
# Usage: tools/bench/growth.sh [-b BUILD] [-w WORK] [-s "1 10000 100000 1000000"] [-r RUNS]
#                              [-t SECONDS] [-c CONNECTIONS] [-x "relay index import startup
#                              members stats homes"]
#                              [-B BEFORE_BUILD]
#   BUILD defaults to build, WORK to /tmp/roamhub-growth (kept between runs; delete it to
#   regenerate). With -B, the relay section also runs a hub of BEFORE_BUILD (e.g. a build of
#   an older commit) on a copy of each table, interleaved in the same runs: before/after in one
#   run on a shared machine. Measures the reference in the same run; reports medians of RUNS runs.
# Needs: wrk, nginx, /usr/bin/time, python3 (deploy/bootstrap.sh installs them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=build
WORK=/tmp/roamhub-growth
SIZES="1 10000 100000 1000000"
RUNS=3
SECS=8
CONNS=64
SECTIONS="relay index import startup members stats homes"
BEFORE=""
SETTLE=${SETTLE:-12} # seconds after start-up before the import section reads a hub's RSS
while getopts "b:w:s:r:t:c:x:B:" o; do
  case $o in
    b) BUILD=$OPTARG ;; w) WORK=$OPTARG ;; s) SIZES=$OPTARG ;; r) RUNS=$OPTARG ;;
    t) SECS=$OPTARG ;; c) CONNS=$OPTARG ;; x) SECTIONS=$OPTARG ;; B) BEFORE=$OPTARG ;;
    *) sed -n '2,27p' "$0"; exit 2 ;;
  esac
done
BUILD=$(cd "$BUILD" && pwd)
HUBD="$BUILD/broker/roamhubd"
if [ -n "$BEFORE" ]; then
  BEFORE=$(cd "$BEFORE" && pwd)
  [ -x "$BEFORE/broker/roamhubd" ] || { echo "no $BEFORE/broker/roamhubd" >&2; exit 1; }
fi
ROAMDB="$BUILD/tools/roamdb"
for b in "$HUBD" "$ROAMDB"; do [ -x "$b" ] || { echo "no $b: build first" >&2; exit 1; }; done
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx" >&2; exit 1; }
mkdir -p "$WORK"
RUN=$(mktemp -d "$WORK/run.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$RUN/stub.pid" ] && kill "$(cat "$RUN/stub.pid")" 2>/dev/null || true
  sleep 0.3; rm -rf "$RUN"
}
trap cleanup EXIT

# ------------------------------------------------------------------------------ common helpers
# ANS (the stub's PRStartAns), KEY (the forwarder's Bearer key), relay_table FILE STUB_PORT, relay_port
. "$ROOT/tools/bench/relay_world.sh"
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'; }
HASH=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
STUB=$(relay_port)
stub_start "$RUN" "$STUB"

# gen_table SIZE FILE: the table described at the top (endpoint URL filled in at start-up).
gen_table() {
  python3 - "$1" "$2" <<'PY'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
nets = max(1, (n + 1023) // 1024)
with open(path, "w") as f:
    f.write('{"networks":[{"net_id":"000202","name":"fwd"},{"net_id":"000505","name":"home"}')
    for i in range(nets):
        f.write(',{"net_id":"%06x","name":"n%d"}' % (0x600000 | i, i))
    f.write('],\n"members":[{"id":"fwd","net_ids":["000202"],"api_key_hashes":["@HASH@"],'
            '"rate_limit_per_s":10000000},{"id":"home","net_ids":["000505"]}],\n'
            '"endpoints":[{"id":"home","net_id":"000505","url":"http://127.0.0.1:@STUB@/",'
            '"timeout_ms":3000,"max_in_flight":4096}],\n'
            '"devaddr_blocks":[{"prefix":"0a000000/7","net_id":"000505"}')
    for k in range(n - 1):
        net, sub = k // 1024, k % 1024
        f.write(',\n{"prefix":"%08x/25","net_id":"%06x"}' % (0xE0000000 | net << 17 | sub << 7, 0x600000 | net))
    f.write('],\n"policies":[{"forwarder_net_id":"000202","uplink":{"join_request":true,'
            '"mac_data":true,"application_data":true,"signal_quality":true,"localization":true},'
            '"downlink":{"join_accept":true,"mac_data":true,"application_data":true}}')
    for k in range(n - 1):
        f.write(',\n{"forwarder_net_id":"%06x","home_net_id":"%06x","uplink":{"application_data":true},'
                '"downlink":{"mac_data":true}}' % (0x600000 | (k % nets), 0x010000 + k // nets))
    f.write("]}\n")
PY
  sed -i "s/@HASH@/$HASH/; s/@STUB@/$STUB/" "$2"
}

# table SIZE -> path of the table JSON (generated once per WORK; the stub port is per run, so
# the endpoint URL is rewritten in place).
table() {
  local f="$WORK/table-$1.json"
  [ -s "$f" ] || gen_table "$1" "$f"
  sed -i -E "0,/127\.0\.0\.1:[0-9]+/s//127.0.0.1:$STUB/" "$f"
  echo "$f"
}

# start_hub NAME DB_DIR [IMPORT_FILE]: starts roamhubd (HUB_BIN, default BUILD's); sets HUB_PID, HUB_TS, HUB_ADMIN and
# HUB_START_MS (exec to listening, i.e. ports file written).
start_hub() {
  local name=$1 db=$2 imp=${3:-}
  local d="$RUN/$name"; mkdir -p "$d"; rm -f "$d/ports.json"
  python3 - "$d/hub.json" "$db" "$imp" "$d" <<'PY'
import json, sys
cfg = {"log_level": "warn", "database": {"path": sys.argv[2], "map_size_mb": 4096},
       "ts002": {"address": "127.0.0.1", "port": 0},
       "admin": {"address": "127.0.0.1", "port": 0, "operator_key_file": sys.argv[4] + "/operator.key"},
       "relay": {"pending_max": 1000000}}
if sys.argv[3]:
    cfg["import"] = sys.argv[3]
json.dump(cfg, open(sys.argv[1], "w"))
PY
  local t0; t0=$(date +%s%N)
  "${HUB_BIN:-$HUBD}" -c "$d/hub.json" --ports-file "$d/ports.json" > "$d/hub.log" 2>&1 &
  HUB_PID=$!; PIDS+=("$HUB_PID")
  for _ in $(seq 6000); do [ -s "$d/ports.json" ] && break; kill -0 "$HUB_PID" 2>/dev/null || break; sleep 0.01; done
  [ -s "$d/ports.json" ] || { echo "hub $name did not start:" >&2; cat "$d/hub.log" >&2; exit 1; }
  HUB_START_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
  HUB_TS=$(python3 -c "import json;print(json.load(open('$d/ports.json'))['ts002'])")
  HUB_ADMIN=$(python3 -c "import json;print(json.load(open('$d/ports.json'))['admin'])")
  HUB_DIR=$d
}
stop_hub() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# rss PID -> "total_MB anon_MB"
rss() { awk '/^VmRSS/{t=$2} /^RssAnon/{a=$2} END{printf "%.0f %.0f\n", t/1024, a/1024}' "/proc/$1/status"; }

# Relay load: a ChirpStack-style PRStartReq for DevAddr 0A000001 (1 GWInfo), TransactionID
# varied per request (as tools/bench/relay.sh).
cat > "$RUN/post.lua" <<LUA
local n = 0
local t1 = '{"ProtocolVersion":"1.0","SenderID":"000202","ReceiverID":"000505","TransactionID":'
local t2 = ',"MessageType":"PRStartReq","PHYPayload":"400100000a800100016b5ed0ec2e5c4f9f09f2bd7b","ULMetaData":{"DataRate":5,"ULFreq":868.1,"RecvTime":"2026-11-21T12:00:00.123Z","RFRegion":"EU868","GWCnt":1,"GWInfo":[{"ID":"05060708","RFRegion":"EU868","RSSI":-81,"SNR":7.5,"Lat":52.37,"Lon":4.89,"ULToken":"0a0b0c0d0e0f10111213","DLAllowed":true}]}}'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
request = function()
  n = n + 1
  return wrk.format(nil, "/", nil, t1 .. n .. t2)
end
LUA
# run_wrk PORT -> "rps p99_ms non2xx requests"
run_wrk() {
  wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$RUN/post.lua" "http://127.0.0.1:$1/" > "$RUN/wrk.out" 2>&1
  python3 - "$RUN/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v); x = float(m.group(1))
    return {"us": x / 1000, "ms": x, "s": x * 1000, "m": x * 60000}[m.group(2)]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
req = int(re.search(r"(\d+) requests in", t).group(1))
print(rps, p99, bad.group(1) if bad else 0, req)
PY
}

# cpu_run PID PORT -> run_wrk's fields + the hub's CPU time (user+system, all threads) per
# relayed message in us, over the run (less sensitive to other load on the machine than msg/s)
cpu_run() {
  local t0 t1 out
  t0=$(cpu_ticks "$1")
  out=$(run_wrk "$2")
  t1=$(cpu_ticks "$1")
  echo "$out $(cpu_us_per "$t0" "$t1" "${out##* }")"
}

# admin_writer ADMIN_PORT KEYFILE MODE ARG...: the admin API client used by the sections.
#   rate R SECONDS   PUTs alternating a policy and a DevAddr block at R writes/s (until SECONDS)
#   lat N            N policy PUTs then N block PUTs, one at a time; prints
#                    "policy_p50 policy_p99 block_p50 block_p99" in ms
admin_writer() {
  python3 - "$@" <<'PY'
import http.client, json, sys, time, urllib.parse
port, keyfile, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
kid, secret = open(keyfile).read().strip().split(":", 1)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
def req(method, path, body, hdr):
    c.request(method, path, body, hdr)
    r = c.getresponse(); data = r.read()
    return r.status, data
st, data = req("POST", "/api/v1/oauth/token", urllib.parse.urlencode(
    {"grant_type": "client_credentials", "client_id": kid, "client_secret": secret}),
    {"Content-Type": "application/x-www-form-urlencoded"})
assert st == 200, (st, data)
H = {"Authorization": "Bearer " + json.loads(data)["access_token"], "Content-Type": "application/json"}
seq = int(time.time() * 1000) % 100000  # distinct records across runs on a reused database
def put_policy(i):
    home = "%06x" % (0x100000 + (seq + i) % 0x80000)
    st, d = req("PUT", "/api/v1/policies/000202/" + home, json.dumps(
        {"uplink": {"join_request": True, "application_data": bool(i & 1)}, "downlink": {"mac_data": True}}), H)
    assert st in (200, 201), (st, d)
def put_block(i):
    v = 0x0B000000 | (((seq + i) % 0x10000) << 8)  # /24 inside 000505's 0A000000/7
    st, d = req("PUT", "/api/v1/devaddr-blocks/%08X/24" % v, json.dumps(
        {"prefix": "%08x/24" % v, "net_id": "000505", "cluster_id": "c%d" % (i & 7)}), H)
    assert st in (200, 201), (st, d)
if mode == "rate":
    rate, secs = float(sys.argv[4]), float(sys.argv[5])
    t0 = time.monotonic(); i = 0
    while time.monotonic() - t0 < secs:
        (put_policy if i % 2 == 0 else put_block)(i)
        i += 1
        nxt = t0 + i / rate
        time.sleep(max(0.0, nxt - time.monotonic()))
    print(i)
else:
    n = int(sys.argv[4]); out = []
    for fn in (put_policy, put_block):
        lat = []
        for i in range(n):
            a = time.monotonic(); fn(i); lat.append((time.monotonic() - a) * 1000)
        lat.sort(); out += [lat[len(lat) // 2], lat[min(len(lat) - 1, len(lat) * 99 // 100)]]
    print(" ".join("%.2f" % x for x in out))
PY
}

# Results: RES[size,metric] = value; printed as one table per section with growth per 10x.
declare -A RES
print_table() { # TITLE "metric:label ..." -- prints sizes as rows, metrics as columns + growth
  local title=$1; shift
  echo; echo "### $title"; echo
  local hdr="| blocks |" sep="|---:|"
  for m in "$@"; do hdr="$hdr ${m#*:} |"; sep="$sep---:|"; done
  echo "$hdr"; echo "$sep"
  local prev=""
  for s in $SIZES; do
    local row="| $s |"
    for m in "$@"; do
      local k=${m%%:*} v=${RES[$s,${m%%:*}]:-}
      local g=""
      if [ -n "$prev" ] && [ -n "$v" ] && [ -n "${RES[$prev,$k]:-}" ]; then
        g=$(python3 -c "a,b=float('${RES[$prev,$k]}'),float('$v');print(' (x%.2f)' % (b/a) if a>0 else '')")
      fi
      row="$row ${v:--}$g |"
    done
    echo "$row"; prev=$s
  done
  echo; echo "(xF) = growth factor against the previous size (10x more blocks and policies)"
}

# db SIZE -> database directory holding the table, imported once with roamdb (the import
# section measures that import; other sections reuse the database).
db_for() {
  local d="$WORK/db-$1"
  if [ ! -s "$d/data.mdb" ]; then
    rm -rf "$d"; mkdir -p "$d"
    "$ROAMDB" --db "$d" --map-mib 4096 --nosync import "$(table "$1")" >/dev/null 2>&1
  fi
  # the stub's port changes per run: point the home endpoint at this run's stub
  echo '{"endpoints":[{"id":"home","net_id":"000505","url":"http://127.0.0.1:'"$STUB"'/","timeout_ms":3000,"max_in_flight":4096}]}' > "$RUN/ep.json"
  "$ROAMDB" --db "$d" --nosync import "$RUN/ep.json" >/dev/null 2>&1
  echo "$d"
}

# measure_starts SIZE KEY SETTLE_S DB [IMPORT]: RUNS hub starts (a fresh DB each time when
# importing); RES[SIZE,KEY_ms|KEY_rss|KEY_anon] = medians of start time, RSS and anon RSS (MB)
# SETTLE_S seconds after listening.
measure_starts() {
  local s=$1 k=$2 settle=$3 db=$4 imp=${5:-} st=() tot=() an=() a b
  for _ in $(seq "$RUNS"); do
    [ -z "$imp" ] || rm -rf "$db"
    start_hub "$k$s" "$db" "$imp"
    sleep "$settle"
    read -r a b < <(rss "$HUB_PID")
    st+=("$HUB_START_MS"); tot+=("$a"); an+=("$b")
    stop_hub "$HUB_PID"
  done
  RES[$s,${k}_ms]=$(printf '%s\n' "${st[@]}" | median)
  RES[$s,${k}_rss]=$(printf '%s\n' "${tot[@]}" | median)
  RES[$s,${k}_anon]=$(printf '%s\n' "${an[@]}" | median)
}

# ------------------------------------------------------------------------------ #18.1 relay
section_relay() {
  local ref_table="$RUN/table-ref.json"
  relay_table "$ref_table" "$STUB"
  rm -rf "$RUN/db-ref"; start_hub ref "$RUN/db-ref" "$ref_table"
  local ref_pid=$HUB_PID ref_port=$HUB_TS
  for s in $SIZES; do
    local db; db=$(db_for "$s"); table "$s" >/dev/null
    start_hub "big$s" "$db"
    local pid=$HUB_PID prt=$HUB_TS adm=$HUB_ADMIN key="$HUB_DIR/operator.key"
    local bpid="" bprt="" badm="" bkey=""
    if [ -n "$BEFORE" ]; then # the same table for the older build, on its own copy
      rm -rf "$RUN/db-before"; cp -r "$db" "$RUN/db-before"
      HUB_BIN="$BEFORE/broker/roamhubd" start_hub "before$s" "$RUN/db-before"
      bpid=$HUB_PID bprt=$HUB_TS badm=$HUB_ADMIN bkey="$HUB_DIR/operator.key"
    fi
    sleep 1 # let the index builder finish its first build
    : > "$RUN/r.ref"; : > "$RUN/r.big"; : > "$RUN/r.wr"; : > "$RUN/b.big"; : > "$RUN/b.wr"
    for _ in $(seq "$RUNS"); do # interleaved: reference, big table, big table + 5 writes/s
      run_wrk "$ref_port" >> "$RUN/r.ref"
      cpu_run "$pid" "$prt" >> "$RUN/r.big"
      admin_writer "$adm" "$key" rate 5 "$SECS" > "$RUN/writes.out" &
      local wpid=$!
      cpu_run "$pid" "$prt" >> "$RUN/r.wr"
      wait "$wpid"
      if [ -n "$bpid" ]; then
        cpu_run "$bpid" "$bprt" >> "$RUN/b.big"
        admin_writer "$badm" "$bkey" rate 5 "$SECS" > "$RUN/writes.out" &
        wpid=$!
        cpu_run "$bpid" "$bprt" >> "$RUN/b.wr"
        wait "$wpid"
      fi
    done
    if [ -n "$bpid" ]; then
      RES[$s,b_rps]=$(cut -d' ' -f1 "$RUN/b.big" | median)
      RES[$s,b_wr_rps]=$(cut -d' ' -f1 "$RUN/b.wr" | median)
      RES[$s,b_wr_p99]=$(cut -d' ' -f2 "$RUN/b.wr" | median)
      RES[$s,b_cpu]=$(cut -d' ' -f5 "$RUN/b.big" | median)
      RES[$s,b_wr_cpu]=$(cut -d' ' -f5 "$RUN/b.wr" | median)
      RES[$s,b_wr_rel]=$(python3 -c "print('%.3f' % (${RES[$s,b_wr_rps]}/${RES[$s,b_rps]}))")
      stop_hub "$bpid"; rm -rf "$RUN/db-before"
    fi
    RES[$s,ref_rps]=$(cut -d' ' -f1 "$RUN/r.ref" | median)
    RES[$s,ref_p99]=$(cut -d' ' -f2 "$RUN/r.ref" | median)
    RES[$s,rps]=$(cut -d' ' -f1 "$RUN/r.big" | median)
    RES[$s,p99]=$(cut -d' ' -f2 "$RUN/r.big" | median)
    RES[$s,wr_rps]=$(cut -d' ' -f1 "$RUN/r.wr" | median)
    RES[$s,wr_p99]=$(cut -d' ' -f2 "$RUN/r.wr" | median)
    RES[$s,cpu]=$(cut -d' ' -f5 "$RUN/r.big" | median)
    RES[$s,wr_cpu]=$(cut -d' ' -f5 "$RUN/r.wr" | median)
    RES[$s,rel]=$(python3 -c "print('%.3f' % (${RES[$s,rps]}/${RES[$s,ref_rps]}))")
    RES[$s,wr_rel]=$(python3 -c "print('%.3f' % (${RES[$s,wr_rps]}/${RES[$s,rps]}))")
    read -r a b c d < <(admin_writer "$adm" "$key" lat 200)
    RES[$s,pol_p50]=$a; RES[$s,pol_p99]=$b; RES[$s,blk_p50]=$c; RES[$s,blk_p99]=$d
    cat "$RUN"/r.* | awk '$3 != 0 {bad=1} END {if (bad) print "warning: non-2xx answers in relay runs" > "/dev/stderr"}'
    stop_hub "$pid"
  done
  stop_hub "$ref_pid"
  print_table "relay (msg/s, p99 ms; wrk -t2 -c$CONNS -d${SECS}s, median of $RUNS interleaved runs)" \
    ref_rps:"reference msg/s" rps:"msg/s" rel:"/reference" p99:"p99 ms" ref_p99:"ref p99 ms" \
    wr_rps:"msg/s at 5 writes/s" wr_rel:"/no writes" wr_p99:"p99 ms at 5 writes/s" \
    cpu:"hub CPU us/msg" wr_cpu:"hub CPU us/msg at 5 writes/s"
  [ -z "$BEFORE" ] || print_table "before: $BEFORE, same runs (interleaved)" \
    b_rps:"msg/s" b_wr_rps:"msg/s at 5 writes/s" b_wr_rel:"/no writes" \
    b_wr_p99:"p99 ms at 5 writes/s" b_cpu:"hub CPU us/msg" b_wr_cpu:"hub CPU us/msg at 5 writes/s"
  print_table "admin writes (ms per PUT, 200 each, sequential)" \
    pol_p50:"policy p50" pol_p99:"policy p99" blk_p50:"block p50" blk_p99:"block p99"
}

# ------------------------------------------------------------------------------ #18.1 index
# Index cost of one routing write, in the routing library alone (tools/bench-rp): SIZE blocks
# imported, then 200 single-block writes each followed by an explicit index refresh (a delta
# since #18.1; with an older build the refresh rebuilds, and its cost is the rebuild line).
section_index() {
  local br="$BUILD/tools/bench-rp"
  [ -x "$br" ] || { echo "no $br: build it for the index section" >&2; return; }
  for s in $SIZES; do
    : > "$RUN/ix.rb"; : > "$RUN/ix.p50"; : > "$RUN/ix.p99"
    for _ in $(seq "$RUNS"); do
      "$br" --dir "$RUN" --ops 1000 --flips 0 --import "$s" --import-only 1 > "$RUN/brp.out"
      sed -n 's/^compiled index rebuild for [0-9]* blocks: \([0-9.]*\) ms.*/\1/p' "$RUN/brp.out" >> "$RUN/ix.rb"
      awk '/^index update after one write/ {for (i=1;i<=NF;i++) {if ($i=="median") m=$(i+1); if ($i=="p99") p=$(i+1)}; print m/1000 >> "'"$RUN/ix.p50"'"; print p/1000 >> "'"$RUN/ix.p99"'"}' "$RUN/brp.out"
    done
    RES[$s,rebuild_ms]=$(median < "$RUN/ix.rb")
    RES[$s,upd_p50]=$(median < "$RUN/ix.p50")
    RES[$s,upd_p99]=$(median < "$RUN/ix.p99")
  done
  print_table "index cost of one routing write (bench-rp; median of $RUNS runs)" \
    rebuild_ms:"full rebuild ms" upd_p50:"update after a write p50 us" upd_p99:"p99 us"
}

# ------------------------------------------------------------------------------ #18.4 import
section_import() {
  for s in $SIZES; do
    local t; t=$(table "$s")
    RES[$s,json_mb]=$(python3 -c "import os;print('%.1f' % (os.path.getsize('$t')/1048576))")
    local times=() rsss=()
    for _ in $(seq "$RUNS"); do
      rm -rf "$RUN/imp"; mkdir -p "$RUN/imp"
      /usr/bin/time -f "%e %M" -o "$RUN/time.out" "$ROAMDB" --db "$RUN/imp" --map-mib 4096 \
        import "$t" > /dev/null 2> "$RUN/imp.err" || { cat "$RUN/imp.err" >&2; exit 1; }
      read -r e m < "$RUN/time.out"; times+=("$e"); rsss+=("$((m / 1024))")
    done
    RES[$s,imp_s]=$(printf '%s\n' "${times[@]}" | median)
    RES[$s,imp_rss]=$(printf '%s\n' "${rsss[@]}" | median)
    # hub started with `import` on an empty database: time to listening and memory after it
    # settled (jemalloc returns freed pages lazily)
    measure_starts "$s" himp "$SETTLE" "$RUN/himp" "$t"
    rm -rf "$RUN/imp" "$RUN/himp"
  done
  print_table "import (median of $RUNS; fsync per commit)" json_mb:"JSON MB" \
    imp_s:"roamdb import s" imp_rss:"roamdb peak RSS MB" himp_ms:"hub start with import ms" \
    himp_rss:"hub RSS ${SETTLE}s after MB" himp_anon:"hub anon RSS ${SETTLE}s after MB"
}

# ------------------------------------------------------------------------------ #18.6 start-up
section_startup() {
  for s in $SIZES; do
    local db; db=$(db_for "$s"); table "$s" >/dev/null
    measure_starts "$s" st 0.5 "$db"
  done
  print_table "start-up on an existing database (median of $RUNS)" st_ms:"start ms" \
    st_rss:"RSS MB" st_anon:"anon RSS MB"
}

# ------------------------------------------------------------------------------ #18.2, 18.3, 18.5
# Member writes at 10/1k/10k members, 30-day statistics queries over 10 and 1000 pairs, and the
# same relay load over 1 vs 1000 home endpoints: tools/bench/growth-admin.sh (its own hubs and
# reference, interleaved); BEFORE is its reference build when given, else it builds main.
# The three run in one growth-admin.sh call (one reference build), after the other sections.
ADMIN_SECTIONS=""
section_members() { ADMIN_SECTIONS="$ADMIN_SECTIONS members"; }
section_stats() { ADMIN_SECTIONS="$ADMIN_SECTIONS stats"; }
section_homes() { ADMIN_SECTIONS="$ADMIN_SECTIONS homes"; }

# ------------------------------------------------------------------------------ main
echo "growth benchmark: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "build $BUILD ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)), sizes: $SIZES," \
     "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for sec in $SECTIONS; do "section_$sec"; done
if [ -n "$ADMIN_SECTIONS" ]; then
  # shellcheck disable=SC2086 # one argument per section
  RUNS=$RUNS SECS=$SECS CONNS=$CONNS "$ROOT/tools/bench/growth-admin.sh" "$BUILD" "${BEFORE:--}" \
    $ADMIN_SECTIONS
fi
