#!/usr/bin/env bash
# Instructions per relayed message in roamhubd (exact, unlike throughput on a shared machine):
# callgrind counts every instruction of the hub process (1 worker) while a client sends N
# PRStartReq over one keep-alive connection, sync forwarder -> hub -> nginx stub home network
# answering a fixed PRStartAns (the same message and table as tools/bench/relay.sh). Two runs
# with N1 and N2 messages; (Ir(N2) - Ir(N1)) / (N2 - N1) removes start-up and shutdown.
# Usage: tools/bench/relay_instr.sh [BUILD_DIR] [N1] [N2]
# KEEP=DIR keeps the callgrind outputs (DIR/cg.N1.out, DIR/cg.N2.out) for callgrind_annotate.
# TOOL=strace counts system calls of the hub process instead (strace -f -c, all threads): the
# same difference gives system calls per relayed message, and the per-call table of the N2 run
# is printed (syscall names with their counts / N2).
# VARIANT=reencode sends the PRStartReq with upper-case hex (the home endpoint's dialect is lower
# case: the hub re-encodes every request); VARIANT=strip makes the policy withhold signal quality
# and location (the hub strips RSSI/SNR/Lat/Lon from GWInfo and re-encodes). Default: the
# received bytes are canonical and forwarded with the hub's TransactionID spliced in.
# TLS=1 puts TLS (1.3, an ECDSA P-256 certificate made here, as relay.sh TLS=1) in front of the
# hub: the client's keep-alive connection is https (one handshake per run, cancelled out by the
# difference); the leg to the stub stays plain.
# CLUSTER=1 runs the hub as a cluster node (issue 13): a `cluster` section and one nats-server
# with JetStream started by this script (stream R1, the hub applies it but nothing is written
# during the run): the difference to CLUSTER=0 is what the cluster adds per relayed message
# (tools/bench/cluster_instr.sh runs both).
# ASYNC=1 makes the forwarder an async sender (its endpoint, the same nginx stub, gets each
# answer as a POST; the client's request is acknowledged with an empty 200): on a cluster node
# each such transaction is published to the other nodes, started and ended
# (broker/cluster_inflight.c) — tools/bench/cluster_instr.sh ASYNC=1 measures that cost.
# SLOW_MS=N (with ASYNC=1): the home network answers N ms after each request (a threaded Python
# stub instead of nginx; its CPU is not the hub's), so a transaction outlives the cluster's
# 10 ms publication batch and its start and end are both published.
# HUB_LATENCY=1 turns the hub's relay.hub_latency on (kernel receive timestamps on both legs):
# what the option costs per message.
# REFERENCE=nginx measures the reference instead of the hub: nginx as the protocol-blind proxy_pass relay
# of tools/bench/relay.sh (one worker process, no master, keep-alive upstream to the same stub;
# TLS=1: the same certificate and TLS 1.3), with the same client and messages — the instructions
# and system calls of a relay that only copies bytes.
# Needs: valgrind (or strace), nginx (nginx-light); nats-server with CLUSTER=1.
set -euo pipefail
. "$(dirname "$0")/relay_world.sh"
BUILD=${1:-build}
N1=${2:-300}
N2=${3:-1300}
HUBD="$BUILD/broker/roamhubd"
[ -x "$HUBD" ] || { echo "no $HUBD: build first" >&2; exit 1; }
TOOL=${TOOL:-callgrind}
command -v "${TOOL/callgrind/valgrind}" >/dev/null && command -v nginx >/dev/null || { echo "needs valgrind and nginx" >&2; exit 1; }
W=$(mktemp -d /tmp/roamhub-instr.XXXXXX)
cleanup() {
  [ -f "$W/stub.pid" ] && kill "$(cat "$W/stub.pid")" 2>/dev/null || true
  [ -n "${NATS_PID:-}" ] && kill "$NATS_PID" 2>/dev/null || true
  [ -n "${SLOW_PID:-}" ] && kill "$SLOW_PID" 2>/dev/null || true
  sleep 0.2; rm -rf "$W"
}
trap cleanup EXIT

STUB=$(relay_port)
stub_start "$W" "$STUB"

VARIANT=${VARIANT:-plain}
case $VARIANT in plain|reencode) GW=true;; strip) GW=false;; *) echo "VARIANT: plain, reencode or strip" >&2; exit 1;; esac
relay_table "$W/table.json" "$STUB" "$GW"
HOME_PORT=$STUB
if [ -n "${SLOW_MS:-}" ]; then # a home network answering SLOW_MS ms after each request
  HOME_PORT=$(relay_port)
  python3 - "$HOME_PORT" "$SLOW_MS" "$ANS" <<'PY' &
import http.server, socketserver, sys, time
port, delay, ans = int(sys.argv[1]), int(sys.argv[2]) / 1000.0, sys.argv[3].encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        time.sleep(delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ans)))
        self.end_headers()
        self.wfile.write(ans)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024
S(("127.0.0.1", port), H).serve_forever()
PY
  SLOW_PID=$!
  sleep 0.5
fi
if [ "${ASYNC:-0}" = 1 ]; then # the forwarder's own endpoint: answers are POSTed to it
  python3 - "$W/table.json" "$STUB" "$HOME_PORT" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
for e in t["endpoints"]:
    e["url"] = "http://127.0.0.1:%s/" % sys.argv[3]  # the home network (SLOW_MS: the slow stub)
t["endpoints"].append({"id": "fwd", "net_id": "000202", "url": "http://127.0.0.1:%s/" % sys.argv[2],
                       "async_answers": True, "timeout_ms": 3000, "max_in_flight": 4096})
json.dump(t, open(sys.argv[1], "w"))
PY
fi

HUB_TLS=""
if [ "${TLS:-0}" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$W/tls.key" -out "$W/tls.pem" 2>/dev/null
  HUB_TLS=',"tls_cert":"'$W/tls.pem'","tls_key":"'$W/tls.key'"'
fi

CLUSTER_SECTION=""
if [ "${CLUSTER:-0}" = 1 ]; then
  NATSP=$(relay_port)
  mkdir -p "$W/nats"
  nats-server -a 127.0.0.1 -p "$NATSP" -js -sd "$W/nats" > "$W/nats.log" 2>&1 &
  NATS_PID=$!
  for _ in $(seq 100); do grep -q "Server is ready" "$W/nats.log" && break; sleep 0.1; done
  CLUSTER_SECTION=',"cluster":{"node_id":1,"nats_urls":["nats://127.0.0.1:'$NATSP'"],"replicas":1,"stream":"RH_INSTR_RUN","subject_prefix":"roamhub.instr.RUN"}'
fi

HUB_LAT=""
[ "${HUB_LATENCY:-0}" = 1 ] && HUB_LAT=',"hub_latency":true'
run() { # $1 = number of messages -> prints total Ir of the hub process
  local n=$1 d="$W/run$1"
  mkdir -p "$d"
  cat > "$d/hub.json" <<JSON
{"workers":1,"log_level":"warn","import":"$W/table.json","database":{"path":"$d/db"},
 "ts002":{"address":"127.0.0.1","port":0$HUB_TLS},"admin":{"address":"127.0.0.1","port":0},
 "relay":{"pending_max":100000,"stats_flush_ms":60000,"endpoint_allow_ranges":["127.0.0.0/8"]$HUB_LAT}${CLUSTER_SECTION//RUN/$n}}
JSON
  local RUN=("$HUBD" -c "$d/hub.json" --ports-file "$d/ports.json")
  if [ "${REFERENCE:-hub}" = nginx ]; then # the reference relay on a port of its own
    local rp ssl=""
    rp=$(relay_port)
    [ "${TLS:-0}" = 1 ] && ssl=" ssl; ssl_certificate $W/tls.pem; ssl_certificate_key $W/tls.key; ssl_protocols TLSv1.3"
    nginx_conf "$d" relay 1 "$(relay_block "$rp" "$STUB" "$ssl")" "master_process off; daemon off;"
    RUN=(nginx -c "$d/relay.conf" -p "$d")
    ( for _ in $(seq 600); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$rp" 2>/dev/null; then
          echo "{\"ts002\": $rp}" > "$d/ports.json"; break
        fi
        sleep 0.1
      done ) &
  fi
  if [ "$TOOL" = strace ]; then
    strace -f -c -o "$d/st.out" "${RUN[@]}" > "$d/hub.log" 2>&1 &
  else
    valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" "${RUN[@]}" > "$d/hub.log" 2>&1 &
  fi
  local pid=$!
  for _ in $(seq 600); do [ -f "$d/ports.json" ] && break; sleep 0.1; done
  [ -f "$d/ports.json" ] || { echo "roamhubd did not start:" >&2; cat "$d/hub.log" >&2; exit 1; }
  if [ -n "$CLUSTER_SECTION" ]; then # the node has its stream and has caught up
    local admin
    admin=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['admin'])" "$d/ports.json")
    for _ in $(seq 600); do curl -fs "http://127.0.0.1:$admin/readyz" >/dev/null && break; sleep 0.1; done
    curl -fs "http://127.0.0.1:$admin/readyz" >/dev/null || { echo "cluster node not ready:" >&2; cat "$d/hub.log" >&2; exit 1; }
  fi
  set +e
  python3 - "$d/ports.json" "$n" "$VARIANT" "${TLS:-0}" <<'PY'
import http.client, json, ssl, sys
port = json.load(open(sys.argv[1]))["ts002"]
if sys.argv[4] == "1":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=60, context=ctx)
else:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
t1 = '{"ProtocolVersion":"1.0","SenderID":"000202","ReceiverID":"000505","TransactionID":'
t2 = (',"MessageType":"PRStartReq","PHYPayload":"400100000a800100016b5ed0ec2e5c4f9f09f2bd7b",'
      '"ULMetaData":{"DataRate":5,"ULFreq":868.1,"RecvTime":"2026-11-21T12:00:00.123Z","RFRegion":"EU868",'
      '"GWCnt":1,"GWInfo":[{"ID":"05060708","RFRegion":"EU868","RSSI":-81,"SNR":7.5,"Lat":52.37,'
      '"Lon":4.89,"ULToken":"0a0b0c0d0e0f10111213","DLAllowed":true}]}}')
if sys.argv[3] == "reencode":
    t2 = t2.replace("400100000a800100016b5ed0ec2e5c4f9f09f2bd7b", "400100000A800100016B5ED0EC2E5C4F9F09F2BD7B")
h = {"Content-Type": "application/json", "Authorization": "Bearer bench-key-0123456789"}
for i in range(int(sys.argv[2])):
    c.request("POST", "/", t1 + str(i + 1) + t2, h)
    r = c.getresponse()
    body = r.read()
    if not body:  # ASYNC=1: acknowledged, the answer goes to the forwarder's endpoint
        assert r.status == 200, r.status
        continue
    a = json.loads(body)
    assert a["Result"]["ResultCode"] == "Success", a
PY
  local client=$?
  set -e
  local sig=-TERM
  [ "${REFERENCE:-hub}" = nginx ] && sig=-QUIT # nginx's graceful stop (TERM is its fast one)
  if [ "$TOOL" = strace ]; then kill $sig "$(pgrep -P "$pid")"; else kill $sig "$pid"; fi
  wait "$pid" || true
  # A client that stopped early (e.g. an answer timed out on a loaded machine) makes the count
  # meaningless: fail the run instead of printing it.
  [ "$client" = 0 ] || { echo "client stopped early in the $n-message run" >&2; return 1; }
  if [ "$TOOL" = strace ]; then
    [ "$n" != "$N2" ] || awk -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" \
      {printf "  %-16s %8d  %.2f/msg\n", $NF, $4, $4 / n}' "$d/st.out" >&2
    awk '$NF == "total" {print $4}' "$d/st.out"
    return
  fi
  [ -z "${KEEP:-}" ] || { mkdir -p "$KEEP"; cp "$d/cg.out" "$KEEP/cg.$n.out"; }
  awk '/^summary:/ {print $2}' "$d/cg.out"
}
I1=$(run "$N1") || exit 1
I2=$(run "$N2") || exit 1
[ "$TOOL" != strace ] || { python3 -c "print('system calls per relayed message: %.2f  (%d msgs = %d, %d msgs = %d)' % (($I2-$I1)/($N2-$N1), $N1, $I1, $N2, $I2))"; exit 0; }
python3 -c "print('instructions per relayed message: %d  (Ir %d msgs = %d, %d msgs = %d)' % (($I2-$I1)/($N2-$N1), $N1, $I1, $N2, $I2))"
