"""The admin API drives the data plane of the real roamhubd: a routing policy set through the API
changes what the relay forwards on the very next message, and an endpoint created through the
API (by the member itself) is used by the relay at once."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (AdminClient, Hub, Member, admin_config, answer, member_records,  # noqa: E402
                             merge, pr_start_req)

A, B, C = "000202", "000505", "000707"
DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"   # DevAddr 0A000001, FPort 1
DATA_MAC_B = "40" "0100000a" "00" "0200" "01020304"                # FOpts only: MAC data
DATA_APP_C = "40" "0100000e" "00" "0100" "01" "aabb" "01020304"   # DevAddr 0E000001


def ok_answer(req):
    return answer(req, "Success", DevEUI="0102030405060708", Lifetime=0)


class AdminDrivesRelay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = Member("netA", A, "key-A-0123456789")
        cls.b = Member("netB", B, "key-B-0123456789", answer_fn=ok_answer)
        cls.cm = Member("netC", C, "key-C-0123456789", answer_fn=ok_answer)
        table = merge(member_records(cls.a), member_records(cls.b),
                      member_records(cls.cm, endpoint=False),
                      {"devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B},
                                          {"prefix": "0E000000/7", "net_id": C}]})
        cls.hub = Hub(table, config={"admin": admin_config()})
        for m in (cls.a, cls.b, cls.cm):
            m.hub = cls.hub
        cls.api = AdminClient(cls.hub)
        cls.op = cls.api.token(cls.api.operator_key())
        ka, _ = cls.api.create_key(cls.op, net_id=A, rights=["RIGHT_READ_ROUTING_POLICY",
                                                             "RIGHT_WRITE_ROUTING_POLICY"])
        kc, _ = cls.api.create_key(cls.op, net_id=C, rights=["RIGHT_READ_NETWORK",
                                                             "RIGHT_WRITE_NETWORK"])
        cls.tok_a, cls.tok_c = cls.api.token(ka), cls.api.token(kc)

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()
        for m in (cls.a, cls.b, cls.cm):
            m.stop()

    def send(self, phy, home):
        st, ans, _ = self.hub.post(pr_start_req(A, home, phy), self.a.key)
        self.assertEqual(st, 200)
        return ans["Result"]["ResultCode"]

    def set_policy(self, home, up, down=None):
        st, body, _ = self.api.call("PUT", "/policies/%s/%s" % (A, home),
                                    {"uplink": up, "downlink": down or {}}, self.tok_a)
        self.assertIn(st, (200, 201), body)

    def test_policy_applies_to_next_message(self):
        self.assertEqual(self.send(DATA_APP_B, B), "NoRoamingAgreement")
        self.b.assert_nothing(0.1)
        # the forwarder (member A) allows application data to B: the next message flows
        self.set_policy(B, {"application_data": True})
        self.assertEqual(self.send(DATA_APP_B, B), "Success")
        self.assertEqual(self.b.get()["PHYPayload"].lower(), DATA_APP_B)
        # MAC-only data is still refused: the class flags are what the API set
        self.assertEqual(self.send(DATA_MAC_B, B), "NoRoamingAgreement")
        self.b.assert_nothing(0.1)
        # flip: MAC data on, application data off — again effective on the next message
        self.set_policy(B, {"mac_data": True})
        self.assertEqual(self.send(DATA_MAC_B, B), "Success")
        self.b.get()
        self.assertEqual(self.send(DATA_APP_B, B), "NoRoamingAgreement")
        # the effective policy as the home network sees it
        st, body, _ = self.api.call("GET", "/policies/effective?forwarder_net_id=%s&home_net_id=%s"
                                    % (A, B), token=self.op)
        self.assertEqual(st, 200)
        self.assertTrue(body["uplink"]["mac_data"])
        self.assertFalse(body["uplink"]["application_data"])
        # deleting the policy stops everything again
        st, _, _ = self.api.call("DELETE", "/policies/%s/%s" % (A, B), token=self.tok_a)
        self.assertEqual(st, 204)
        self.assertEqual(self.send(DATA_MAC_B, B), "NoRoamingAgreement")

    def test_endpoint_created_through_api_is_used_at_once(self):
        self.set_policy(C, {"application_data": True})
        self.assertNotEqual(self.send(DATA_APP_C, C), "Success")  # C has no endpoint yet
        self.cm.assert_nothing(0.1)
        # member C registers its own endpoint; a bad one is refused with the field named
        st, body, _ = self.api.call("POST", "/endpoints", {"id": "netC", "net_id": C,
                                                           "url": "ftp://x/"}, self.tok_c)
        self.assertEqual(st, 422)
        self.assertIn("url", body["error"]["message"])
        st, body, _ = self.api.call("POST", "/endpoints", {"id": "netC", "net_id": C,
                                                           "url": self.cm.url, "timeout_ms": 1500},
                                    self.tok_c)
        self.assertEqual(st, 201, body)
        self.assertEqual(self.send(DATA_APP_C, C), "Success")
        self.assertEqual(self.cm.get()["PHYPayload"].lower(), DATA_APP_C)
        # and removing it takes effect at once too
        st, _, _ = self.api.call("DELETE", "/endpoints/netC", token=self.tok_c)
        self.assertEqual(st, 204)
        self.assertNotEqual(self.send(DATA_APP_C, C), "Success")
        self.cm.assert_nothing(0.1)


if __name__ == "__main__":
    unittest.main()
