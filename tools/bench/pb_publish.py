#!/usr/bin/env python3
"""Packet Broker data plane benchmark (issue 12; docs/PERFORMANCE.md "Packet Broker data plane").

One roamhubd (2 workers, release build) serving both front ends, measured in one run, the three
paths interleaved run by run:
  1. gRPC: tools/bench-pb (C, the project's nghttp2 gRPC client) plays a The Things Stack
     forwarder (NetID 000014) publishing `ForwarderData/Publish` (the shared vector's data uplink,
     h2c, the agent's OAuth2 token) and the home network (000013) with 4 Subscribe streams in one
     group, as the agent opens them, that receive what the hub routes: closed loop (C connections
     x K publishes in flight) publishes/s and routed-and-received/s;
  2. TS002: h2load --h1 posts the same kind of uplink as a PRStartReq from a TS002 forwarder
     (000202) to a TS002 home network (000505, relay_world.sh's nginx stub answering a fixed
     PRStartAns), relayed synchronously, C x K connections: relayed/s;
  3. reference: nginx `grpc_pass` (protocol-blind HTTP/2 relay) to an nginx h2c stub answering
     200 with grpc-status 0, driven by the same bench-pb command as 1 without a subscriber.
Then the same three at a fixed rate (open loop, latency from the scheduled send time):
bench-pb's publish -> subscriber one way and publish -> OK round trip, bench-openloop's TS002
PRStartReq -> PRStartAns round trip, bench-pb's publish -> OK round trip through nginx; and the
hub's memory per open Subscribe stream and per queued message (Python grpcio streams; RSS and the
hub's own roamhub_pb_queued_bytes gauge).

Usage: tools/bench/pb_publish.py [BUILD_DIR] [--runs 5] [--requests 40000] [--rate 2000]
Needs: bench-pb and bench-openloop (built), h2load (nghttp2-client), nginx (nginx-light has
grpc_pass), python3-grpcio and python3-grpc-tools (deploy/bootstrap.sh installs them).
tests/integration/test_bench_pb.py imports World and runs bench-pb against it (smoke test)."""
import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--requests", type=int, default=40000)
    ap.add_argument("--clients", type=int, default=4, help="connections of each load client")
    ap.add_argument("--streams", type=int, default=16,
                    help="in flight per connection (gRPC); TS002 gets clients x streams connections")
    ap.add_argument("--rate", type=float, default=2000.0, help="fixed rate of the latency runs (msg/s)")
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of a latency run")
    return ap.parse_args()


if __name__ == "__main__":
    args = parse_args()
    os.environ["ROAMHUB_BUILD"] = os.path.abspath(args.build)

from roamhub_harness import ALL_DOWN, ALL_UP, BUILD, AdminClient, Hub, admin_config  # noqa: E402
from roamhub_harness import free_port  # noqa: E402
import test_pb_dataplane as pbt  # noqa: E402  (generates the grpcio classes from proto/)
sys.path.insert(0, os.path.join(ROOT, "tools", "reliability"))
from rel_common import rss_kb  # noqa: E402
from test_pb_dataplane import rt, rtg  # noqa: E402

grpc = pbt.grpc
FWD, HOME = "000014", "000013"
TS_FWD, TS_HOME = "000202", "000505"


def relay_world(var):
    """A variable of tools/bench/relay_world.sh (the relay benchmarks' one world)."""
    return subprocess.check_output(["bash", "-c", '. "$0"; printf %s "${!1}"',
                                    os.path.join(ROOT, "tools", "bench", "relay_world.sh"), var],
                                   text=True)


PRSTART = ('{"ProtocolVersion":"1.0","SenderID":"000202","ReceiverID":"000505","TransactionID":7,'
           '"MessageType":"PRStartReq","PHYPayload":"400100000a800100016b5ed0ec2e5c4f9f09f2bd7b",'
           '"ULMetaData":{"DataRate":5,"ULFreq":868.1,"RecvTime":"2026-11-21T12:00:00.123Z",'
           '"RFRegion":"EU868","GWCnt":1,"GWInfo":[{"ID":"05060708","RFRegion":"EU868","RSSI":-81,'
           '"SNR":7.5,"Lat":52.37,"Lon":4.89,"ULToken":"0a0b0c0d0e0f10111213","DLAllowed":true}]}}')
nginx_pids = []


class World:
    """The benchmark world: one roamhubd (2 workers) with its gRPC listener, where a TTS-like
    forwarder (000014, tenant-a) publishes to a TTS-like home network (000013, DevAddr block
    26000000/7) and, when ts_stub_port is given, a TS002 forwarder (000202, relay_world.sh's KEY)
    relays to a TS002 home network (000505) at that port. Data-plane API keys for both PB sides
    (created through the admin API), the OAuth2 token URL, and bench-pb's template request (the
    shared vector's data uplink) in directory w."""

    def __init__(self, w, ts_stub_port=None):
        self.w = w
        nets = [FWD, HOME] + ([TS_FWD, TS_HOME] if ts_stub_port else [])
        table = {
            "networks": [{"net_id": n, "name": "net" + n} for n in nets],
            "tenants": [{"net_id": FWD, "tenant_id": "tenant-a", "name": "A"}],
            "devaddr_blocks": [{"prefix": "26000000/7", "net_id": HOME}],
            "policies": [{"forwarder_net_id": FWD, "home_net_id": HOME, "uplink": dict(ALL_UP),
                          "downlink": dict(ALL_DOWN)}]}
        if ts_stub_port:
            self.ts_key = relay_world("KEY")
            table.update({
                "members": [{"id": "tsfwd", "net_ids": [TS_FWD], "rate_limit_per_s": 10000000,
                             "api_key_hashes": [hashlib.sha256(self.ts_key.encode()).hexdigest()]},
                            {"id": "tshome", "net_ids": [TS_HOME]}],
                "endpoints": [{"id": "tshome", "net_id": TS_HOME, "timeout_ms": 3000,
                               "url": "http://127.0.0.1:%d/" % ts_stub_port, "max_in_flight": 4096}]})
            table["devaddr_blocks"].append({"prefix": "0A000000/7", "net_id": TS_HOME})
            table["policies"].append({"forwarder_net_id": TS_FWD, "uplink": dict(ALL_UP),
                                      "downlink": dict(ALL_DOWN)})
        self.hub = Hub(table, workers=2, config={
            "log_level": "warn", "admin": admin_config(w),
            "grpc": {"address": "127.0.0.1", "port": 0, "hold_ms": 5000, "queue_max": 100000},
            "relay": {"pending_max": 100000, "stats_flush_ms": 1000}})
        self.target = "127.0.0.1:%d" % self.hub.grpc_port
        self.token_url = "http://127.0.0.1:%d/api/v1/oauth/token" % self.hub.admin_port
        adm = AdminClient(self.hub)
        op = adm.token(adm.operator_key())
        self.fwd_key, _ = adm.create_key(op, net_id=FWD, tenant="tenant-a", rights=["RIGHT_DATA_PLANE"])
        self.home_key, _ = adm.create_key(op, net_id=HOME, rights=["RIGHT_DATA_PLANE"])
        self.request = pbt.uplink_request(pbt.data_up(0x26000005))
        self.template = os.path.join(w, "publish.pb")
        with open(self.template, "wb") as f:
            f.write(self.request.SerializeToString())

    def bench_pb(self, *opts, target=None, subscriber=True):
        """Runs tools/bench-pb against target (the hub's gRPC listener by default) with the
        world's keys; without subscriber, publishes only (-S -). Returns its key=value figures
        (numbers as float); raises RuntimeError when it fails."""
        exe = os.path.join(BUILD, "tools", "bench-pb")
        env = dict(os.environ, PB_FWD_KEY=self.fwd_key, PB_HOME_KEY=self.home_key)
        argv = [exe, "-s", target or self.target, "-b", self.template, "-t", self.token_url,
                "-H", HOME] + ([] if subscriber else ["-S", "-"]) + [str(o) for o in opts]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        if r.returncode != 0 or "=" not in r.stdout:
            raise RuntimeError("bench-pb %s: status %d\n%s" % (" ".join(argv[1:]), r.returncode, r.stderr))
        kv = dict(x.split("=", 1) for x in r.stdout.split() if "=" in x)
        return {k: (v if k == "mode" else float(v)) for k, v in kv.items()}

    def failed(self):
        """Routed messages the hub failed so far (a full group queue, or the hold time passed)."""
        return (self.hub.metric('roamhub_events_total{event="pb_queue_full"}') +
                self.hub.metric('roamhub_events_total{event="pb_hold_expired"}'))

    def stop(self):
        """Stops roamhubd; raises unless it exited cleanly (status 0, no sanitizer report)."""
        try:
            self.hub.stop()
        finally:
            self.hub.cleanup()


def nginx(w, name, workers, server):
    d = os.path.join(w, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(w, name + ".conf")
    with open(conf, "w") as f:
        f.write("worker_processes %s;\npid %s/%s.pid;\nerror_log %s/error.log crit;\n"
                "events { worker_connections 4096; }\nhttp {\n access_log off;\n"
                " client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
                " uwsgi_temp_path %s; scgi_temp_path %s;\n keepalive_requests 1000000;\n"
                " %s\n}\n"
                % (workers, w, name, d, d, d, d, d, d, server))
    subprocess.check_call(["nginx", "-c", conf, "-p", w])
    nginx_pids.append(os.path.join(w, name + ".pid"))


def h2load(url, body_file, headers):
    """TS002 throughput: h2load --h1, one request in flight on each of clients x streams
    connections (the concurrency of the gRPC runs)."""
    cmd = ["h2load", "--h1", "-n", str(args.requests), "-c", str(args.clients * args.streams),
           "-m", "1", "-d", body_file]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=600).stdout
    if os.environ.get("PB_BENCH_DEBUG"):
        print(out)
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    return rps, int(m.group(2))


class Drain:
    """n Subscribe streams in one group (Python grpcio, as the agent opens them) for the memory
    figures; the benchmark's own subscriber is bench-pb's."""

    def __init__(self, target, token, group, n=4):
        self.ch = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        stub = rtg.HomeNetworkDataStub(self.ch)
        self.calls = []
        for _ in range(n):
            req = rt.SubscribeHomeNetworkRequest(home_network_net_id=int(HOME, 16),
                                                 home_network_cluster_id="bench", group=group)
            self.calls.append(stub.Subscribe(req, metadata=(("authorization", "Bearer " + token),)))
        time.sleep(0.5)

    def close(self):
        for c in self.calls:
            c.cancel()
        self.ch.close()


def main():
    tools = [t for t in ("h2load", "nginx") if not shutil.which(t)]
    tools += [t for t in ("bench-pb", "bench-openloop")
              if not os.access(os.path.join(BUILD, "tools", t), os.X_OK)]
    if tools:
        sys.exit("needs %s" % " and ".join(tools))
    w = tempfile.mkdtemp(prefix="roamhub-pbbench-")
    stub, relay, gstub = free_port(), free_port(), free_port()
    ans = relay_world("ANS")
    world = None
    try:
        nginx(w, "stub", 1, "server { listen 127.0.0.1:%d; location / { default_type "
              "application/json; return 200 '%s'; } }" % (stub, ans))
        # the stub's answer is an empty gRPC message (5 zero bytes: nginx takes them verbatim in
        # a quoted string): with no body, grpc_pass drops the trailers and grpc-status with them
        nginx(w, "gstub", 1, "server { listen 127.0.0.1:%d http2; location / { default_type "
              "application/grpc; add_trailer grpc-status 0; return 200 '\0\0\0\0\0'; } }" % gstub)
        nginx(w, "grelay", 2, "upstream g { server 127.0.0.1:%d; keepalive 128; }\n server { "
              "listen 127.0.0.1:%d http2; location / { grpc_pass grpc://g; } }" % (gstub, relay))
        world = World(w, ts_stub_port=stub)
        print("machine: %d CPUs, %s" % (os.cpu_count(), cpu_model()), flush=True)
        memory(world)  # first: a fresh heap shows what streams cost
        time.sleep(6)  # the memory test's queued messages expire (hold_ms 5 s)
        throughput(world, relay, w)
        latency(world, relay, w)
    finally:
        try:
            if world:
                world.stop()
        finally:
            for p in nginx_pids:
                try:
                    with open(p) as f:
                        os.kill(int(f.read()), 15)
                except (OSError, ValueError):
                    pass
            time.sleep(0.3)
            shutil.rmtree(w, ignore_errors=True)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def throughput(world, relay, w):
    ts_body = os.path.join(w, "prstart.json")
    with open(ts_body, "w") as f:
        f.write(PRSTART)
    conc = args.clients * args.streams
    mux = ["-n", args.requests, "-c", args.clients, "-k", args.streams]  # as the agent: multiplexed
    single = ["-n", args.requests, "-c", conc, "-k", 1]  # one call in flight per connection
    paths = ("nginx", "grpc", "grpc1", "ts002")
    res = {k: [] for k in paths + ("recv", "recv1", "failed", "lost")}
    for r in range(args.runs):
        for what in paths:  # interleaved: the machine's load hits all of them
            if what in ("grpc", "grpc1"):
                f0 = world.failed()
                k = world.bench_pb(*(mux if what == "grpc" else single))
                rps, ok = k["recv_rate"], k["received"]
                res["recv" if what == "grpc" else "recv1"].append(k["pub_rate"])
                res["lost"].append(k["lost"] + k["dup"] + k["failed"])
                res["failed"].append(world.failed() - f0)
            elif what == "ts002":
                rps, ok = h2load("http://127.0.0.1:%d/" % world.hub.port, ts_body,
                                 ["content-type: application/json",
                                  "authorization: Bearer " + world.ts_key])
            else:
                # nginx 1.22's grpc_pass wedges a multiplexed client connection after a 502 of
                # its upstream (calls then wait for their deadline): one call per connection
                k = world.bench_pb(*single, target="127.0.0.1:%d" % relay, subscriber=False)
                rps, ok = k["pub_rate"], k["acked"]
            if ok < args.requests * (0.99 if what == "nginx" else 1):  # nginx: a rare 502 of its upstream
                sys.exit("%s: only %d of %d requests succeeded" % (what, ok, args.requests))
            res[what].append(rps)
            print("run %d %-6s %9.0f msg/s  load %s" % (r + 1, what, rps, loadavg()), flush=True)
    med = {k: statistics.median(res[k]) for k in paths}
    print("\nthroughput, median of %d runs (%d messages each, %d calls in flight)" % (args.runs, args.requests, conc))
    print("| path | msg/s | ratio to nginx grpc_pass |\n|---|---|---|")
    print("| roamhubd gRPC Publish -> 4-stream subscriber, %d connections x %d streams (received/s; "
          "publishes answered %.0f/s) | %.0f | %.2f |"
          % (args.clients, args.streams, statistics.median(res["recv"]), med["grpc"], med["grpc"] / med["nginx"]))
    print("| roamhubd gRPC Publish -> 4-stream subscriber, %d connections x 1 (received/s; "
          "publishes answered %.0f/s) | %.0f | %.2f |"
          % (conc, statistics.median(res["recv1"]), med["grpc1"], med["grpc1"] / med["nginx"]))
    print("| roamhubd TS002 PRStartReq -> nginx stub (sync), %d connections | %.0f | %.2f |"
          % (conc, med["ts002"], med["ts002"] / med["nginx"]))
    print("| nginx grpc_pass -> nginx h2c stub, %d connections x 1 (answered/s) | %.0f | 1.00 |" % (conc, med["nginx"]))
    print("gRPC via the hub: lost+dup+failed %d, failed by the hub (queue full, hold expired) %d, "
          "worst run" % (max(res["lost"]), max(res["failed"])), flush=True)


def latency(world, relay, w):
    bf = os.path.join(w, "prstart_ol.json")
    with open(bf, "w") as f:
        f.write(PRSTART.replace('"TransactionID":7', '"TransactionID":{TXID}'))
    ol = os.path.join(BUILD, "tools", "bench-openloop")
    openloop = ["-r", args.rate, "-d", args.seconds, "-w", 1, "-c", args.clients]
    rows = {"grpc": [], "grpc_ack": [], "ts002": [], "nginx": []}
    for r in range(args.runs):
        for what in ("nginx", "grpc", "ts002"):
            if what == "grpc":
                k = world.bench_pb(*openloop)
                rows["grpc"].append((k["p50_us"], k["p99_us"], k["p999_us"], k["received"], k["due"], k["late_us"]))
                rows["grpc_ack"].append((k["ack_p50_us"], k["ack_p99_us"], k["ack_p999_us"], k["answered"], k["due"], k["late_us"]))
            elif what == "nginx":
                k = world.bench_pb(*openloop, target="127.0.0.1:%d" % relay, subscriber=False)
                rows["nginx"].append((k["ack_p50_us"], k["ack_p99_us"], k["ack_p999_us"], k["answered"], k["due"], k["late_us"]))
            else:
                out = subprocess.run([ol, "-p", str(world.hub.port)] + [str(o) for o in openloop] +
                                     ["-a", "Bearer " + world.ts_key, "-b", bf],
                                     capture_output=True, text=True, timeout=120).stdout.strip()
                kv = {a: float(b) for a, b in (x.split("=", 1) for x in out.split() if "=" in x)}
                rows["ts002"].append((kv["p50_us"], kv["p99_us"], kv["p999_us"], kv["ok"], kv["due"], kv["late_us"]))
            print("run %d %-6s p50 %.0f p99 %.0f p99.9 %.0f µs  %d/%d  late %.0f µs  load %s"
                  % ((r + 1, what) + rows[what][-1] + (loadavg(),)), flush=True)
    print("\nfixed rate %.0f msg/s for %.0f s (+1 s warm-up), %d connections, median of %d runs "
          "(each percentile its own median; received: worst run)" % (args.rate, args.seconds,
                                                                   args.clients, args.runs))
    print("| path | p50 µs | p99 µs | p99.9 µs | received / answered | client late p99 µs |\n|---|---|---|---|---|---|")
    names = {"grpc": "gRPC Publish -> subscriber stream, one way (bench-pb)",
             "grpc_ack": "gRPC Publish -> OK answer, round trip (bench-pb)",
             "ts002": "TS002 PRStartReq -> nginx stub -> PRStartAns, round trip (bench-openloop)",
             "nginx": "nginx grpc_pass -> h2c stub, Publish -> OK round trip (bench-pb)"}
    for key in ("grpc", "grpc_ack", "ts002", "nginx"):
        v = rows[key]
        worst = min(v, key=lambda x: x[3] / max(x[4], 1))
        print("| %s | %.0f | %.0f | %.0f | %d/%d | %.0f |"
              % (names[key], statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                 statistics.median(x[2] for x in v), worst[3], worst[4],
                 statistics.median(x[5] for x in v)))


def memory(world):
    hub, target = world.hub, world.target
    fwd_tok, home_tok = agent_token(world, world.fwd_key), agent_token(world, world.home_key)
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
    req = world.request
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
          % (req.message.ByteSize(), qbytes / max(queued, 1), queued, r3 - r2, (r3 - r2) / max(queued, 1)),
          flush=True)


def agent_token(world, key):
    pbt.PBWorld.hub = world.hub  # agent_token() posts the agent's OAuth2 form to this hub
    return pbt.PBWorld.agent_token(key)


if __name__ == "__main__":
    main()
