#!/usr/bin/env python3
"""Packet Broker data plane benchmark (issue 12; docs/PERFORMANCE.md "Packet Broker data plane").

One roamhubd (2 workers, release build) serving both front ends, measured in one run:
  1. gRPC: h2load publishes `ForwarderData/Publish` (the shared vector's data uplink, h2c with
     prior knowledge, the agent's Bearer token) from a The Things Stack-like forwarder (NetID
     000014) to a home network (000013) whose 4 Subscribe streams in one group (Python grpcio,
     as the agent opens them) drain what the hub routes: publishes/s, routed-and-received/s, and
     how many the hub failed (queue full, hold expired: /metrics);
  2. TS002: h2load --h1 posts the same kind of uplink as a PRStartReq from a TS002 forwarder
     (000202) to a TS002 home network (000505, an nginx stub answering a fixed PRStartAns),
     relayed synchronously: relayed/s;
  3. reference: nginx `grpc_pass` (protocol-blind HTTP/2 relay) to an nginx h2c stub answering
     200 with grpc-status 0, driven by the same h2load command as 1.
Then, at a fixed rate (open loop, Python: coarse, see the doc), publish -> subscriber latency
p50/p99 against TS002 request -> answer latency (tools/bench-openloop) at the same rate; and
the hub's memory per open Subscribe stream and per queued message (RSS and the hub's own
roamhub_pb_queued_bytes gauge).

Usage: tools/bench/pb_publish.py [BUILD_DIR] [--runs 5] [--requests 40000] [--rate 1000]
Needs: h2load (nghttp2-client), nginx (nginx-light has grpc_pass), python3-grpcio and
python3-grpc-tools (deploy/bootstrap.sh installs them)."""
import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("build", nargs="?", default=os.path.join(ROOT, "build"))
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--requests", type=int, default=40000)
ap.add_argument("--clients", type=int, default=4)
ap.add_argument("--streams", type=int, default=16, help="h2load -m: concurrent streams per client")
ap.add_argument("--rate", type=float, default=1000.0, help="fixed rate of the latency runs (msg/s)")
ap.add_argument("--seconds", type=float, default=8.0, help="duration of a latency run")
args = ap.parse_args()
os.environ["ROAMHUB_BUILD"] = os.path.abspath(args.build)

from roamhub_harness import ALL_DOWN, ALL_UP, AdminClient, Hub, admin_config, free_port  # noqa: E402
import test_pb_dataplane as pbt  # noqa: E402  (generates the grpcio classes from proto/)
sys.path.insert(0, os.path.join(ROOT, "tools", "reliability"))
from rel_common import rss_kb  # noqa: E402
from test_pb_dataplane import rt, rtg, v3  # noqa: E402

grpc = pbt.grpc
FWD, HOME = "000014", "000013"
TS_FWD, TS_HOME = "000202", "000505"
TS_KEY = "bench-key-0123456789"
ANS = ('{"ProtocolVersion":"1.0","SenderID":"000505","ReceiverID":"000202","TransactionID":1,'
       '"MessageType":"PRStartAns","Result":{"ResultCode":"Success"},"DevEUI":"0102030405060708",'
       '"FCntUp":1,"Lifetime":0}')
PRSTART = ('{"ProtocolVersion":"1.0","SenderID":"000202","ReceiverID":"000505","TransactionID":7,'
           '"MessageType":"PRStartReq","PHYPayload":"400100000a800100016b5ed0ec2e5c4f9f09f2bd7b",'
           '"ULMetaData":{"DataRate":5,"ULFreq":868.1,"RecvTime":"2026-11-21T12:00:00.123Z",'
           '"RFRegion":"EU868","GWCnt":1,"GWInfo":[{"ID":"05060708","RFRegion":"EU868","RSSI":-81,'
           '"SNR":7.5,"Lat":52.37,"Lon":4.89,"ULToken":"0a0b0c0d0e0f10111213","DLAllowed":true}]}}')
W = tempfile.mkdtemp(prefix="roamhub-pbbench-")
nginx_pids = []


def nginx(name, workers, server):
    d = os.path.join(W, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(W, name + ".conf")
    with open(conf, "w") as f:
        f.write("worker_processes %s;\npid %s/%s.pid;\nerror_log %s/error.log crit;\n"
                "events { worker_connections 4096; }\nhttp {\n access_log off;\n"
                " client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
                " uwsgi_temp_path %s; scgi_temp_path %s;\n keepalive_requests 1000000;\n"
                " %s\n}\n"
                % (workers, W, name, d, d, d, d, d, d, server))
    subprocess.check_call(["nginx", "-c", conf, "-p", W])
    nginx_pids.append(os.path.join(W, name + ".pid"))


def grpc_frame(msg):
    b = msg.SerializeToString()
    return b"\x00" + len(b).to_bytes(4, "big") + b


def h2load(url, body_file, headers, h1=False):
    cmd = ["h2load", "-n", str(args.requests), "-c", str(args.clients),
           "-m", "1" if h1 else str(args.streams), "-d", body_file]
    if h1:
        cmd.append("--h1")
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=600).stdout
    if os.environ.get("PB_BENCH_DEBUG"):
        print(out)
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out).group(1)
    return rps, int(m.group(2)), mean


def failed(hub):
    """Routed messages the hub failed so far (a full group queue, or the hold time passed)."""
    return (hub.metric('roamhub_events_total{event="pb_queue_full"}') +
            hub.metric('roamhub_events_total{event="pb_hold_expired"}'))


class Drain:
    """4 Subscribe streams in one group (as the agent opens them), counting what arrives; with
    `stamps`, the arrival time of each message by the sequence number in its FRMPayload."""

    def __init__(self, target, token, group, n=4, stamps=None):
        self.count, self.stamps, self.calls = 0, stamps, []
        self.lock = threading.Lock()
        ch = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        self.ch = ch
        stub = rtg.HomeNetworkDataStub(ch)
        for _ in range(n):
            req = rt.SubscribeHomeNetworkRequest(home_network_net_id=int(HOME, 16),
                                                 home_network_cluster_id="bench", group=group)
            call = stub.Subscribe(req, metadata=(("authorization", "Bearer " + token),))
            self.calls.append(call)
            threading.Thread(target=self.run, args=(call,), daemon=True).start()
        time.sleep(0.5)

    def run(self, call):
        try:
            for m in call:
                t = time.monotonic()
                with self.lock:
                    self.count += 1
                if self.stamps is not None:
                    phy = m.message.phy_payload.plain
                    self.stamps[int.from_bytes(phy[-8:-4], "big")] = t
        except grpc.RpcError:
            pass

    def close(self):
        for c in self.calls:
            c.cancel()
        self.ch.close()


def main():
    tools = [t for t in ("h2load", "nginx") if not shutil.which(t)]
    if tools:
        sys.exit("needs %s" % " and ".join(tools))
    stub, relay, gstub = free_port(), free_port(), free_port()
    nginx("stub", 1, "server { listen 127.0.0.1:%d; location / { default_type application/json; "
          "return 200 '%s'; } }" % (stub, ANS))
    nginx("gstub", 1, "server { listen 127.0.0.1:%d http2; location / { default_type "
          "application/grpc; add_trailer grpc-status 0; return 200 ''; } }" % gstub)
    nginx("grelay", 2, "upstream g { server 127.0.0.1:%d; keepalive 128; }\n server { listen "
          "127.0.0.1:%d http2; location / { grpc_pass grpc://g; } }" % (gstub, relay))

    table = {
        "networks": [{"net_id": n, "name": "net" + n} for n in (FWD, HOME, TS_FWD, TS_HOME)],
        "tenants": [{"net_id": FWD, "tenant_id": "tenant-a", "name": "A"}],
        "members": [{"id": "tsfwd", "net_ids": [TS_FWD], "rate_limit_per_s": 10000000,
                     "api_key_hashes": [hashlib.sha256(TS_KEY.encode()).hexdigest()]},
                    {"id": "tshome", "net_ids": [TS_HOME]}],
        "endpoints": [{"id": "tshome", "net_id": TS_HOME, "url": "http://127.0.0.1:%d/" % stub,
                       "timeout_ms": 3000, "max_in_flight": 4096}],
        "devaddr_blocks": [{"prefix": "26000000/7", "net_id": HOME},
                           {"prefix": "0A000000/7", "net_id": TS_HOME}],
        "policies": [{"forwarder_net_id": FWD, "home_net_id": HOME, "uplink": dict(ALL_UP),
                      "downlink": dict(ALL_DOWN)},
                     {"forwarder_net_id": TS_FWD, "uplink": dict(ALL_UP),
                      "downlink": dict(ALL_DOWN)}]}
    hub = Hub(table, workers=2, config={
        "log_level": "warn", "admin": admin_config(W),
        "grpc": {"address": "127.0.0.1", "port": 0, "hold_ms": 5000, "queue_max": 100000},
        "relay": {"pending_max": 100000, "stats_flush_ms": 1000}})
    try:
        run_all(hub, stub, relay)
    finally:
        rc = hub.stop()
        hub.cleanup()
        for p in nginx_pids:
            try:
                with open(p) as f:
                    os.kill(int(f.read()), 15)
            except (OSError, ValueError):
                pass
        time.sleep(0.3)
        shutil.rmtree(W, ignore_errors=True)
        if rc != 0:
            sys.exit("roamhubd exited %s" % rc)


def run_all(hub, stub, relay):
    pbt.PBWorld.hub = hub  # agent_token() posts the agent's OAuth2 form to this hub
    adm = AdminClient(hub)
    op = adm.token(adm.operator_key())
    fwd_key, _ = adm.create_key(op, net_id=FWD, tenant="tenant-a", rights=["RIGHT_DATA_PLANE"])
    home_key, _ = adm.create_key(op, net_id=HOME, rights=["RIGHT_DATA_PLANE"])
    fwd_tok, home_tok = pbt.PBWorld.agent_token(fwd_key), pbt.PBWorld.agent_token(home_key)
    target = "127.0.0.1:%d" % hub.grpc_port
    body = os.path.join(W, "publish.grpc")
    with open(body, "wb") as f:
        f.write(grpc_frame(pbt.uplink_request(pbt.data_up(0x26000005))))
    ts_body = os.path.join(W, "prstart.json")
    with open(ts_body, "w") as f:
        f.write(PRSTART)
    gh = ["content-type: application/grpc", "te: trailers", "authorization: Bearer " + fwd_tok]
    url = "/org.packetbroker.routing.v1.ForwarderData/Publish"
    res = {"grpc": [], "recv": [], "ts002": [], "nginx": [], "failed": []}
    memory(hub, target, fwd_tok, home_tok)  # first: a fresh heap shows what streams cost
    time.sleep(6)  # the memory test's queued messages expire (hold_ms 5 s)
    drain = Drain(target, home_tok, "bench")
    for r in range(args.runs):
        for what in ("nginx", "grpc", "ts002"):  # interleaved: the machine's load hits all three
            if what == "grpc":
                c0 = drain.count
                f0 = failed(hub)
                t0 = time.monotonic()
                rps, ok, mean = h2load("http://" + target + url, body, gh)
                deadline = time.monotonic() + 10
                while drain.count - c0 < ok and time.monotonic() < deadline:
                    time.sleep(0.01)
                el = time.monotonic() - t0
                res["recv"].append((drain.count - c0) / el)
                res["failed"].append(failed(hub) - f0)
            elif what == "ts002":
                rps, ok, mean = h2load("http://127.0.0.1:%d/" % hub.port, ts_body,
                                       ["content-type: application/json",
                                        "authorization: Bearer " + TS_KEY], h1=True)
            else:
                rps, ok, mean = h2load("http://127.0.0.1:%d%s" % (relay, url), body, gh)
            if ok < args.requests * (0.99 if what == "nginx" else 1):  # nginx: a rare 502 of its upstream
                sys.exit("%s: only %d of %d requests succeeded" % (what, ok, args.requests))
            res[what].append((rps, mean))
            print("run %d %-6s %9.0f req/s  mean %s" % (r + 1, what, rps, mean), flush=True)
    drain.close()
    med = {k: statistics.median(x[0] for x in res[k]) for k in ("grpc", "ts002", "nginx")}
    print("\nthroughput, median of %d runs (h2load -n %d -c %d, gRPC -m %d, TS002 --h1 -m 1)"
          % (args.runs, args.requests, args.clients, args.streams))
    print("| path | req/s | ratio to nginx grpc_pass |\n|---|---|---|")
    print("| roamhubd gRPC Publish -> 4-stream subscriber | %.0f (received %.0f/s, failed %d) | %.2f |"
          % (med["grpc"], statistics.median(res["recv"]), max(res["failed"]), med["grpc"] / med["nginx"]))
    print("| roamhubd TS002 PRStartReq -> nginx stub (sync) | %.0f | %.2f |" % (med["ts002"], med["ts002"] / med["nginx"]))
    print("| nginx grpc_pass -> nginx h2c stub | %.0f | 1.00 |" % med["nginx"])
    latency(hub, target, fwd_tok, home_tok)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100.0))] if xs else float("nan")


def latency(hub, target, fwd_tok, home_tok):
    stamps, sent = {}, {}
    drain = Drain(target, home_tok, "lat", stamps=stamps)
    ch = grpc.insecure_channel(target)
    stub = rtg.ForwarderDataStub(ch)
    md = (("authorization", "Bearer " + fwd_tok),)
    n = int(args.rate * args.seconds)
    t0 = time.monotonic()
    futs, late = [], []
    for seq in range(n):
        due = t0 + seq / args.rate
        while time.monotonic() < due:
            time.sleep(max(0.0, min(0.001, due - time.monotonic())))
        phy = pbt.data_up(0x26000005, fcnt=seq & 0xffff)[:-4] + seq.to_bytes(4, "big") + b"\x01\x02\x03\x04"
        req = pbt.uplink_request(phy)
        sent[seq] = time.monotonic()
        late.append((sent[seq] - due) * 1e6)
        futs.append(stub.Publish.future(req, metadata=md, timeout=10))
    for f in futs:
        f.result()
    time.sleep(1.0)
    drain.close()
    ch.close()
    lat = [(stamps[s] - sent[s]) * 1e6 for s in sent if s in stamps]
    print("\nfixed rate %.0f msg/s for %.0f s (Python grpcio publisher and subscriber: their own "
          "time is in the gRPC figure; the publisher wrote each message %.0f µs late at p99):"
          % (args.rate, args.seconds, pct(late, 99)))
    print("| path | p50 µs | p99 µs | received |\n|---|---|---|---|")
    print("| gRPC Publish -> subscriber (one way, from the write) | %.0f | %.0f | %d/%d |" % (pct(lat, 50), pct(lat, 99), len(lat), n))
    ol = os.path.join(args.build, "tools", "bench-openloop")
    if os.access(ol, os.X_OK):
        bf = os.path.join(W, "prstart_ol.json")
        with open(bf, "w") as f:
            f.write(PRSTART.replace('"TransactionID":7', '"TransactionID":{TXID}'))
        out = subprocess.run([ol, "-p", str(hub.port), "-r", str(args.rate), "-d", str(args.seconds),
                              "-c", "4", "-a", "Bearer " + TS_KEY, "-b", bf],
                             capture_output=True, text=True, timeout=120).stdout.strip()
        kv = dict(x.split("=", 1) for x in out.split() if "=" in x)
        print("| TS002 PRStartReq -> nginx stub -> PRStartAns (round trip, bench-openloop) | %s | %s | %s/%s |"
              % (kv.get("p50_us"), kv.get("p99_us"), kv.get("ok"), kv.get("due")))


def memory(hub, target, fwd_tok, home_tok):
    pid = hub.proc.pid
    time.sleep(0.5)
    r0 = rss_kb(pid)
    chans, calls = [], []
    for _ in range(5):  # 5 connections x 80 streams = 400 open Subscribe streams
        ch = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        chans.append(ch)
        stub = rtg.HomeNetworkDataStub(ch)
        for _ in range(80):
            req = rt.SubscribeHomeNetworkRequest(home_network_net_id=int(HOME, 16),
                                                 home_network_cluster_id="bench", group="m")
            calls.append(stub.Subscribe(req, metadata=(("authorization", "Bearer " + home_tok),)))
    time.sleep(2.0)
    streams = hub.metric("roamhub_pb_subscription_streams")
    r1 = rss_kb(pid)
    for c in calls:
        c.cancel()
    for ch in chans:
        ch.close()
    time.sleep(0.5)
    # a group with no open stream queues what it is routed (up to queue_max, for hold_ms)
    d = Drain(target, home_tok, "q", n=1)
    d.close()
    time.sleep(0.3)
    r2 = rss_kb(pid)
    ch = grpc.insecure_channel(target)
    stub = rtg.ForwarderDataStub(ch)
    md = (("authorization", "Bearer " + fwd_tok),)
    req = pbt.uplink_request(pbt.data_up(0x26000005))
    futs = [stub.Publish.future(req, metadata=md, timeout=10) for _ in range(20000)]
    for f in futs:
        f.result()
    queued = hub.metric("roamhub_pb_queued_messages")
    qbytes = hub.metric("roamhub_pb_queued_bytes")
    r3 = rss_kb(pid)
    ch.close()
    print("\nmemory (VmRSS of roamhubd; allocator slack included):")
    print("| what | count | RSS growth | per item |\n|---|---|---|---|")
    print("| open Subscribe streams | %d | %d KiB | %.1f KiB |" % (streams, r1 - r0, (r1 - r0) / max(streams, 1)))
    print("| queued routed messages (%d B of message each, hub's own count %.0f B) | %d | %d KiB | %.2f KiB |"
          % (req.message.ByteSize(), qbytes / max(queued, 1), queued, r3 - r2, (r3 - r2) / max(queued, 1)))


if __name__ == "__main__":
    main()
