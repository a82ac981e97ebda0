"""Traffic statistics and live capture through the admin API of the real roamhubd: counts match
the messages sent per class and outcome, survive a restart, come as JSON, CSV and gzip; a member
sees only its own traffic; a capture holds the events and no tokens, keys or payloads."""
import csv
import gzip
import io
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (AdminClient, Hub, Member, admin_config, answer, member_records,  # noqa: E402
                             merge, pr_start_req)

A, B, E = "000202", "000505", "000909"
APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"    # DevAddr 0A000001, FPort 1
ERR_B = "40" "0200000a" "00" "0100" "01" "aabb" "01020304"    # DevAddr 0A000002: B answers MICFailed
MAC_B = "40" "0100000a" "00" "0200" "01020304"                 # MAC only: denied by policy
NOROUTE = "40" "01000016" "00" "0100" "01" "aa" "01020304"     # DevAddr 16000001: no block
SENT = {("uplink_app", "forwarded"): 3, ("uplink_mac", "policy_denied"): 2,
        ("uplink_app", "no_route"): 2, ("uplink_app", "receiver_error"): 2}


def b_answer(req):
    if req.get("PHYPayload", "").lower() == ERR_B:
        return answer(req, "MICFailed", "bad MIC")
    return answer(req, "Success", DevEUI="0102030405060708", Lifetime=0)


class Stats(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = Member("netA", A, "key-A-0123456789")
        cls.b = Member("netB", B, "key-B-0123456789", answer_fn=b_answer)
        table = merge(member_records(cls.a), member_records(cls.b),
                      {"networks": [{"net_id": E, "name": "E"}],
                       "devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B}],
                       "policies": [{"forwarder_net_id": A, "home_net_id": B,
                                     "uplink": {"application_data": True}, "downlink": {}}]})
        cls.hub = Hub(table, config={"admin": admin_config()})
        cls.a.hub = cls.b.hub = cls.hub
        cls.api = AdminClient(cls.hub)
        cls.op = cls.api.token(cls.api.operator_key())
        cls.tok = {}
        for net in (A, B, E):
            k, _ = cls.api.create_key(cls.op, net_id=net, rights=["RIGHT_READ_TRAFFIC"])
            cls.tok[net] = cls.api.token(k)
        cls.t0 = int(time.time()) - 120
        for phy, n in ((APP_B, 3), (MAC_B, 2), (NOROUTE, 2), (ERR_B, 2)):
            for _ in range(n):
                st, ans, _ = cls.hub.post(pr_start_req(A, B, phy), cls.a.key)
                assert st == 200, (st, ans)

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()
        cls.a.stop()
        cls.b.stop()

    def counts(self, token, query=""):
        st, body, _ = self.api.call("GET", "/stats?from=%d%s" % (self.t0, query), token=token)
        self.assertEqual(st, 200, body)
        out = {}
        for it in body["items"]:
            key = (it["class"], it["outcome"])
            out[key] = out.get(key, 0) + it["count"]
            self.assertIn(it["forwarder"], (A, B, E, "000000"))
        return out, body

    def wait_counts(self, token, want, query=""):
        deadline = time.time() + 8
        while True:
            got, body = self.counts(token, query)
            if all(got.get(k, 0) >= v for k, v in want.items()) or time.time() > deadline:
                return got, body
            time.sleep(0.1)

    def test_1_counts_match_per_class_and_outcome(self):
        got, body = self.wait_counts(self.op, SENT)
        for k, v in SENT.items():
            self.assertEqual(got.get(k), v, "%s: %s" % (k, got))
        self.assertEqual(sum(got.values()), sum(SENT.values()))
        err = [it for it in body["items"] if it["outcome"] == "receiver_error"]
        self.assertEqual(err[0]["result_code"], "MICFailed")
        fwd = [it for it in body["items"] if it["outcome"] == "forwarded"][0]
        lat = fwd["latency_ms"]
        self.assertGreater(lat["mean"], 0)
        self.assertLessEqual(lat["p50"], lat["p90"])
        self.assertLessEqual(lat["p90"], lat["p99"])
        self.assertEqual((fwd["forwarder"], fwd["home"]), (A, B))
        # filters and aggregation
        got, _ = self.counts(self.op, "&outcome=policy_denied")
        self.assertEqual(got, {("uplink_mac", "policy_denied"): 2})
        got, body = self.counts(self.op, "&by=hour&class=uplink_app&forwarder=" + A)
        self.assertEqual(sum(got.values()), 7)
        self.assertTrue(all(it["period_start"].endswith(":00:00Z") for it in body["items"]))
        self.assertEqual(self.api.call("GET", "/stats?by=week", token=self.op)[0], 400)
        self.assertEqual(self.api.call("GET", "/stats?from=yesterday", token=self.op)[0], 400)

    def test_1b_protocols_of_ts002_traffic(self):
        """TS002 members only: every row says TS002 on both sides; the protocol filters."""
        got, body = self.wait_counts(self.op, SENT)
        self.assertTrue(body["items"])
        for it in body["items"]:
            self.assertEqual((it["forwarder_protocol"], it["home_protocol"]), ("ts002", "ts002"))
        for q in ("&protocol=ts002", "&forwarder_protocol=ts002", "&home_protocol=ts002"):
            self.assertEqual(self.counts(self.op, q)[0], got, q)
        for q in ("&protocol=packet_broker", "&forwarder_protocol=packet_broker",
                  "&home_protocol=packet_broker&outcome=forwarded"):
            self.assertEqual(self.counts(self.op, q)[0], {}, q)
        for q in ("protocol=TS002", "home_protocol=", "forwarder_protocol=grpc"):
            st, err, _ = self.api.call("GET", "/stats?" + q, token=self.op)
            self.assertEqual(st, 400, q)
            self.assertIn(q.split("=")[0] + ": expected ts002 or packet_broker", json.dumps(err))

    def test_2_csv_and_gzip(self):
        self.wait_counts(self.op, SENT)
        st, data, hd = self.api.raw("GET", "/api/v1/stats?format=csv&from=%d" % self.t0,
                                    headers={"Authorization": "Bearer " + self.op,
                                             "Accept-Encoding": "gzip"})
        self.assertEqual(st, 200)
        self.assertEqual(hd.get("content-encoding"), "gzip")
        self.assertTrue(hd["content-type"].startswith("text/csv"))
        rows = list(csv.DictReader(io.StringIO(gzip.decompress(data).decode())))
        self.assertEqual(sum(int(r["count"]) for r in rows), sum(SENT.values()))
        self.assertIn("latency_p99_ms", rows[0])
        self.assertEqual({(r["forwarder_protocol"], r["home_protocol"]) for r in rows},
                         {("ts002", "ts002")})
        st, data, hd = self.api.raw("GET", "/api/v1/stats?from=%d" % self.t0,
                                    headers={"Authorization": "Bearer " + self.op,
                                             "Accept-Encoding": "gzip;q=0"})
        self.assertNotIn("content-encoding", hd)
        json.loads(data)

    def test_3_member_sees_only_its_traffic(self):
        self.wait_counts(self.op, SENT)
        got_b, body = self.counts(self.tok[B])
        for it in body["items"]:
            self.assertIn(B, (it["forwarder"], it["home"]))
        # B is home of everything except the no-route messages
        self.assertNotIn(("uplink_app", "no_route"), got_b)
        self.assertEqual(got_b.get(("uplink_app", "forwarded")), 3)
        got_a, _ = self.counts(self.tok[A])
        self.assertEqual(sum(got_a.values()), sum(SENT.values()))
        got_e, body = self.counts(self.tok[E])
        self.assertEqual(body["items"], [])

    def test_4_capture(self):
        results = {}

        def cap(name, token, secs=2):
            st, data, hd = self.api.raw("GET", "/api/v1/capture?seconds=%d&download=true" % secs,
                                        headers={"Authorization": "Bearer " + token})
            results[name] = (st, data, hd)
        threads = [threading.Thread(target=cap, args=("op", self.op)),
                   threading.Thread(target=cap, args=("a", self.tok[A])),
                   threading.Thread(target=cap, args=("e", self.tok[E]))]
        for t in threads:
            t.start()
        time.sleep(0.5)
        for phy in (APP_B, MAC_B, ERR_B):
            self.hub.post(pr_start_req(A, B, phy), self.a.key)
        for t in threads:
            t.join(10)
        for name in ("op", "a", "e"):
            st, data, hd = results[name]
            self.assertEqual(st, 200)
            self.assertEqual(hd["content-type"], "application/gzip")
            text = gzip.decompress(data).decode()
            lines = [json.loads(x) for x in text.splitlines()]
            self.assertIn("summary", lines[-1])
            events = lines[:-1]
            self.assertEqual(lines[-1]["summary"]["events"], len(events))
            for secret in ("key-A", "key-B", "Bearer", APP_B, MAC_B, "0a0b0c0d", "PHYPayload"):
                self.assertNotIn(secret.lower(), text.lower(), name)
            if name == "e":
                self.assertEqual(events, [])
                continue
            self.assertEqual(len(events), 3, events)
            outcomes = sorted(e["outcome"] for e in events)
            self.assertEqual(outcomes, ["forwarded", "policy_denied", "receiver_error"])
            for e in events:
                self.assertEqual((e["forwarder"], e["home"], e["message_type"]),
                                 (A, B, "PRStartReq"))
                self.assertEqual(e["sender"], "netA")
                self.assertGreater(e["transaction_id"], 0)
            self.assertIn("MICFailed", [e.get("result_code") for e in events])
        # bad parameters
        self.assertEqual(self.api.call("GET", "/capture?seconds=0", token=self.op)[0], 400)
        self.assertEqual(self.api.call("GET", "/capture?seconds=600", token=self.op)[0], 400)

    def test_5_counts_survive_restart(self):
        self.wait_counts(self.op, SENT)
        time.sleep(0.5)  # let the capture test's messages flush too
        before, _ = self.counts(self.op)
        self.hub.stop()
        self.hub.start()
        after, _ = self.counts(self.api.token(self.api.operator_key()))
        self.assertEqual(before, after)
        for k, v in SENT.items():
            self.assertGreaterEqual(after.get(k, 0), v)


if __name__ == "__main__":
    unittest.main()
