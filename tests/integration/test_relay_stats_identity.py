"""Statistics keep the sender's identity kind and are never stopped by one request (issue #16
item 2).

Regression: a request whose SenderID is an EUI-64 that the member may not use was answered
UnknownSender, but its statistics row carried the EUI cut to 32 bits as a NetID; rp_stats_add
refused the worker's whole batch ("NetID wider than 24 bits"), the batch was put back, and no
statistics of that worker were recorded any more until restart. A rate-limited Join Server (its
SenderID is its JoinEUI) did the same. Now a refused SenderID is counted under who really sent
it (the authenticated member's NetID: a made-up SenderID must not create rows without bound),
a rate-limited Join Server under its JoinEUI (16 hex digits in the admin API, as in a
SenderID), and every later message is still counted."""
import csv
import io
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (ALL_DOWN, ALL_UP, AdminClient, Hub, Member, admin_config,  # noqa: E402
                             answer, member_records, merge, next_txid, pr_start_req, sha256_hex)

A, B, J = "000202", "000505", "000808"   # forwarder, home, the Join Server operator's NetID
JOIN_EUI = "70b3d57ed000aaaa"
FOREIGN_EUI = "70b3d57ed000bbbb"          # no Join Server of A's
UP_B = "40" "0100000a" "00" "0100" "01" "aa" "01020304"


class StatsIdentityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = Member("netA", A, "key-A-0123456789")
        cls.b = Member("netB", B, "key-B-0123456789")
        cls.js = Member("js1", JOIN_EUI, "key-JS-0123456789")
        table = merge(
            member_records(cls.a), member_records(cls.b),
            {"networks": [{"net_id": J, "name": "js-operator"}],
             "members": [{"id": "js1", "net_ids": [J], "rate_limit_per_s": 1,
                          "api_key_hashes": [sha256_hex(cls.js.key)]}],
             "endpoints": [{"id": "js1", "net_id": J, "join_eui": JOIN_EUI, "url": cls.js.url,
                            "protocol_version": "PROTOCOL_VERSION_1_0", "timeout_ms": 1500}],
             "devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B}],
             "policies": [{"forwarder_net_id": A, "home_net_id": B, "uplink": dict(ALL_UP),
                           "downlink": dict(ALL_DOWN)}]})
        cls.hub = Hub(table, config={"admin": admin_config()})
        for m in (cls.a, cls.b, cls.js):
            m.hub = cls.hub
        cls.api = AdminClient(cls.hub)
        cls.op = cls.api.token(cls.api.operator_key())
        cls.t0 = int(time.time()) - 120

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()
        for m in (cls.a, cls.b, cls.js):
            m.stop()

    def stats(self):
        st, body, _ = self.api.call("GET", "/stats?from=%d" % self.t0, token=self.op)
        self.assertEqual(st, 200, body)
        out = {}
        for it in body["items"]:
            key = (it["forwarder"], it["outcome"])
            out[key] = out.get(key, 0) + it["count"]
        return out

    def wait_stats(self, want):
        deadline = time.time() + 8
        got = self.stats()
        while not all(got.get(k, 0) >= v for k, v in want.items()) and time.time() < deadline:
            time.sleep(0.1)
            got = self.stats()
        return got

    def relay_ok(self, n):
        for _ in range(n):
            st, ans, _ = self.hub.post(pr_start_req(A, B, UP_B), self.a.key)
            self.assertEqual(st, 200)
            self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)

    def test_eui_sender_and_rate_limited_join_server_keep_statistics_going(self):
        self.relay_ok(2)
        # A claims a JoinEUI it has no Join Server for: UnknownSender, counted under A
        req = pr_start_req(A, B, UP_B)
        req["SenderID"] = FOREIGN_EUI
        st, ans, _ = self.hub.post(req, self.a.key)
        self.assertEqual((st, ans["Result"]["ResultCode"]), (200, "UnknownSender"))
        # the Join Server (SenderID = its JoinEUI) beyond its rate limit of 1/s
        limited = 0
        for _ in range(8):
            msg = {"ProtocolVersion": "1.0", "SenderID": JOIN_EUI, "ReceiverID": B,
                   "TransactionID": next_txid(), "MessageType": "ProfileReq",
                   "DevEUI": "0102030405060708"}
            st, ans, _ = self.hub.post(msg, self.js.key)
            self.assertEqual(st, 200)
            if ans and ans.get("Result", {}).get("Description", "").startswith("rate limit"):
                limited += 1
        self.assertGreater(limited, 0)
        time.sleep(0.5)  # at least two statistics flushes (stats_flush_ms 200) after the bad rows
        self.relay_ok(3)
        got = self.wait_stats({(A, "forwarded"): 5, (A, "unauthorized"): 1,
                               (JOIN_EUI, "rate_limited"): limited})
        self.assertEqual(got.get((A, "forwarded")), 5, got)
        self.assertEqual(got.get((A, "unauthorized")), 1, got)
        self.assertNotIn((FOREIGN_EUI, "unauthorized"), got)
        # rate-limited refusals have their own outcome (issue 14), not "unauthorized"
        self.assertEqual(got.get((JOIN_EUI, "rate_limited")), limited, got)
        self.assertNotIn((JOIN_EUI, "unauthorized"), got)
        # roamctl stats filters and prints the outcome by its name
        ctl = subprocess.run(
            [os.path.join(os.environ["ROAMHUB_BUILD"], "tools", "roamctl"), "stats", "--from",
             str(self.t0), "--outcome", "rate_limited", "--format", "csv"],
            env={"PATH": os.environ.get("PATH", ""), "HOME": self.hub.dir,
                 "ROAMCTL_URL": "http://127.0.0.1:%d" % self.hub.admin_port,
                 "ROAMCTL_KEY_FILE": self.hub.config["admin"]["operator_key_file"]},
            capture_output=True, text=True, timeout=30)
        self.assertEqual(ctl.returncode, 0, ctl.stderr)
        items = list(csv.DictReader(io.StringIO(ctl.stdout)))
        self.assertEqual(sum(int(it["count"]) for it in items), limited, items)
        self.assertTrue(all(it["outcome"] == "rate_limited" and it["forwarder"] == JOIN_EUI
                            for it in items), items)
        for fwd, _ in got:
            self.assertIn(len(fwd), (6, 16), got)  # a NetID or a whole JoinEUI, nothing between
        self.assertNotIn("flush failed", self.hub.logs())
        self.assertNotIn("rows skipped", self.hub.logs())


if __name__ == "__main__":
    unittest.main()
