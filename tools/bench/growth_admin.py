#!/usr/bin/env python3
"""Growth benchmark, admin and peers part (issue 18 items 2, 3, 5), driven by growth-admin.sh.

Each section runs the reference hub (REF: a build of today's main) and this tree's hub (NEW) in
the same run, one after the other on the same machine, and prints markdown rows:

  members   admin write latency (POST /api/v1/members, new member each) at 10 / 1k / 10k
            members (each with an endpoint), p50/p99 over WRITES writes; /healthz probes during
            the writes (max latency).
  stats     GET /api/v1/stats by hour over 30 days for 10 and 1000 (forwarder, home) pairs:
            time (REF: one answer, capped at 100,000 rows; NEW: every page), rows, buckets the
            query reads, and the longest /healthz stall while it runs; cost per bucket scanned
            (a filter matching nothing) and per row returned.
  homes     the same relay load (wrk, PRStartReq) spread over 1 or 1000 home endpoints:
            throughput, hub CPU per message, and hub->home connections (max during the run),
            REF vs NEW with default bounds vs NEW with relay.outbound_connections_per_endpoint
            = workers (one connection per endpoint per worker).

Usage: growth_admin.py REF_BUILD NEW_BUILD WORKDIR SECTION... (see growth-admin.sh).
"""
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

REF, NEW, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
SECTIONS = sys.argv[4:] or ["members", "stats", "homes"]
RUNS = int(os.environ.get("RUNS", "3"))
WRITES = int(os.environ.get("WRITES", "200"))
SECS = int(os.environ.get("SECS", "8"))
CONNS = int(os.environ.get("CONNS", "64"))
WORKERS = 2


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from free_port import free_port  # noqa: E402


class Hub:
    def __init__(self, build, name, table, relay=None, db_dir=None):
        self.dir = os.path.join(WORK, name)
        os.makedirs(self.dir, exist_ok=True)
        self.build = build
        with open(os.path.join(self.dir, "table.json"), "w") as f:
            json.dump(table, f)
        cfg = {"workers": WORKERS, "log_level": "warn",
               "import": os.path.join(self.dir, "table.json"),
               "database": {"path": db_dir or os.path.join(self.dir, "db"), "map_size_mb": 2048},
               "ts002": {"address": "127.0.0.1", "port": 0},
               "admin": {"address": "127.0.0.1", "port": 0,
                         "operator_key_file": os.path.join(self.dir, "operator.key")},
               # the members run on this machine (main refuses loopback endpoints otherwise)
               "relay": dict({"pending_max": 1000000, "endpoint_allow_ranges": ["127.0.0.0/8"]},
                             **(relay or {}))}
        with open(os.path.join(self.dir, "hub.json"), "w") as f:
            json.dump(cfg, f)
        self.proc = None

    def start(self):
        ports = os.path.join(self.dir, "ports.json")
        if os.path.exists(ports):
            os.unlink(ports)
        self.log = open(os.path.join(self.dir, "hub.log"), "ab")
        self.proc = subprocess.Popen([os.path.join(self.build, "broker", "roamhubd"), "-c",
                                      os.path.join(self.dir, "hub.json"), "--ports-file", ports],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(600):
            if os.path.exists(ports):
                p = json.load(open(ports))
                self.port, self.admin = p["ts002"], p["admin"]
                break
            if self.proc.poll() is not None:
                raise SystemExit("roamhubd exited: see " + self.dir)
            time.sleep(0.05)
        key = open(os.path.join(self.dir, "operator.key")).read().strip()
        kid, secret = key.split(":", 1)
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": kid,
                                       "client_secret": secret})
        st, body = self.req("POST", "/api/v1/oauth/token", form,
                            {"Content-Type": "application/x-www-form-urlencoded"}, auth=False)
        assert st == 200, body
        self.token = json.loads(body)["access_token"]
        return self

    def req(self, method, path, body=None, headers=None, auth=True, conn=None, timeout=120):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.admin, timeout=timeout)
        h = dict(headers or {})
        if auth:
            h["Authorization"] = "Bearer " + self.token
        c.request(method, path, body, h)
        r = c.getresponse()
        data = r.read()
        if not conn:
            c.close()
        return r.status, data

    def cpu_s(self):
        f = open("/proc/%d/stat" % self.proc.pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


PROBE = r"""
import http.client, signal, sys, time
lat = []
first = [True]
def done(*_):
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] if lat else 0.0
    print(q(0.5), q(0.99), lat[-1] if lat else 0.0, len(lat)); sys.stdout.flush(); sys.exit(0)
signal.signal(signal.SIGTERM, done)
c = None
while True:
    t0 = time.perf_counter()
    c = c or http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
    c.request("GET", "/healthz")
    c.getresponse().read()
    lat.append(time.perf_counter() - t0)
    if first[0]:
        first[0] = False
        lat.clear()
        print("ready"); sys.stdout.flush()
    time.sleep(0.002)
"""


class HealthProbe:
    """Polls /healthz every 2 ms over one keep-alive connection from its own process (no GIL
    shared with the client that parses large answers); finish() returns the longest answer time
    in seconds, finish_all() (p50, p99, max) in seconds."""

    def __init__(self, hub):
        self.p = subprocess.Popen([sys.executable, "-c", PROBE, str(hub.admin)],
                                  stdout=subprocess.PIPE, text=True)

    def start(self):
        assert self.p.stdout.readline().strip() == "ready"  # probing before the work starts

    def finish_all(self):
        self.p.send_signal(signal.SIGTERM)
        out, _ = self.p.communicate(timeout=60)
        return [float(x) for x in out.split()[:3]]

    def finish(self):
        return self.finish_all()[2]


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


# ------------------------------------------------------------------ members

def member_table(n):
    return {"networks": [{"net_id": "000013", "name": "op"}],
            "members": [{"id": "m%d" % i, "net_ids": ["%06X" % (0x100000 + i)]} for i in range(n)],
            "endpoints": [{"id": "e%d" % i, "net_id": "%06X" % (0x100000 + i),
                           "url": "http://127.0.0.1:9/m%d" % i} for i in range(n)]}


def bench_members():
    print("\n### Admin member writes (POST /api/v1/members), %d writes per run, REF and NEW "
          "interleaved, median of %d runs; LMDB on tmpfs (no disk flush in the figures)\n"
          % (WRITES, RUNS))
    print("| members | hub | write p50 ms | write p99 ms | /healthz during writes: p50 / p99 / "
          "worst ms |")
    print("|---:|---|---:|---:|---:|")
    res = {}
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else WORK
    for n in (10, 1000, 10000):
        hubs = {}
        for label, build in (("REF", REF), ("NEW", NEW)):
            db = os.path.join(shm, "roamhub-growth-%d-%s-%d" % (os.getpid(), label, n))
            hubs[label] = Hub(build, "members-%s-%d" % (label, n), member_table(n),
                              db_dir=db).start()
            hubs[label].db_dir = db
        stats = {label: ([], [], [], [], []) for label in hubs}
        for run in range(RUNS):  # interleaved, the order reversed every other round
            order = list(hubs.items())
            for label, hub in (order if run % 2 == 0 else order[::-1]):
                conn = http.client.HTTPConnection("127.0.0.1", hub.admin, timeout=60)
                lat = []
                probe = HealthProbe(hub)
                probe.start()
                for i in range(WRITES):
                    k = 0x200000 + run * WRITES + i
                    body = json.dumps({"id": "w%d" % k, "net_ids": ["%06X" % k]})
                    t0 = time.perf_counter()
                    st, data = hub.req("POST", "/api/v1/members", body,
                                       {"Content-Type": "application/json"}, conn=conn)
                    lat.append(time.perf_counter() - t0)
                    assert st in (200, 201), (st, data[:200])
                conn.close()
                hp50, hp99, hworst = probe.finish_all()
                stats[label][2].append(hworst)
                stats[label][3].append(hp50)
                stats[label][4].append(hp99)
                stats[label][0].append(pct(lat, 0.5) * 1e3)
                stats[label][1].append(pct(lat, 0.99) * 1e3)
        for label, hub in hubs.items():
            hub.stop()
            subprocess.run(["rm", "-rf", hub.db_dir])
            p50s, p99s, worst, hp50, hp99 = stats[label]
            r = (statistics.median(p50s), statistics.median(p99s), statistics.median(worst) * 1e3,
                 statistics.median(hp50) * 1e3, statistics.median(hp99) * 1e3)
            res[(label, n)] = r
            print("| %d | %s | %.2f | %.2f | %.2f / %.2f / %.1f |" % (n, label, r[0], r[1], r[3],
                                                                   r[4], r[2]))
            sys.stdout.flush()
    for label in ("REF", "NEW"):
        f1 = res[(label, 1000)][0] / res[(label, 10)][0]
        f2 = res[(label, 10000)][0] / res[(label, 1000)][0]
        print("\n%s write p50 growth: 10 -> 1k members %.2fx (%.2fx per 10x), 1k -> 10k %.2fx"
              % (label, f1, f1 ** 0.5, f2))


# ------------------------------------------------------------------ stats

def bench_stats():
    print("\n### Statistics query: 30 days by hour (GET /api/v1/stats?by=hour), median of %d runs\n"
          % RUNS)
    print("| pairs | minute buckets | hub | answer | time s | rows | /healthz worst ms | "
          "µs per bucket scanned | µs per row returned |")
    print("|---:|---:|---|---|---:|---:|---:|---:|---:|")
    end = int(time.time()) // 60 - 5
    start = end - 30 * 1440
    took = {}
    for pairs, every in ((10, 1), (1000, 30)):
        db_src = os.path.join(WORK, "stats-%d" % pairs)
        os.makedirs(db_src, exist_ok=True)
        out = subprocess.run([os.path.join(NEW, "tools", "bench-stats"), "fill", db_src, str(pairs),
                              "30", str(every), str(end)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        buckets = int(out.stdout)
        hubs = []
        for label, build in (("REF", REF), ("NEW", NEW)):
            hub = Hub(build, "stats-%s-%d" % (label, pairs), {"networks": [
                {"net_id": "000013", "name": "op"}]},
                relay={"stats_retention_days": 60, **({"stats_minute_retention_days": 60}
                                                       if label == "NEW" else {})})
            subprocess.run(["cp", "-r", db_src, os.path.join(hub.dir, "db")], check=True)
            hubs.append((label, hub.start(), [], [], [], []))
        q = "/api/v1/stats?from=%d&to=%d&by=hour" % (start * 60, end * 60)
        for rnd in range(RUNS):  # interleaved, the order reversed every other round
            for label, hub, times, worst, rows_l, scan_t in (hubs if rnd % 2 == 0 else hubs[::-1]):
                probe = HealthProbe(hub)
                probe.start()
                spent = 0.0
                rows, token, pages = 0, "", 0
                while True:
                    extra = ("&limit=100000&page_token=" + token) if label == "NEW" else ""
                    t0 = time.perf_counter()
                    st, data = hub.req("GET", q + extra, headers={"Accept-Encoding": "identity"})
                    spent += time.perf_counter() - t0  # the answer, not our JSON parsing
                    assert st == 200, data[:300]
                    body = json.loads(data)
                    rows += len(body["items"])
                    pages += 1
                    token = body.get("next_page_token", "")
                    if not token:
                        break
                times.append(spent)
                worst.append(probe.finish())
                rows_l.append((rows, pages))
                # scan only: a filter that matches no bucket (the data is uplink_app)
                t0 = time.perf_counter()
                st, data = hub.req("GET", q + "&class=join_request",
                                   headers={"Accept-Encoding": "identity"})
                assert st == 200 and not json.loads(data)["items"], data[:200]
                scan_t.append(time.perf_counter() - t0)
        for label, hub, times, worst, rows_l, scan_t in hubs:
            hub.stop()
            t, s = statistics.median(times), statistics.median(scan_t)
            rows, pages = rows_l[0]
            hours = len({m // 60 for m in range(start, end)})
            # buckets read by the full range: REF every minute bucket, NEW the hour roll-ups; a
            # capped REF answer read the fraction of them up to its last row (period order)
            read = buckets if label == "REF" else pairs * hours
            per_bucket = s / read * 1e6
            frac = rows / (pairs * hours)
            per_row = max(t - s * frac, 0) / rows * 1e6 if rows else 0
            answer = "one answer (capped)" if label == "REF" else "%d page(s)" % pages
            took[(label, pairs)] = (t, rows)
            print("| %d | %d | %s | %s | %.3f | %d | %.0f | %.3f | %.2f |" % (
                pairs, buckets, label, answer, t, rows, statistics.median(worst) * 1e3,
                per_bucket, per_row))
            sys.stdout.flush()
        subprocess.run(["rm", "-rf", db_src])
    for label in ("REF", "NEW"):
        (t1, r1), (t2, r2) = took[(label, 10)], took[(label, 1000)]
        print("\n%s query time growth 10 -> 1000 pairs (100x): x%.1f (x%.1f per 10x) for x%.1f rows"
              % (label, t2 / t1, (t2 / t1) ** 0.5, r2 / max(r1, 1)))


# ------------------------------------------------------------------ homes

ANS = ('{"ProtocolVersion":"1.0","SenderID":"$1","ReceiverID":"000202","TransactionID":1,'
       '"MessageType":"PRStartAns","Result":{"ResultCode":"Success"},"DevEUI":"0102030405060708",'
       '"FCntUp":1,"Lifetime":0}')

LUA = r'''
local n = 0
local homes = %d
local t1 = '{"ProtocolVersion":"1.0","SenderID":"000202","ReceiverID":"'
local t2 = '","TransactionID":'
local t3 = ',"MessageType":"PRStartReq","PHYPayload":"40'
local t4 = '800100016b5ed0ec2e5c4f9f09f2bd7b","ULMetaData":{"DataRate":5,"ULFreq":868.1,"RecvTime":"2026-11-21T12:00:00.123Z","RFRegion":"EU868","GWCnt":1,"GWInfo":[{"ID":"05060708","RFRegion":"EU868","RSSI":-81,"SNR":7.5,"Lat":52.37,"Lon":4.89,"ULToken":"0a0b0c0d0e0f10111213","DLAllowed":true}]}}'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-key-0123456789"
request = function()
  n = n + 1
  local i = n %% homes
  local net = string.format("%%06X", 0x010000 + i)
  local da = string.format("01%%02x%%02x0a", i %% 256, math.floor(i / 256))
  return wrk.format(nil, "/", nil, t1 .. net .. t2 .. n .. t3 .. da .. t4)
end
'''


def homes_table(n, stub):
    import hashlib
    h = hashlib.sha256(b"bench-key-0123456789").hexdigest()
    t = {"networks": [{"net_id": "000202", "name": "fwd"}],
         "members": [{"id": "fwd", "net_ids": ["000202"], "api_key_hashes": [h],
                      "rate_limit_per_s": 10000000}],
         "endpoints": [], "devaddr_blocks": [],
         "policies": [{"forwarder_net_id": "000202", "uplink": {
             "join_request": True, "mac_data": True, "application_data": True,
             "signal_quality": True, "localization": True}, "downlink": {
             "join_accept": True, "mac_data": True, "application_data": True}}]}
    for i in range(n):
        net = "%06X" % (0x010000 + i)
        t["networks"].append({"net_id": net, "name": "h%d" % i})
        t["members"].append({"id": "h%d" % i, "net_ids": [net]})
        t["endpoints"].append({"id": "h%d" % i, "net_id": net, "timeout_ms": 3000,
                               "url": "http://127.0.0.1:%d/%s" % (stub, net),
                               "max_in_flight": 4096})
        # DevAddr 0A.hi.lo.01 (the lua script writes it little-endian into the PHYPayload)
        t["devaddr_blocks"].append({"prefix": "%08X/24" % (0x0A000000 | (i >> 8) << 16 |
                                                            (i & 255) << 8),
                                    "net_id": net, "outside_net_id": True})
    return t


def stub_nginx():
    p = free_port()
    d = os.path.join(WORK, "stub")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(WORK, "stub.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1; pid %s/stub.pid; error_log %s/error.log crit;
events { worker_connections 16384; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 120s;
  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;
  server { listen 127.0.0.1:%d backlog=4096;
    location ~ "^/([0-9A-F]{6})$" { default_type application/json; return 200 '%s'; } } }
""" % (d, d, d, d, d, d, d, p, ANS))
    subprocess.run(["nginx", "-c", conf, "-p", d], check=True)
    return p, os.path.join(d, "stub.pid")


def conns_to(p, pid):
    out = subprocess.run(["ss", "-Htnp", "state", "established", "( dport = :%d )" % p],
                         capture_output=True, text=True).stdout
    return len([ln for ln in out.splitlines() if "pid=%d," % pid in ln])


def run_wrk(hub, homes):
    lua = os.path.join(WORK, "post-%d.lua" % homes)
    with open(lua, "w") as f:
        f.write(LUA % homes)
    c0 = hub.cpu_s()
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], conns_to(STUB, hub.proc.pid))
            time.sleep(0.5)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = subprocess.run(["wrk", "-t2", "-c%d" % CONNS, "-d%ds" % SECS, "--latency", "-s", lua,
                          "http://127.0.0.1:%d/" % hub.port], capture_output=True, text=True).stdout
    stop.set()
    th.join()
    cpu = hub.cpu_s() - c0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    req = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert not non2xx, out
    return rps, cpu / req * 1e6, peak[0]


def sanity(hub, homes):
    c = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=5)
    i = homes - 1
    req = {"ProtocolVersion": "1.0", "SenderID": "000202", "ReceiverID": "%06X" % (0x010000 + i),
           "TransactionID": 7, "MessageType": "PRStartReq",
           "PHYPayload": "4001%02x%02x0a800100016b5ed0ec2e5c4f9f09f2bd7b" % (i % 256, i // 256),
           "ULMetaData": {"DataRate": 5, "ULFreq": 868.1, "RFRegion": "EU868", "GWCnt": 1,
                          "GWInfo": []}}
    c.request("POST", "/", json.dumps(req), {"Authorization": "Bearer bench-key-0123456789"})
    a = json.loads(c.getresponse().read())
    assert a["Result"]["ResultCode"] == "Success", a


def bench_homes():
    global STUB
    STUB, pidfile = stub_nginx()
    try:
        print("\n### The same relay load over 1 or 1000 home endpoints (wrk -t2 -c%d -d%ds, "
              "PRStartReq, %d workers), median of %d runs\n" % (CONNS, SECS, WORKERS, RUNS))
        print("| home endpoints | hub | msg/s | CPU µs per message | hub->home connections (max) |")
        print("|---:|---|---:|---:|---:|")
        variants = (("REF", REF, None), ("NEW (defaults)", NEW, None),
                    ("NEW (1 per endpoint per worker)", NEW,
                     {"outbound_connections_per_endpoint": WORKERS}))
        res = {}
        for homes in (1, 1000):
            hubs = []
            for label, build, relay in variants:
                hub = Hub(build, "homes-%d-%s" % (homes, label.split()[0] + str(len(hubs))),
                          homes_table(homes, STUB), relay=relay).start()
                sanity(hub, homes)
                hubs.append((label, hub, []))
            for rnd in range(RUNS):  # interleaved, the order reversed every other round
                for label, hub, rs in (hubs if rnd % 2 == 0 else hubs[::-1]):
                    rs.append(run_wrk(hub, homes))
            for label, hub, rs in hubs:
                hub.stop()
                res[(label, homes)] = (statistics.median(r[0] for r in rs),
                                       statistics.median(r[1] for r in rs), max(r[2] for r in rs))
                print("| %d | %s | %.0f | %.2f | %d |" % ((homes, label) + res[(label, homes)]))
                sys.stdout.flush()
        for label, _, _ in variants:
            (r1, c1, n1), (r2, c2, n2) = res[(label, 1)], res[(label, 1000)]
            print("\n%s, 1 -> 1000 home endpoints (1000x): msg/s x%.2f, CPU per message x%.2f "
                  "(x%.2f per 10x), connections x%.0f" % (label, r2 / r1, c2 / c1,
                                                          (c2 / c1) ** (1 / 3), n2 / max(n1, 1)))
    finally:
        subprocess.run(["kill", open(pidfile).read().strip()])


for s in SECTIONS:
    {"members": bench_members, "stats": bench_stats, "homes": bench_homes}[s]()
