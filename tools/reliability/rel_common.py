"""Shared pieces of the reliability scripts (tools/reliability/*.py): a small roaming world on top of
the integration harness (tests/integration/roamhub_harness.py: the real roamhubd on 127.0.0.1 with
ephemeral ports and scripted member endpoints), process sampling from /proc, a keep-alive TS002
client, percentiles, and the report every script ends with.

Scripts are run by people, not CI: each is bounded in time, uses loopback only, prints what it
sent, what held and what was lost, and exits 1 when one of its bounds is broken (2 on a set-up
error). They use the build in $ROAMHUB_BUILD (default: build/ of this checkout).
"""
import http.client
import json
import os
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("ROAMHUB_BUILD", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import roamhub_harness as H  # noqa: E402

A, B, C = "000202", "000505", "000707"       # forwarder (sync), home (sync), home (async)
DEVADDR_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"   # DevAddr 0A000001 -> B
DEVADDR_C = "40" "0100000e" "00" "0100" "01" "aabb" "01020304"   # DevAddr 0E000001 -> C
BLOCKS = {B: "0A000000/7", C: "0E000000/7"}


def home_answer(req):
    if req["MessageType"] == "PRStartReq":
        return H.answer(req, "Success", DevEUI="0102030405060708", FCntUp=1, Lifetime=0)
    return H.answer(req, "Success")


def quiet_member(*args, **kw):
    """A harness Member whose received-message queue is not kept (long runs)."""
    m = H.Member(*args, **kw)

    class Sink:
        def put(self, msg):
            pass
    m.received = Sink()
    return m


class World:
    """roamhubd with forwarder A (sync), homes B (sync) and C (async), policies A -> B, C, plus
    any extra homes given as (Member-like object with name/net_id/key/url/mode/stop(), DevAddr
    block); extra homes are stopped by close() too."""

    def __init__(self, config=None, workers=2, extra_homes=(), popen=None, keep_messages=False,
                 extra_table=None):
        make = H.Member if keep_messages else quiet_member
        self.a = make("netA", A, "key-A-0123456789")
        self.b = make("netB", B, "key-B-0123456789", answer_fn=home_answer)
        self.c = make("netC", C, "key-C-0123456789", mode="async", answer_fn=home_answer)
        self.members = [self.a, self.b, self.c]
        docs = [H.member_records(m) for m in self.members]
        blocks = [{"prefix": p, "net_id": n} for n, p in BLOCKS.items()]
        policies = [self.policy(A, B), self.policy(A, C)]
        for home, block in extra_homes:   # a home's endpoint timeout: home.timeout_ms (1500)
            docs.append(H.member_records(home, timeout_ms=getattr(home, "timeout_ms", 1500)))
            blocks.append({"prefix": block, "net_id": home.net_id})
            policies.append(self.policy(A, home.net_id))
        table = H.merge(*docs, {"devaddr_blocks": blocks, "policies": policies}, extra_table or {})
        cfg = {"relay": {"stats_flush_ms": 1000}}
        for k, v in (config or {}).items():
            if isinstance(v, dict):
                cfg.setdefault(k, {}).update(v)
            else:
                cfg[k] = v
        self.hub = H.Hub(table, config=cfg, workers=workers, popen=popen)
        self.members += [home for home, _ in extra_homes]
        for m in self.members:
            m.hub = self.hub

    @staticmethod
    def policy(fwd, home):
        return {"forwarder_net_id": fwd, "home_net_id": home, "uplink": dict(H.ALL_UP),
                "downlink": dict(H.ALL_DOWN)}

    def close(self):
        """Stops everything; returns the hub's exit problem (text) or None when it exited cleanly."""
        err = None
        try:
            self.hub.cleanup()
        except AssertionError as e:
            err = str(e)
        for m in self.members:
            m.stop()
        return err


class Client:
    """A keep-alive TS002 client of the hub (one connection, reopened after an error)."""

    def __init__(self, hub, key, timeout=10.0):
        self.hub, self.key, self.timeout = hub, key, timeout
        self.conn = None

    def post(self, msg):
        """Returns (HTTP status or 0 on a transport error, parsed answer or None, seconds)."""
        body = json.dumps(msg).encode()
        t0 = time.monotonic()
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.hub.port,
                                                           timeout=self.timeout)
                self.conn.request("POST", "/", body=body, headers={
                    "Content-Type": "application/json", "Authorization": "Bearer " + self.key})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                try:
                    return r.status, (json.loads(data) if data else None), time.monotonic() - t0
                except ValueError:
                    return r.status, None, time.monotonic() - t0
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 1 or time.monotonic() - t0 > self.timeout:
                    return 0, None, time.monotonic() - t0
        return 0, None, time.monotonic() - t0

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


def result_code(ans):
    try:
        return ans["Result"]["ResultCode"]
    except (TypeError, KeyError):
        return None


# ------------------------------------------------------------------------------------ /proc

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def ms(seconds):
    return round(seconds * 1000.0, 1)


class Load:
    """Sends PRStartReq from A to the given (receiver NetID, PHYPayload) targets in `threads`
    threads at about `rate` messages/s in total, counting answers by ResultCode and recording
    latencies per receiver. stop() ends it."""

    def __init__(self, world, targets, rate, threads=4):
        self.world, self.targets, self.rate = world, targets, rate
        self.lock = threading.Lock()
        self.sent = 0
        self.codes = {}            # (receiver, ResultCode or "http N" / "transport") -> count
        self.latency = {t[0]: [] for t in targets}
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i, threads), daemon=True)
                        for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def run(self, index, nthreads):
        cl = Client(self.world.hub, self.world.a.key)
        interval = nthreads / float(self.rate)
        next_at = time.monotonic() + index * interval / nthreads
        i = index
        while not self.stopping.is_set():
            now = time.monotonic()
            if now < next_at:
                time.sleep(min(next_at - now, 0.05))
                continue
            next_at += interval
            if next_at < now - 1:      # fell behind by more than a second: do not burst
                next_at = now
            recv, phy = self.targets[i % len(self.targets)]
            i += 1
            st, ans, el = cl.post(H.pr_start_req(A, recv, phy))
            code = result_code(ans) if st == 200 else ("http %d" % st if st else "transport")
            with self.lock:
                self.sent += 1
                self.codes[(recv, code)] = self.codes.get((recv, code), 0) + 1
                if code == "Success":
                    self.latency[recv].append(el)
        cl.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=30)

    def lost(self):
        """Requests that did not get a Success answer."""
        with self.lock:
            return sum(n for (r, c), n in self.codes.items() if c != "Success")

    def summary(self):
        with self.lock:
            return {"sent": self.sent,
                    "answers": {"%s %s" % k: n for k, n in sorted(self.codes.items())},
                    "latency_ms": {r: {"n": len(v), "p50": ms(percentile(v, 50)),
                                       "p99": ms(percentile(v, 99))}
                                   for r, v in self.latency.items()}}


def report(name, figures, bounds):
    """Prints the figures (JSON) and each bound as held/BROKEN; exits 1 if any is broken.
    bounds: list of (description, held: bool)."""
    print("== %s ==" % name)
    print(json.dumps(figures, indent=2, sort_keys=True))
    broken = 0
    for desc, held in bounds:
        print("%-8s %s" % ("held" if held else "BROKEN", desc))
        broken += not held
    print("%s: %s" % (name, "all bounds held" if not broken else "%d bound(s) broken" % broken))
    sys.exit(1 if broken else 0)
