"""roamhubd operations: SIGTERM drains in-flight requests, per-member rate limit, /healthz and
/metrics, dev-loopback mode, unknown configuration refused."""
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (ALL_DOWN, ALL_UP, ROAMHUBD, Hub, Member, answer, member_records,  # noqa: E402
                             assert_no_sanitizer_report, merge, pr_start_req)

A, B = "000202", "000505"
DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"


def table(a, b, rate=None):
    recs_a = member_records(a)
    if rate:
        recs_a["members"][0]["rate_limit_per_s"] = rate
    return merge(recs_a, member_records(b), {
        "devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B}],
        "policies": [{"forwarder_net_id": A, "home_net_id": B, "uplink": ALL_UP, "downlink": ALL_DOWN}]})


class OpsTest(unittest.TestCase):
    def setUp(self):
        self.a = Member("netA", A, "key-A-0123456789")
        self.b = Member("netB", B, "key-B-0123456789")
        self.hub = None

    def tearDown(self):
        if self.hub:
            self.hub.cleanup()
        self.a.stop()
        self.b.stop()

    def test_sigterm_drains_in_flight_requests(self):
        def slow(req):
            time.sleep(0.6)
            return answer(req, "Success")
        self.b.answer_fn = slow
        self.hub = Hub(table(self.a, self.b))
        result = {}

        def send():
            try:
                result["r"] = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
            except Exception as e:  # reported by the assertion below
                result["r"] = (repr(e), None, 0)
        th = threading.Thread(target=send)
        th.start()
        self.b.get()                       # the request reached B: it is in flight
        self.hub.proc.terminate()          # SIGTERM
        th.join()
        st, ans, _ = result["r"]
        self.assertEqual(st, 200, self.hub.logs())
        self.assertEqual(ans["Result"]["ResultCode"], "Success")
        self.assertEqual(self.hub.proc.wait(timeout=10), 0)
        self.assertIn("draining", self.hub.logs())

    def test_rate_limit_per_member(self):
        self.hub = Hub(table(self.a, self.b, rate=5))   # 5/s, burst 10
        codes, refusals = [], []
        t0 = time.monotonic()
        for _ in range(30):
            st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
            codes.append(ans["Result"]["ResultCode"])
            if ans["Result"]["ResultCode"] != "Success":
                refusals.append(ans["Result"].get("Description", ""))
        elapsed = time.monotonic() - t0
        limited = [c for c in codes if c == "Other"]
        # the bucket starts full (10) and refills at 5/s while we send, whatever the machine's speed
        self.assertGreaterEqual(codes.count("Success"), 10)
        self.assertLessEqual(codes.count("Success"), 10 + int(5 * elapsed) + 1)
        self.assertGreaterEqual(len(limited), 30 - (10 + int(5 * elapsed) + 1))
        self.assertGreater(len(limited), 0)
        # every refusal names the rate limit (a request sent after the loop could meet a token
        # refilled meanwhile on a slow machine, so the refusals are checked where they happened)
        for d in refusals:
            self.assertIn("rate limit", d)
        self.assertGreaterEqual(self.hub.metric('roamhub_events_total{event="rate_limited"}'), 10)

    def test_healthz_and_metrics(self):
        self.hub = Hub(table(self.a, self.b))
        st, body = self.hub.get_admin("/healthz")
        self.assertEqual((st, body), (200, "ok\n"))
        for _ in range(3):
            self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        self.hub.post(pr_start_req(A, B, "40" "01000016" "00" "0100" "01" "aa" "01020304"), self.a.key)
        sel = 'roamhub_messages_total{forwarder="000202",home="000505",class="uplink_app",outcome="forwarded"'
        self.assertEqual(self.hub.metric(sel), 3)
        self.assertEqual(self.hub.metric('roamhub_messages_total{forwarder="000202",'
                                         'class="uplink_app",outcome="no_route"'), 1)
        self.assertGreaterEqual(self.hub.metric('roamhub_relay_latency_seconds_count{stage="forward_to_answer"}'), 3)
        self.assertEqual(self.hub.metric("roamhub_members"), 2)

    def test_dev_loopback_mode(self):
        self.hub = Hub(table(self.a, self.b), config={"ts002": {"dev_loopback_unauthenticated": True}})
        st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B))   # no credentials
        self.assertEqual(st, 200)
        self.assertEqual(ans["Result"]["ResultCode"], "Success")
        st, ans, _ = self.hub.post(pr_start_req("000999", B, DATA_APP_B))  # nobody's NetID
        self.assertEqual(st, 401)

    def test_bad_configuration_refused(self):
        cfg = os.path.join(self.a.__dict__.get("dir", "/tmp"), "roamhub-bad-%d.json" % os.getpid())
        with open(cfg, "w") as f:
            json.dump({"ts002": {"address": "0.0.0.0", "dev_loopback_unauthenticated": True}}, f)
        r = subprocess.run([ROAMHUBD, "-c", cfg], capture_output=True, text=True, timeout=10)
        os.unlink(cfg)
        assert_no_sanitizer_report("roamhubd", r.stderr)
        self.assertEqual(r.returncode, 2)
        self.assertIn("dev_loopback_unauthenticated", r.stderr)


if __name__ == "__main__":
    unittest.main()
