# Sourced by tools/bench/relay.sh, relay_instr.sh, relay_rate.sh and cluster_throughput.py: the
# one relay benchmark world they measure.
# ANS: the stub home network's fixed PRStartAns; KEY: the forwarder's Bearer key;
# relay_table FILE STUB_PORT [GW]: writes the routing table (forwarder 000202 -> home 000505 at the
# stub, DevAddr block 0A000000/7, an allow-all policy; GW=false: the policy withholds the
# gateways' signal quality and location, so the relay strips them from every GWInfo).
# stub_start DIR PORT: the stub home network, nginx answering ANS on 127.0.0.1:PORT (pid in
# DIR/stub.pid, files under DIR/stub).
# nginx_conf DIR NAME WORKERS SERVER_BLOCK [MAIN]: writes DIR/NAME.conf for `nginx -c
# DIR/NAME.conf -p DIR` (pid DIR/NAME.pid, log and temp files under DIR/NAME, no access log,
# unlimited keep-alive requests); MAIN: more main-context directives.
# relay_block PORT STUB_PORT [TLS_DIRECTIVES]: the server block of the reference relay, nginx as
# a protocol-blind proxy_pass relay with a keep-alive upstream to the stub.
# relay_world_up DIR [TLS_DIRECTIVES]: sets STUB and RELAY to free ports, starts the stub and the
# nginx relay (DIR/relay.pid) and writes DIR/table.json.
# relay_hub_start DIR HUBD [TS002_FIELDS] [SESSION]: writes DIR/hub.json for the table (HUB_WORKERS
# sets `workers`; TS002_FIELDS are more "ts002" members, e.g. ',"tls_cert":...'), starts HUBD in
# its own session (SESSION=shared: in this script's) and waits for its ports: sets HUB_PID and
# HUB (the TS002 port) and HUB_ADMIN (the admin port, /metrics); HUB_LATENCY=1 turns the hub's
# relay.hub_latency on (kernel receive timestamps, roamhub_relay_latency_seconds{stage=
# "hub_added"}). relay_world_down DIR stops the stub, the nginx relay and the hub.
# hub_added_hist ADMIN_PORT: the hub_added histogram's cumulative counts, "le:count" per bucket.
# hub_added_pct H0 H1: from two hub_added_hist readings, "count p50 p99 p99.9 BUCKET" of the
# messages between them (interpolated within the power-of-two buckets: hub_added.py says how).
# hub_added_begin DIR ADMIN_PORT / hub_added_end DIR ADMIN_PORT around a bench-openloop run given
# "${HUB_ADDED_ARGS[@]}": the histogram is read when the client's warm-up ends and again after the
# run; hub_added_end prints hub_added_pct of the two. The first reading is taken by a Python
# process started beforehand and blocked on the FIFO DIR/mark, which bench-openloop -m opens at
# the end of its warm-up (hub_added_begin returns once it is ready): no process starts and
# nothing polls while the client measures (a polling loop and a curl there, or Python starting
# during the warm-up, delayed the client's first 100-200 ms of requests by up to 120 ms).
# relay_port: a free TCP port on 127.0.0.1. cpu_ticks PID...: their utime+stime (clock ticks);
# user_ticks PID...: their utime alone (user space; the rest is the kernel's work for them).
# cpu_us_per T0 T1 N [DIGITS]: µs of CPU per item, N items between two cpu_ticks readings.
# relay_workers DIR: the PIDs of the nginx relay's worker processes (waits for its pid file).
# APPARATUS (docs/PERFORMANCE.md step 25) keeps the measuring processes — the stub and, through
# `apparatus CMD...`, the scripts' load clients — from taking the relay's CPU:
#   batch  they run under SCHED_BATCH (chrt -b 0): a batch task that wakes never preempts the
#          running one, so the relay under test (hub or nginx alike) is not preempted by the
#          processes its own writes wake;
#   core0  they run on CPU 0 and both relays on the other CPUs (taskset; `relay_pin` prints the
#          prefix), with one worker per CPU left (the hub's `workers` unless HUB_WORKERS is set,
#          nginx's worker_processes): each relay has cores of its own, as on a machine that is
#          only a hub. Needs at least 2 CPUs.
ANS='{"ProtocolVersion":"1.0","SenderID":"000505","ReceiverID":"000202","TransactionID":1,"MessageType":"PRStartAns","Result":{"ResultCode":"Success"},"DevEUI":"0102030405060708","FCntUp":1,"Lifetime":0}'
KEY="bench-key-0123456789"
relay_table() {
  local hash gw=${3:-true}
  hash=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
  cat > "$1" <<JSON
{"networks":[{"net_id":"000202","name":"fwd"},{"net_id":"000505","name":"home"}],
 "members":[{"id":"fwd","net_ids":["000202"],"api_key_hashes":["$hash"],"rate_limit_per_s":10000000},
            {"id":"home","net_ids":["000505"]}],
 "endpoints":[{"id":"home","net_id":"000505","url":"http://127.0.0.1:$2/","timeout_ms":3000,"max_in_flight":4096}],
 "devaddr_blocks":[{"prefix":"0A000000/7","net_id":"000505"}],
 "policies":[{"forwarder_net_id":"000202","uplink":{"join_request":true,"mac_data":true,"application_data":true,"signal_quality":$gw,"localization":$gw},
              "downlink":{"join_accept":true,"mac_data":true,"application_data":true}}]}
JSON
}
nginx_conf() {
  mkdir -p "$1/$2"
  cat > "$1/$2.conf" <<NGX
worker_processes $3; ${5:-}
pid $1/$2.pid;
error_log $1/$2/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/$2; proxy_temp_path $1/$2; fastcgi_temp_path $1/$2;
  uwsgi_temp_path $1/$2; scgi_temp_path $1/$2;
  keepalive_requests 1000000;
  $4
}
NGX
}
relay_block() {
  printf '%s\n  %s' "upstream home { server 127.0.0.1:$2; keepalive 128; }" \
    "server { listen 127.0.0.1:$1${3:-}; location / { proxy_pass http://home; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
}
stub_start() {
  nginx_conf "$1" stub 1 "server { listen 127.0.0.1:$2; location / { default_type application/json; return 200 '$ANS'; } }"
  apparatus nginx -c "$1/stub.conf" -p "$1"
}
apparatus() {
  case ${APPARATUS:-} in
    "") "$@" ;;
    batch) chrt -b 0 "$@" ;;
    core0) taskset -c 0 "$@" ;;
    *) echo "APPARATUS: batch, core0 or empty, not '$APPARATUS'" >&2; return 1 ;;
  esac
}
relay_cpus() {
  local n=$(($(nproc) - 1))
  [ "$n" -ge 1 ] || { echo "APPARATUS=core0 needs at least 2 CPUs" >&2; return 1; }
  echo "$n"
}
relay_pin() { [ "${APPARATUS:-}" = core0 ] && echo taskset -c "1-$(relay_cpus)"; return 0; }
relay_port() { python3 "$(dirname "${BASH_SOURCE[0]}")/../common/free_port.py"; }
# proc_ticks AWK_EXPR PID...: AWK_EXPR of /proc/PID/stat ($14 utime, $15 stime) summed over PIDs.
proc_ticks() { local e=$1 t=0 p; shift; for p in "$@"; do t=$((t + $(awk "{print $e}" "/proc/$p/stat"))); done; echo "$t"; }
cpu_ticks() { proc_ticks '$14 + $15' "$@"; }
user_ticks() { proc_ticks '$14' "$@"; }
cpu_us_per() {
  python3 -c "print(round(($2 - $1) / $(getconf CLK_TCK) * 1e6 / max(1, $3), ${4:-2}))"
}
relay_workers() {
  for _ in $(seq 50); do [ -f "$1/relay.pid" ] && break; sleep 0.05; done
  pgrep -d' ' -P "$(cat "$1/relay.pid")"
}
relay_world_up() {
  STUB=$(relay_port); RELAY=$(relay_port)
  stub_start "$1" "$STUB"
  local n=auto
  [ "${APPARATUS:-}" = core0 ] && n=$(relay_cpus)
  nginx_conf "$1" relay "$n" "$(relay_block "$RELAY" "$STUB" "${2:-}")"
  $(relay_pin) nginx -c "$1/relay.conf" -p "$1"
  relay_table "$1/table.json" "$STUB"
}
relay_hub_start() {
  local workers="" setsid=setsid
  local nw=${HUB_WORKERS:-}
  [ -z "$nw" ] && [ "${APPARATUS:-}" = core0 ] && nw=$(relay_cpus)
  [ -n "$nw" ] && workers="\"workers\":$nw,"
  [ "${4:-own}" = own ] || setsid=
  local lat=""
  [ "${HUB_LATENCY:-0}" = 1 ] && lat=',"hub_latency":true'
  cat > "$1/hub.json" <<JSON
{"log_level":"warn",$workers"import":"$1/table.json","database":{"path":"$1/db"},
 "ts002":{"address":"127.0.0.1","port":0${3:-}},"admin":{"address":"127.0.0.1","port":0},
 "relay":{"pending_max":1000000,"endpoint_allow_ranges":["127.0.0.0/8"]$lat}}
JSON
  $(relay_pin) $setsid "$2" -c "$1/hub.json" --ports-file "$1/ports.json" > "$1/hub.log" 2>&1 &
  HUB_PID=$!
  for _ in $(seq 100); do [ -f "$1/ports.json" ] && break; sleep 0.05; done
  read -r HUB HUB_ADMIN < <(python3 -c "import json,sys; p = json.load(open(sys.argv[1]))
print(p['ts002'], p['admin'])" "$1/ports.json")
}
HUB_ADDED_PY="$(dirname "${BASH_SOURCE[0]}")/hub_added.py"
hub_added_hist() { python3 "$HUB_ADDED_PY" read "$1"; }
hub_added_begin() {
  rm -f "$1/mark" "$1/h0" "$1/h0.part" "$1/ready"
  mkfifo "$1/mark"
  HUB_ADDED_ARGS=(-m "$1/mark")
  python3 "$HUB_ADDED_PY" wait "$1" "$2" &
  for _ in $(seq 1000); do [ -e "$1/ready" ] && break; sleep 0.01; done
}
hub_added_end() { # may run in a subshell: waits for the reading's file, not for the process
  for _ in $(seq 500); do [ -e "$1/h0" ] && break; sleep 0.01; done
  hub_added_pct "$(cat "$1/h0")" "$(hub_added_hist "$2")"
}
hub_added_pct() { python3 "$HUB_ADDED_PY" pct "$1" "$2"; }
relay_world_down() {
  [ -f "$1/stub.pid" ] && kill "$(cat "$1/stub.pid")" 2>/dev/null || true
  [ -f "$1/relay.pid" ] && kill "$(cat "$1/relay.pid")" 2>/dev/null || true
  [ -n "${HUB_PID:-}" ] && kill "$HUB_PID" 2>/dev/null || true
}
