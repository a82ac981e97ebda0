"""/metrics as Prometheus and its tools see it: `promtool check metrics` passes on a scrape taken
after relayed, unroutable, refused and malformed traffic; every family has HELP and TYPE; no
label value is empty or a "000000" stand-in; the known series exist at 0 before any traffic;
histogram bounds are the exact bucket bounds; process_* and roamhub_build_info are there; the
Content-Type names the format version and charset; admin.metrics_max_peer_pairs caps the
forwarder x home pairs."""
import http.client
import os
import re
import subprocess
import sys
import time
import unittest
from decimal import Decimal

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (ALL_DOWN, ALL_UP, ROAMHUBD, Hub, Member, answer, member_records,  # noqa: E402
                             merge, pr_start_req)

A, B = "000202", "000505"
DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"
DATA_NO_ROUTE = "40" "01000016" "00" "0100" "01" "aa" "01020304"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def table(a, b):
    return merge(member_records(a), member_records(b), {
        "devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B}],
        "policies": [{"forwarder_net_id": A, "home_net_id": B, "uplink": ALL_UP, "downlink": ALL_DOWN}]})


def scrape(hub):
    conn = http.client.HTTPConnection("127.0.0.1", hub.admin_port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        conn.close()


def parse(text):
    """{family: {"help": str, "type": str}}, [(name, {label: value}, float)]"""
    fams, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            fams.setdefault(name, {})["help"] = help_
        elif line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            fams.setdefault(name, {})["type"] = typ
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            assert m, "unparseable sample line %r" % line
            labels = dict(LABEL.findall(m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return fams, samples


def family_of(name, fams):
    for suffix in ("_bucket", "_sum", "_count", ""):
        if name.endswith(suffix) and name[:len(name) - len(suffix)] in fams:
            return name[:len(name) - len(suffix)]
    return None


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.a = Member("netA", A, "key-A-0123456789")
        self.b = Member("netB", B, "key-B-0123456789")
        self.hubs = []

    def tearDown(self):
        for h in self.hubs:
            h.cleanup()
        self.a.stop()
        self.b.stop()

    def hub(self, **admin):
        h = Hub(table(self.a, self.b), config={"admin": admin} if admin else None)
        self.hubs.append(h)
        return h

    def traffic(self, hub):
        for _ in range(3):
            hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        hub.post(pr_start_req(A, B, DATA_NO_ROUTE), self.a.key)           # no route
        hub.post(pr_start_req(A, B, DATA_APP_B), "not-a-member-key-000")  # unauthenticated
        hub.post(None, self.a.key, raw=b'{"ProtocolVersion": "1.0", ')    # malformed
        self.b.answer_fn = lambda req: answer(req, "UnknownDevAddr")
        hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)                # receiver error
        self.b.answer_fn = None

    def test_promtool_and_conventions(self):
        t0 = time.time()
        hub = self.hub()
        st, ctype, before = scrape(hub)
        self.assertEqual(st, 200)
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        _, samples0 = parse(before)
        names0 = {(n, tuple(sorted(l.items()))) for n, l, _ in samples0}
        self.traffic(hub)
        _, _, text = scrape(hub)
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), "")

        fams, samples = parse(text)
        for name, f in fams.items():
            self.assertTrue(f.get("help"), name + " has no HELP")
            self.assertIn(f.get("type"), ("counter", "gauge", "histogram"), name)
        for name, labels, value in samples:
            self.assertIsNotNone(family_of(name, fams), name + " has no HELP/TYPE")
            for k, v in labels.items():
                self.assertNotEqual(v, "", "%s{%s=\"\"}" % (name, k))
                if k in ("forwarder", "home"):
                    self.assertNotEqual(v, "000000", "%s: sentinel %s" % (name, labels))

        def value(name, **labels):
            got = [v for n, l, v in samples if n == name and l == labels]
            self.assertEqual(len(got), 1, "%s%s: %s" % (name, labels, got))
            return got[0]

        # the relay counters, labelled by what the hub knew and the protocol each side spoke
        ts = {"forwarder_protocol": "ts002", "home_protocol": "ts002"}
        self.assertEqual(value("roamhub_messages_total", forwarder=A, home=B, **{
            "class": "uplink_app", "outcome": "forwarded"}, **ts), 3)
        self.assertEqual(value("roamhub_messages_total", forwarder=A, **{
            "class": "uplink_app", "outcome": "no_route"}, **ts), 1)
        self.assertEqual(value("roamhub_messages_total", forwarder=A, home=B, result="UnknownDevAddr",
                               **{"class": "uplink_app", "outcome": "receiver_error"}, **ts), 1)
        for n, l, v in samples:
            if n == "roamhub_messages_total":
                self.assertIn(l.get("forwarder_protocol"), ("ts002", "packet_broker"), l)
                self.assertIn(l.get("home_protocol"), ("ts002", "packet_broker"), l)
        self.assertEqual(value("roamhub_relay_outcomes_total", **{"class": "uplink_app",
                                                                 "outcome": "forwarded"}), 3)
        # known series existed at 0 before any traffic
        for event in ("malformed", "rate_limited", "unauthenticated", "sender_refused",
                      "unmatched_answer"):
            self.assertIn(("roamhub_events_total", (("event", event),)), names0)
        outcomes0 = [1 for n, l, v in samples0 if n == "roamhub_relay_outcomes_total" and v == 0]
        self.assertEqual(len(outcomes0), 7 * 9)  # classes x outcomes (rate_limited included)
        self.assertGreaterEqual(value("roamhub_events_total", event="unauthenticated"), 1)
        # histogram: exact bounds (2^i - 1 µs), cumulative, +Inf = count
        for stage in ("receive_to_forward", "forward_to_answer"):
            buckets = [(l["le"], v) for n, l, v in samples
                       if n == "roamhub_relay_latency_seconds_bucket" and l["stage"] == stage]
            self.assertEqual(buckets[-1][0], "+Inf")
            for i, (le, _) in enumerate(buckets[:-1]):
                self.assertEqual(Decimal(le), Decimal(2 ** i - 1) / Decimal(10 ** 6), le)
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts))
            self.assertEqual(counts[-1], value("roamhub_relay_latency_seconds_count", stage=stage))
        # build and process
        version = subprocess.run([ROAMHUBD, "--version"], capture_output=True, text=True).stdout.split()[-1]
        self.assertEqual(value("roamhub_build_info", version=version), 1)
        start = value("process_start_time_seconds")
        self.assertGreaterEqual(start, t0 - 1)
        self.assertLessEqual(start, time.time())
        self.assertGreater(value("process_cpu_seconds_total"), 0)
        self.assertGreater(value("process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(value("process_open_fds"), 3)
        self.assertGreater(value("process_max_fds"), value("process_open_fds"))
        self.assertEqual(value("roamhub_members"), 2)

    def pairs(self, text):
        _, samples = parse(text)
        pairs = {}
        for n, l, v in samples:
            if n == "roamhub_messages_total":
                key = (l.get("forwarder"), l.get("home"))
                pairs[key] = pairs.get(key, 0) + v
        return pairs, {l["state"]: v for n, l, v in samples if n == "roamhub_metrics_peer_pairs"}

    def test_pair_cap(self):
        hub = self.hub(metrics_max_peer_pairs=1)
        hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        hub.post(pr_start_req(A, B, DATA_NO_ROUTE), self.a.key)
        first, gauges = self.pairs(scrape(hub)[2])
        self.assertEqual(len(first), 2, first)
        self.assertIn(("other", "other"), first)
        self.assertEqual(gauges, {"labelled": 1, "folded": 1})
        self.assertEqual(sum(first.values()), 2)
        labelled = [p for p in first if p != ("other", "other")][0]
        # the admitted pair keeps its labels at the next scrape (counters stay monotonic)
        hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        hub.post(pr_start_req(A, B, DATA_NO_ROUTE), self.a.key)
        second, _ = self.pairs(scrape(hub)[2])
        self.assertEqual(set(second), set(first))
        self.assertEqual(second[labelled], 2)
        self.assertEqual(second[("other", "other")], 2)

    def test_pair_labels_off(self):
        hub = self.hub(metrics_max_peer_pairs=0)
        hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        hub.post(pr_start_req(A, B, DATA_NO_ROUTE), self.a.key)
        got, gauges = self.pairs(scrape(hub)[2])
        self.assertEqual(got, {(None, None): 2})
        self.assertEqual(gauges["labelled"], 0)

    def stage(self, text, name):
        """(count, sum in s) of roamhub_relay_latency_seconds{stage=name}"""
        _, samples = parse(text)
        got = {n: v for n, l, v in samples if l.get("stage") == name and "le" not in l}
        return (got["roamhub_relay_latency_seconds_count"],
                got["roamhub_relay_latency_seconds_sum"])

    def test_hub_added_latency(self):
        """relay.hub_latency: each answered relayed message counts the hub's own part of its round
        trip (kernel arrival of the request -> answer written, less forward -> kernel arrival of
        the answer): a home network that takes 150 ms is not counted as the hub's."""
        h = Hub(table(self.a, self.b), config={"relay": {"hub_latency": True}})
        self.hubs.append(h)
        self.assertEqual(self.stage(scrape(h)[2], "hub_added"), (0, 0))
        # the kernel turns receive timestamps on a moment after the first socket asks (a deferred
        # work item): a warm-up message, which may or may not carry them
        self.assertEqual(h.post(pr_start_req(A, B, DATA_APP_B), self.a.key)[0], 200)
        time.sleep(0.2)
        n0, total0 = self.stage(scrape(h)[2], "hub_added")
        self.assertLessEqual(n0, 1)

        def slow(req):
            time.sleep(0.15)
            return answer(req, "Success")
        self.b.answer_fn = slow
        for _ in range(3):
            st, _, elapsed = h.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
            self.assertEqual(st, 200)
            self.assertGreaterEqual(elapsed, 0.15)
        h.post(pr_start_req(A, B, DATA_NO_ROUTE), self.a.key)  # refused by the hub: not relayed
        self.b.answer_fn = None
        text = scrape(h)[2]
        n, total = self.stage(text, "hub_added")
        self.assertEqual(n - n0, 3)
        self.assertGreater(total - total0, 0)
        self.assertLess((total - total0) / 3, 0.1, "the home network's 150 ms counted as the hub's")
        n_ans, ans_total = self.stage(text, "forward_to_answer")
        self.assertEqual(n_ans, 4)
        self.assertGreaterEqual(ans_total / n_ans, 0.15 * 3 / 4)

    def test_hub_added_off_by_default(self):
        hub = self.hub()
        hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        text = scrape(hub)[2]
        self.assertEqual(self.stage(text, "hub_added"), (0, 0))
        self.assertEqual(self.stage(text, "forward_to_answer")[0], 1)


if __name__ == "__main__":
    unittest.main()
