"""Member and endpoint writes through the admin API of the real roamhubd (issue 18 item 2): the
next member registry is built off the admin loop, then the record is stored and the registry
published. A burst of concurrent member writes from several clients, with /healthz polled all
along, ends with every write stored and visible to the relay, every /healthz answered 200, and
the registry equal to the stored records; a write the registry refuses is never stored."""
import http.client
import json
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (AdminClient, Hub, Member, admin_config, answer, member_records,  # noqa: E402
                             merge, pr_start_req, sha256_hex)

A, B = "000202", "000505"
DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"   # DevAddr 0A000001, FPort 1
DATA_APP_E = "40" "0100000e" "00" "0100" "01" "aabb" "01020304"   # DevAddr 0E000001: burst2's
WRITERS, PER_WRITER = 4, 40


def ok_answer(req):
    return answer(req, "Success", DevEUI="0102030405060708", Lifetime=0)


def burst_net(i):
    return "%06X" % (0x100000 + i)


class RegistryWrites(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = Member("netA", A, "key-A-0123456789")
        cls.b = Member("netB", B, "key-B-0123456789", answer_fn=ok_answer)
        table = merge(member_records(cls.a), member_records(cls.b, endpoint=False),
                      {"networks": [{"net_id": burst_net(2), "name": "burst2"}],
                       "devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B},
                                          {"prefix": "0E000000/7", "net_id": burst_net(2),
                                           "outside_net_id": True}],
                       "policies": [{"forwarder_net_id": A, "uplink": {"application_data": True}}]})
        cls.hub = Hub(table, config={"admin": admin_config()})
        for m in (cls.a, cls.b):
            m.hub = cls.hub
        cls.api = AdminClient(cls.hub)
        cls.op = cls.api.token(cls.api.operator_key())

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()
        for m in (cls.a, cls.b):
            m.stop()

    def relay_code(self, sender, key, home=B, phy=DATA_APP_B):
        st, ans, _ = self.hub.post(pr_start_req(sender, home, phy), key)
        return st, (ans or {}).get("Result", {}).get("ResultCode")

    def test_refused_write_is_not_stored(self):
        # a second member claiming netA's NetID: the registry refuses it (422 naming both), and
        # nothing was stored (the registry is checked before the record is written)
        st, body, _ = self.api.call("POST", "/members", {"id": "thief", "net_ids": [A]}, self.op)
        self.assertEqual(st, 422, body)
        self.assertIn("thief", body["error"]["message"])
        st, _, _ = self.api.call("GET", "/members/thief", token=self.op)
        self.assertEqual(st, 404)
        # a refused replacement keeps the stored record as it was
        st, body, _ = self.api.call("POST", "/members", {"id": "m-ok", "net_ids": ["0A0B0C"]},
                                    self.op)
        self.assertEqual(st, 201, body)
        st, body, _ = self.api.call("PUT", "/members/m-ok", {"id": "m-ok", "net_ids": [A]},
                                    self.op)
        self.assertEqual(st, 422, body)
        st, body, _ = self.api.call("GET", "/members/m-ok", token=self.op)
        self.assertEqual((st, [n.upper() for n in body["net_ids"]]), (200, ["0A0B0C"]))
        st, _, _ = self.api.call("DELETE", "/members/m-ok", token=self.op)
        self.assertEqual(st, 204)
        st, _, _ = self.api.call("GET", "/members/m-ok", token=self.op)
        self.assertEqual(st, 404)

    def test_burst_of_member_writes_with_healthz(self):
        # before: the relay does not know the burst's keys, nor burst2's endpoint
        self.assertEqual(self.relay_code(burst_net(0), "burst-key-0")[0], 401)
        self.assertNotEqual(self.relay_code(A, self.a.key, burst_net(2), DATA_APP_E)[1], "Success")
        self.b.assert_nothing(0.1)
        health, errors, stop = [], [], threading.Event()

        def probe():
            while not stop.is_set():
                c = http.client.HTTPConnection("127.0.0.1", self.hub.admin_port, timeout=10)
                try:
                    c.request("GET", "/healthz")
                    r = c.getresponse()
                    health.append((r.status, r.read()))
                except OSError as e:
                    errors.append("healthz: %r" % e)
                finally:
                    c.close()

        def writer(w):
            c = http.client.HTTPConnection("127.0.0.1", self.hub.admin_port, timeout=30)
            h = {"Authorization": "Bearer " + self.op, "Content-Type": "application/json"}
            try:
                for k in range(PER_WRITER):
                    i = w * PER_WRITER + k
                    rec = {"id": "burst%d" % i, "net_ids": [burst_net(i)],
                           "api_key_hashes": [sha256_hex("burst-key-%d" % i)]}
                    c.request("POST", "/api/v1/members", json.dumps(rec), h)
                    r = c.getresponse()
                    data = r.read()
                    if r.status != 201:
                        errors.append("burst%d: %d %s" % (i, r.status, data[:200]))
                    # every other member also registers an endpoint (two kinds interleaved)
                    if i % 2 == 0:
                        ep = {"id": "burst%d" % i, "net_id": burst_net(i), "url": self.b.url}
                        c.request("POST", "/api/v1/endpoints", json.dumps(ep), h)
                        r = c.getresponse()
                        data = r.read()
                        if r.status != 201:
                            errors.append("endpoint burst%d: %d %s" % (i, r.status, data[:200]))
            finally:
                c.close()

        p = threading.Thread(target=probe)
        p.start()
        ws = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for t in ws:
            t.start()
        for t in ws:
            t.join()
        stop.set()
        p.join()
        self.assertEqual(errors, [])
        self.assertTrue(health, "no /healthz answer during the burst")
        self.assertEqual({st for st, _ in health}, {200})
        # every member written is known to the relay (its key authenticates, its SenderID is its
        # own), and an endpoint written in the burst is where the relay sends a home's traffic
        n = WRITERS * PER_WRITER
        for i in (0, 1, n // 2, n - 2, n - 1):
            st, code = self.relay_code(burst_net(i), "burst-key-%d" % i)
            self.assertEqual(st, 200, "burst%d not in the registry" % i)
            self.assertNotEqual(code, "UnknownSender")
        self.assertEqual(self.relay_code(A, self.a.key, burst_net(2), DATA_APP_E),
                         (200, "Success"))
        self.assertEqual(self.b.get()["PHYPayload"].lower(), DATA_APP_E)
        self.assertEqual(self.hub.metric("roamhub_members"), n + 2)
        self.assertEqual(self.hub.metric("roamhub_endpoints"), n // 2 + 1)
        # deletes through the same path: gone for the relay at once
        for i in (0, n - 1):
            st, _, _ = self.api.call("DELETE", "/members/burst%d" % i, token=self.op)
            self.assertEqual(st, 204)
            self.assertEqual(self.relay_code(burst_net(i), "burst-key-%d" % i)[0], 401)
        self.assertEqual(self.hub.metric("roamhub_members"), n)


if __name__ == "__main__":
    unittest.main()
