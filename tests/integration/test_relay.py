"""Integration tests of roamhubd's TS002 relay: the real daemon on 127.0.0.1 with scripted member
networks (sync, async, hung), checking routing, policy, fidelity, security and timing."""
import copy
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (ALL_DOWN, ALL_UP, Hub, Member, answer, member_records, merge,  # noqa: E402
                             next_txid, pr_start_req)

A, B, C, H = "000202", "000505", "000707", "000909"   # NetIDs: forwarder, homes, hung home
# DevAddr prefixes: 000505 -> 0A000000/7, 000707 -> 0E000000/7, 000909 -> 12000000/7
DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"   # DevAddr 0A000001, FPort 1
DATA_MAC_B = "40" "0100000a" "00" "0200" "01020304"                # no FPort: MAC only
DATA_APP_H = "40" "01000012" "00" "0100" "01" "aabb" "01020304"   # DevAddr 12000001
DATA_UNKNOWN = "40" "01000016" "00" "0100" "01" "aa" "01020304"    # DevAddr 16000001: no block
JOIN_EUI_C = "70b3d57ed0000001"
JOIN_EUI_JS = "70b3d57ed000aaaa"
JOIN_REQ_C = "00" + bytes.fromhex(JOIN_EUI_C)[::-1].hex() + "0807060504030201" + "0300" + "09b97b32"
DOWN_APP = "60" "0100000a" "00" "0500" "0a" "54972baa" "8b983cd1"
DOWN_MAC = "60" "0100000a" "00" "0600" "8b983cd1"
JOIN_ACCEPT = "20" + "2023cf335489aae3183c0be0baa8dee5"


def policy(fwd, home=None, up=None, down=None):
    p = {"forwarder_net_id": fwd, "uplink": dict(up if up is not None else ALL_UP),
         "downlink": dict(down if down is not None else ALL_DOWN)}
    if home:
        p["home_net_id"] = home
    return p


def dl_xmit(sender, receiver, phy):
    return {"ProtocolVersion": "1.0", "SenderID": sender, "ReceiverID": receiver,
            "TransactionID": next_txid(), "MessageType": "XmitDataReq", "PHYPayload": phy,
            "DLMetaData": {"DevEUI": "0807060504030201", "DLFreq1": 868.1, "DLFreq2": 869.525,
                           "RXDelay1": 1, "ClassMode": "A", "DataRate1": 5, "DataRate2": 0,
                           "FNSULToken": "c0ffee", "GWInfo": [{"ULToken": "0a0b0c0d"}]}}


class RelayTest(unittest.TestCase):
    """One hub with A (sync forwarder), B (sync home), C (async home), H (hung home), X (async
    forwarder). Subclasses in test_peers.py run the same tests with the forwarders and home
    networks behaving as real products (HOME_BEHAVIOUR, FWD_BEHAVIOUR: roamhub_harness.Member)."""

    HOME_BEHAVIOUR = None
    FWD_BEHAVIOUR = None

    @classmethod
    def setUpClass(cls):
        cls.a = Member("netA", A, "key-A-0123456789", mode="sync", behaviour=cls.FWD_BEHAVIOUR)
        cls.b = Member("netB", B, "key-B-0123456789", mode="sync", answer_fn=cls.answer_b,
                       behaviour=cls.HOME_BEHAVIOUR)
        cls.c = Member("netC", C, "key-C-0123456789", mode="async", behaviour=cls.HOME_BEHAVIOUR)
        cls.h = Member("netH", H, "key-H-0123456789", mode="hang")
        cls.x = Member("netX", "000404", "key-X-0123456789", mode="async",
                       behaviour=cls.FWD_BEHAVIOUR)
        # a Join Server (sync), reached through a join route naming it; it answers as its JoinEUI
        cls.js = Member("js1", JOIN_EUI_JS, "key-JS-0123456789", mode="sync",
                        answer_fn=lambda req: answer(req, "Success", HNetID=C))
        table = merge(
            member_records(cls.a), member_records(cls.b), member_records(cls.c),
            member_records(cls.h, timeout_ms=800), member_records(cls.x),
            {"devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B},
                                {"prefix": "0E000000/7", "net_id": C},
                                {"prefix": "12000000/7", "net_id": H}],
             "join_routes": [{"join_eui": JOIN_EUI_C + "/64", "home_net_id": C},
                             {"join_eui": JOIN_EUI_JS + "/64", "join_server_id": "js1"}],
             "endpoints": [{"id": "js1", "join_eui": JOIN_EUI_JS, "url": cls.js.url,
                            "protocol_version": "PROTOCOL_VERSION_1_0", "timeout_ms": 1500}],
             "policies": [policy(A, B), policy(A, C), policy(A, H), policy(B, A), policy(C, A),
                          policy("000404", B)]})
        cls.table = table
        cls.hub = Hub(table)
        for m in (cls.a, cls.b, cls.c, cls.h, cls.x, cls.js):
            m.hub = cls.hub

    @staticmethod
    def answer_b(req):
        if req["MessageType"] == "PRStartReq":
            return answer(req, "Success", DevEUI="0102030405060708", FCntUp=1, Lifetime=0)
        return answer(req, "Success")

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()
        for m in (cls.a, cls.b, cls.c, cls.h, cls.x, cls.js):
            m.stop()

    def drain(self):
        for m in (self.a, self.b, self.c, self.h, self.x, self.js):
            while not m.received.empty():
                m.received.get_nowait()

    def setUp(self):
        self.drain()

    def tearDown(self):
        for m in (self.a, self.b, self.c, self.h, self.x, self.js):
            self.assertEqual(m.violations, [], "%s was sent what it would reject" % m.name)

    def set_policies(self, *policies):
        """Replaces A's policies through roamdb while the hub runs (next message sees them)."""
        doc = {"member_net_ids": [A], "policies": list(policies),
               "devaddr_blocks": [], "join_routes": []}
        r = self.hub.roamdb("import", "-", stdin=json.dumps(doc))
        self.assertEqual(r.returncode, 0, r.stderr)

    def restore_policies(self):
        self.set_policies(policy(A, B), policy(A, C), policy(A, H))

    # ------------------------------------------------------------------ uplinks

    def test_uplink_relayed_with_every_field(self):
        req = pr_start_req(A, B, DATA_APP_B)
        req["DedupWindowSize"] = 200                     # Helium's non-standard field
        req["VSExtension"] = {"VendorID": "0a0b0c", "Object": {"opaque": [1, 2, {"x": "y"}]}}
        req["SenderToken"] = "beef"
        req["ULMetaData"]["FNSULToken"] = "0xC0FFEE"
        req["ULMetaData"]["GWInfo"][0]["Custom"] = {"k": 1}
        st, ans, _ = self.hub.post(req, self.a.key)
        self.assertEqual(st, 200)
        self.assertEqual(ans["MessageType"], "PRStartAns")
        self.assertEqual(ans["Result"]["ResultCode"], "Success")
        self.assertEqual(ans["TransactionID"], req["TransactionID"])
        self.assertEqual(ans["DevEUI"].lower(), "0102030405060708")
        got = self.b.get()
        self.assertEqual(got["_authorization"], None)  # B's endpoint has no Authorization set
        for k in ("ProtocolVersion", "SenderID", "ReceiverID", "MessageType",
                  "DedupWindowSize", "VSExtension", "SenderToken"):
            self.assertEqual(got[k], req[k], k)
        self.assertIsInstance(got["TransactionID"], int)  # the hub's own ID on this hop
        self.assertEqual(got["PHYPayload"].lower(), DATA_APP_B)
        ul, sent = got["ULMetaData"], req["ULMetaData"]
        self.assertEqual(ul["FNSULToken"], "0xC0FFEE")    # opaque token passed exactly
        for k in ("DataRate", "ULFreq", "RFRegion", "GWCnt"):
            self.assertEqual(ul[k], sent[k], k)
        g, sg = ul["GWInfo"][0], sent["GWInfo"][0]
        for k in ("ID", "RSSI", "SNR", "Lat", "Lon", "FineRecvTime", "ULToken", "DLAllowed", "Custom"):
            self.assertEqual(g[k], sg[k], k)

    def test_async_home_network(self):
        req = pr_start_req(A, C, "40" "0100000e" "00" "0100" "01" "aa" "01020304")
        st, ans, _ = self.hub.post(req, self.a.key)
        self.assertEqual(st, 200)
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
        self.assertEqual(ans["SenderID"], C)
        self.assertEqual(ans["TransactionID"], req["TransactionID"])  # mapped back from the hub's
        self.assertIsInstance(self.c.get()["TransactionID"], int)

    def test_async_forwarder_gets_answer_posted(self):
        req = pr_start_req("000404", B, DATA_APP_B)
        st, ans, _ = self.hub.post(req, self.x.key)
        self.assertEqual(st, 200)
        self.assertIsNone(ans)  # async sender: empty acknowledgement
        self.assertEqual(self.b.get()["MessageType"], "PRStartReq")
        posted = self.x.get()
        self.assertEqual(posted["MessageType"], "PRStartAns")
        self.assertEqual(posted["TransactionID"], req["TransactionID"])
        self.assertEqual(posted["Result"]["ResultCode"], "Success")

    def test_join_request_routed_by_join_eui(self):
        req = pr_start_req(A, B, JOIN_REQ_C)   # ReceiverID says B; the join route says C
        st, ans, _ = self.hub.post(req, self.a.key)
        self.assertEqual(st, 200)
        self.assertEqual(ans["Result"]["ResultCode"], "Success")
        self.assertEqual(self.c.get()["PHYPayload"].lower(), JOIN_REQ_C)
        self.b.assert_nothing()

    def test_unknown_devaddr(self):
        st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_UNKNOWN), self.a.key)
        self.assertEqual(ans["Result"]["ResultCode"], "UnknownDevAddr")
        self.assertIn("16000001", ans["Result"]["Description"])

    def test_never_routed_back_to_sender(self):
        st, ans, _ = self.hub.post(pr_start_req(B, A, DATA_APP_B), self.b.key)
        self.assertEqual(ans["Result"]["ResultCode"], "UnknownDevAddr")
        self.assertIn("not routed back", ans["Result"]["Description"])
        self.b.assert_nothing()

    # ------------------------------------------------------------------ downlinks

    def test_downlink_returned_to_forwarder(self):
        req = dl_xmit(B, A, DOWN_APP)
        st, ans, _ = self.hub.post(req, self.b.key)
        self.assertEqual(st, 200)
        self.assertEqual(ans["MessageType"], "XmitDataAns")
        self.assertEqual(ans["Result"]["ResultCode"], "Success")
        got = self.a.get()
        self.assertEqual(got["MessageType"], "XmitDataReq")
        self.assertEqual(got["DLMetaData"]["FNSULToken"], "c0ffee")
        self.assertEqual(got["DLMetaData"]["GWInfo"][0]["ULToken"], "0a0b0c0d")

    # ------------------------------------------------------------------ other messages

    def test_home_ns_req_answered_from_join_routes(self):
        req = {"ProtocolVersion": "1.0", "SenderID": A, "ReceiverID": JOIN_EUI_C,
               "TransactionID": next_txid(), "MessageType": "HomeNSReq", "DevEUI": "0807060504030201"}
        st, ans, _ = self.hub.post(req, self.a.key)
        self.assertEqual(st, 200)
        self.assertEqual(ans["MessageType"], "HomeNSAns")
        self.assertEqual(ans["Result"]["ResultCode"], "Success")
        self.assertEqual(ans["HNetID"].lower(), C)
        self.assertEqual(ans["SenderID"].lower(), JOIN_EUI_C)
        self.c.assert_nothing()
        req["ReceiverID"] = "70b3d57ed0009999"
        req["TransactionID"] = next_txid()
        st, ans, _ = self.hub.post(req, self.a.key)
        self.assertEqual(ans["Result"]["ResultCode"], "UnknownDevEUI")

    def test_home_ns_req_relayed_to_join_server(self):
        req = {"ProtocolVersion": "1.0", "SenderID": A, "ReceiverID": JOIN_EUI_JS,
               "TransactionID": next_txid(), "MessageType": "HomeNSReq", "DevEUI": "0807060504030299"}
        st, ans, _ = self.hub.post(req, self.a.key)
        self.assertEqual(ans["MessageType"], "HomeNSAns")
        self.assertEqual(ans["Result"]["ResultCode"], "Success")
        self.assertEqual(ans["HNetID"].lower(), C)
        got = self.js.get()
        self.assertEqual((got["MessageType"], got["DevEUI"]), ("HomeNSReq", "0807060504030299"))

    def test_pr_stop_and_profile_relayed_by_receiver_id(self):
        for mt in ("PRStopReq", "ProfileReq"):
            req = {"ProtocolVersion": "1.0", "SenderID": B, "ReceiverID": A, "TransactionID": next_txid(),
                   "MessageType": mt, "DevEUI": "0102030405060708", "Lifetime": 0}
            st, ans, _ = self.hub.post(req, self.b.key)
            self.assertEqual(ans["MessageType"], mt[:-3] + "Ans")
            self.assertEqual(ans["Result"]["ResultCode"], "Success")
            got = self.a.get()
            self.assertEqual(got["MessageType"], mt)

    def test_notifications_relayed_and_acknowledged(self):
        for mt in ("PRStartNotif", "ErrorNotif"):
            req = {"ProtocolVersion": "1.1", "SenderID": A, "ReceiverID": B, "TransactionID": next_txid(),
                   "MessageType": mt, "Result": {"ResultCode": "Success"}}
            st, ans, _ = self.hub.post(req, self.a.key)
            self.assertEqual(st, 200)
            self.assertIsNone(ans)
            got = self.b.get()
            # a notification has no answer: the hub is no requester, its TransactionID passes
            self.assertEqual((got["MessageType"], got["TransactionID"]), (mt, req["TransactionID"]))

    def test_unknown_receiver(self):
        req = {"ProtocolVersion": "1.0", "SenderID": A, "ReceiverID": "000999", "TransactionID": next_txid(),
               "MessageType": "PRStopReq", "DevEUI": "0102030405060708"}
        st, ans, _ = self.hub.post(req, self.a.key)
        self.assertIn(ans["Result"]["ResultCode"], ("UnkownReceiver", "UnknownReceiver"))
        self.assertIn("000999", ans["Result"]["Description"])

    # ------------------------------------------------------------------ policy

    def test_each_uplink_flag_denies_exactly_its_class(self):
        cases = [("join_request", JOIN_REQ_C, C), ("mac_data", DATA_MAC_B, B),
                 ("application_data", DATA_APP_B, B)]
        try:
            for flag, phy, home in cases:
                up = dict(ALL_UP, **{flag: False})
                self.set_policies(policy(A, B, up=up), policy(A, C, up=up))
                for other_flag, other_phy, other_home in cases:
                    self.drain()
                    st, ans, _ = self.hub.post(pr_start_req(A, other_home, other_phy), self.a.key)
                    code = ans["Result"]["ResultCode"]
                    if other_flag == flag:
                        self.assertEqual(code, "NoRoamingAgreement", (flag, ans))
                        self.assertIn(flag, ans["Result"]["Description"])
                        (self.b if other_home == B else self.c).assert_nothing()
                    else:
                        self.assertEqual(code, "Success", (flag, other_flag, ans))
        finally:
            self.restore_policies()

    def test_signal_quality_and_localization_stripping(self):
        try:
            self.set_policies(policy(A, B, up=dict(ALL_UP, signal_quality=False)))
            self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
            g = self.b.get()["ULMetaData"]["GWInfo"][0]
            self.assertNotIn("RSSI", g)
            self.assertNotIn("SNR", g)
            for k in ("Lat", "Lon", "FineRecvTime", "ULToken", "ID"):
                self.assertIn(k, g)
            self.set_policies(policy(A, B, up=dict(ALL_UP, localization=False)))
            self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
            g = self.b.get()["ULMetaData"]["GWInfo"][0]
            for k in ("Lat", "Lon", "FineRecvTime"):
                self.assertNotIn(k, g)
            for k in ("RSSI", "SNR", "ULToken", "ID"):
                self.assertIn(k, g)
        finally:
            self.restore_policies()

    def test_each_downlink_flag_denies_exactly_its_class(self):
        cases = [("mac_data", DOWN_MAC), ("application_data", DOWN_APP)]
        try:
            for flag, phy in cases:
                self.set_policies(policy(A, B, down=dict(ALL_DOWN, **{flag: False})),
                                  policy(A, C), policy(A, H))
                for other_flag, other_phy in cases:
                    self.drain()
                    st, ans, _ = self.hub.post(dl_xmit(B, A, other_phy), self.b.key)
                    code = ans["Result"]["ResultCode"]
                    if other_flag == flag:
                        self.assertEqual(code, "NoRoamingAgreement", ans)
                        self.assertIn(flag, ans["Result"]["Description"])
                        self.a.assert_nothing()
                    else:
                        self.assertEqual(code, "Success", ans)
        finally:
            self.restore_policies()

    def test_join_accept_in_answer_checked_against_downlink_policy(self):
        def join_answer(req):
            return answer(req, "Success", PHYPayload=JOIN_ACCEPT, DevAddr="0a000099",
                          DLMetaData={"DLFreq1": 868.1, "DataRate1": 5, "RXDelay1": 5,
                                      "ClassMode": "A", "GWInfo": [{"ULToken": "0a0b0c0d"}]})
        old = self.b.answer_fn
        self.b.answer_fn = join_answer
        try:
            st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
            self.assertEqual(ans["Result"]["ResultCode"], "Success")
            self.assertEqual(ans["PHYPayload"].lower(), JOIN_ACCEPT)
            self.set_policies(policy(A, B, down=dict(ALL_DOWN, join_accept=False)))
            st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
            self.assertEqual(ans["Result"]["ResultCode"], "NoRoamingAgreement")
            self.assertIn("join_accept", ans["Result"]["Description"])
            self.assertNotIn("PHYPayload", ans)
        finally:
            self.b.answer_fn = old
            self.restore_policies()

    def test_policy_change_applies_to_next_message(self):
        try:
            st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
            self.assertEqual(ans["Result"]["ResultCode"], "Success")
            self.set_policies()  # A has no policy at all: nothing flows
            st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
            self.assertEqual(ans["Result"]["ResultCode"], "NoRoamingAgreement")
            self.assertIn("no routing policy", ans["Result"]["Description"])
        finally:
            self.restore_policies()
        st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        self.assertEqual(ans["Result"]["ResultCode"], "Success")

    # ------------------------------------------------------------------ security

    def test_sender_id_spoofing_refused(self):
        before = self.hub.metric('roamhub_events_total{event="sender_refused"}')
        req = pr_start_req(B, C, "40" "0100000e" "00" "0100" "01" "aa" "01020304")
        st, ans, _ = self.hub.post(req, self.a.key)   # A's key, claiming to be B
        self.assertEqual(st, 200)
        self.assertEqual(ans["Result"]["ResultCode"], "UnknownSender")
        self.c.assert_nothing()
        self.b.assert_nothing()
        self.assertEqual(self.hub.metric('roamhub_events_total{event="sender_refused"}'), before + 1)
        self.assertIn("sender refused", self.hub.logs())

    def test_unauthenticated_refused(self):
        st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B))
        self.assertEqual(st, 401)
        st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), "not-a-key")
        self.assertEqual(st, 401)
        self.b.assert_nothing()

    def test_async_answer_with_foreign_transaction_id_ignored(self):
        # C (async) will answer after 20 ms; B injects an answer for the same TransactionID first.
        req = pr_start_req(A, C, "40" "0100000e" "00" "0100" "01" "aa" "01020304")
        import threading

        def inject():
            time.sleep(0.005)
            forged = {"ProtocolVersion": "1.0", "SenderID": B, "ReceiverID": A,
                      "TransactionID": req["TransactionID"], "MessageType": "PRStartAns",
                      "Result": {"ResultCode": "DevRoamingDisallowed"}}
            self.hub.post(forged, self.b.key)
        before = self.hub.metric('roamhub_events_total{event="unmatched_answer"}')
        th = threading.Thread(target=inject)
        th.start()
        st, ans, _ = self.hub.post(req, self.a.key)
        th.join()
        self.assertEqual(ans["Result"]["ResultCode"], "Success")
        self.assertEqual(ans["SenderID"], C)
        self.assertGreaterEqual(self.hub.metric('roamhub_events_total{event="unmatched_answer"}'),
                                before + 1)

    def test_malformed_request_answered_with_result(self):
        req = pr_start_req(A, B, DATA_APP_B)
        req["ULMetaData"]["GWInfo"][0]["RSSI"] = "loud"
        st, ans, _ = self.hub.post(req, self.a.key)
        self.assertEqual(st, 200)
        self.assertEqual(ans["Result"]["ResultCode"], "MalformedRequest")
        self.assertIn("ULMetaData.GWInfo[0].RSSI", ans["Result"]["Description"])
        st, _, _ = self.hub.post(None, self.a.key, raw=b"{not json")
        self.assertEqual(st, 400)
        st, _, _ = self.hub.post(None, self.a.key, raw=b"x" * 70000)
        self.assertEqual(st, 413)

    # ------------------------------------------------------------------ faults

    def test_hung_home_network_does_not_delay_others(self):
        import threading
        results = {}

        def hung():
            st, ans, el = self.hub.post(pr_start_req(A, H, DATA_APP_H), self.a.key, timeout=10)
            results["hung"] = (ans, el)
        th = threading.Thread(target=hung)
        th.start()
        time.sleep(0.1)
        lat = []
        for _ in range(20):
            st, ans, el = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
            self.assertEqual(ans["Result"]["ResultCode"], "Success")
            lat.append(el)
        th.join()
        ans, el = results["hung"]
        self.assertEqual(ans["Result"]["ResultCode"], "Other")
        self.assertLess(el, 0.8 + 1.0)      # H's endpoint timeout is 800 ms
        self.assertGreater(el, 0.7)
        lat.sort()
        self.assertLess(lat[len(lat) // 2], 0.1)  # B's traffic kept flowing meanwhile


if __name__ == "__main__":
    unittest.main()
