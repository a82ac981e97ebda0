"""Peers as they really behave (issue #11): ChirpStack v4, Helium's packet router and The Things
Stack's Join Server through the hub, one test per item of the issue, with the harness's member
behaviours (roamhub_harness.Member(behaviour=...)). A chirpstack member records every message it
would reject (its closed enums, integer fields); every test ends by checking none was sent."""
import datetime
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (ALL_DOWN, ALL_UP, Hub, Member, answer, helium_spell,  # noqa: E402
                             member_records, merge, next_txid, pr_start_req)
import test_relay  # noqa: E402
from test_relay import DATA_APP_B, JOIN_REQ_C, JOIN_EUI_C, dl_xmit, policy  # noqa: E402
from test_relay_tls import fingerprint, make_ca, make_cert  # noqa: E402

A, B, C, X, HE = "000202", "000505", "000707", "000404", "600013"
CS_JS_EUI = "70b3d57ed0000b00"     # Join Server endpoint's JoinEUI (route 70b3d57ed0000b00/56)
DEV_JOIN_EUI = "70b3d57ed0000b42"  # a device JoinEUI inside that route, not the endpoint's own
DATA_APP_C = "40" "0100000e" "00" "0100" "01" "aa" "01020304"   # DevAddr 0E000001 -> C


def join_req(join_eui_hex):
    return "00" + bytes.fromhex(join_eui_hex)[::-1].hex() + "0807060504030201" + "0300" + "09b97b32"


class PeersTest(unittest.TestCase):
    """A: a sync test forwarder; X: an async ChirpStack forwarder; B: a sync ChirpStack home
    network; C: an async ChirpStack home network; HE: a Helium forwarder (sync route); JS: an
    async Join Server answering as the device's JoinEUI."""

    @classmethod
    def setUpClass(cls):
        cls.answers_b = {}
        cls.a = Member("netA", A, "key-A-0123456789", mode="sync")
        cls.x = Member("netX", X, "key-X-0123456789", mode="async", behaviour="chirpstack")
        cls.b = Member("netB", B, "key-B-0123456789", mode="sync", behaviour="chirpstack",
                       answer_fn=cls.answer_b)
        cls.c = Member("netC", C, "key-C-0123456789", mode="async", behaviour="chirpstack",
                       answer_fn=cls.answer_c)
        cls.he = Member("helium", HE, "key-HE-0123456789", mode="sync", behaviour="helium",
                        ack_status=200)
        cls.js = Member("js-cs", CS_JS_EUI, "key-JS-0123456789", mode="async", own_sender_id=False,
                        answer_fn=lambda req: answer(req, "Success", HNetID=C))
        cls.members = (cls.a, cls.x, cls.b, cls.c, cls.he, cls.js)
        js_recs = {"members": [{"id": "js-cs", "net_ids": ["000b0b"],
                                "api_key_hashes": [member_records(cls.js)["members"][0]["api_key_hashes"][0]]}],
                   "networks": [{"net_id": "000b0b", "name": "js-cs", "listed": True}],
                   "endpoints": [{"id": "js-cs", "net_id": "000b0b", "join_eui": CS_JS_EUI,
                                  "url": cls.js.url, "async_answers": True, "timeout_ms": 1500,
                                  "protocol_version": "PROTOCOL_VERSION_1_0"}]}
        table = merge(
            member_records(cls.a), member_records(cls.x), member_records(cls.b),
            member_records(cls.c), member_records(cls.he), js_recs,
            {"devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B},
                                {"prefix": "0E000000/7", "net_id": C}],
             "join_routes": [{"join_eui": JOIN_EUI_C + "/64", "home_net_id": C},
                             {"join_eui": CS_JS_EUI + "/56", "join_server_id": "js-cs"}],
             "policies": [policy(A, B), policy(A, C), policy(X, B), policy(X, C), policy(HE, B),
                          policy(B, A), policy(B, HE), policy(C, A), policy(B, X)]})
        cls.hub = Hub(table, config={"log_level": "debug"})
        for m in cls.members:
            m.hub = cls.hub

    @classmethod
    def answer_b(cls, req):
        if req["MessageType"] == "PRStartReq":
            code = cls.answers_b.get("code", "Success")
            return answer(req, code, cls.answers_b.get("desc"), DevEUI="0102030405060708",
                          FCntUp=1)
        return answer(req, "Success")

    @classmethod
    def answer_c(cls, req):
        return answer(req, "Success", DevEUI="0102030405060708", FCntUp=1)

    @classmethod
    def tearDownClass(cls):
        rc = cls.hub.stop()
        logs = cls.hub.logs()
        cls.hub.cleanup()
        for m in cls.members:
            m.stop()
        if rc != 0:
            raise AssertionError("roamhubd exited %s:\n%s" % (rc, logs[-3000:]))

    def setUp(self):
        self.answers_b.clear()
        for m in self.members:
            while not m.received.empty():
                m.received.get_nowait()

    def tearDown(self):
        for m in self.members:
            self.assertEqual(m.violations, [], "%s was sent what it would reject" % m.name)

    # ---------------------------------------------------------------- item 1
    def test_async_answer_with_senderid_it_was_sent_to(self):
        """A Join Server answers as the device's JoinEUI (the ReceiverID it was sent), which is
        not its endpoint's JoinEUI: accepted because it is what the hub sent the request to."""
        req = {"ProtocolVersion": "1.0", "SenderID": A, "ReceiverID": DEV_JOIN_EUI,
               "TransactionID": next_txid(), "MessageType": "HomeNSReq", "DevEUI": "0807060504030201"}
        st, ans, _ = self.hub.post(req, self.a.key)
        self.assertEqual(st, 200)
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
        self.assertEqual(ans["HNetID"].lower(), C)
        self.assertEqual(ans["TransactionID"], req["TransactionID"])
        self.assertEqual(self.js.get()["ReceiverID"].lower(), DEV_JOIN_EUI)

    # ---------------------------------------------------------------- item 2
    def test_same_transaction_id_from_two_forwarders(self):
        txid = next_txid()
        r1 = pr_start_req(A, C, DATA_APP_C)
        r2 = pr_start_req(X, C, DATA_APP_C)
        r1["TransactionID"] = r2["TransactionID"] = txid
        st, ans, _ = self.hub.post(r1, self.a.key)
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
        self.assertEqual(ans["TransactionID"], txid)
        st, ans2, _ = self.hub.post(r2, self.x.key, path="/sns")
        self.assertEqual(st, 200)
        self.assertIsNone(ans2)
        posted = self.x.get(mtype="PRStartAns")
        self.assertEqual(posted["Result"]["ResultCode"], "Success", posted)
        self.assertEqual(posted["TransactionID"], txid)
        seen = [self.c.get()["TransactionID"], self.c.get()["TransactionID"]]
        self.assertNotEqual(seen[0], seen[1])  # the hub's own ID per hop

    def test_answer_matching_nothing_is_dropped(self):
        before = self.hub.metric('roamhub_events_total{event="unmatched_answer"')
        fake = {"ProtocolVersion": "1.0", "SenderID": C, "ReceiverID": A, "TransactionID": 0x7FFFFF,
                "MessageType": "PRStartAns", "Result": {"ResultCode": "Success"}}
        st, body, _ = self.hub.post(fake, self.c.key)
        self.assertEqual(st, 200)
        self.a.assert_nothing()
        self.assertEqual(self.hub.metric('roamhub_events_total{event="unmatched_answer"') - before, 1)

    # ---------------------------------------------------------------- item 3
    def test_helium_downlink_accepted_is_success_on_sync_route(self):
        req = dl_xmit(B, HE, "60" "0100000a" "00" "0500" "0a" "54972baa" "8b983cd1")
        st, ans, el = self.hub.post(req, self.b.key)
        self.assertEqual(st, 200)
        self.assertEqual(ans["MessageType"], "XmitDataAns")
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
        got = self.he.get()
        self.assertEqual(got["_path"], "/helium/route/1")

    def test_helium_uplink_reaches_chirpstack_in_its_spelling(self):
        """Helium's PRStartReq ("0x"+upper-case hex, DedupWindowSize, seconds-only RecvTime, its
        route path) reaches a ChirpStack home network in a form it accepts."""
        req = helium_spell(pr_start_req(HE, B, DATA_APP_B))
        req["DedupWindowSize"] = 200
        del req["ULMetaData"]["GWInfo"][0]["ULToken"]  # Helium sends none
        st, ans, _ = self.hub.post(req, self.he.key, path="/helium/route/1")
        self.assertEqual(st, 200)
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
        self.assertEqual(ans["TransactionID"], req["TransactionID"])
        got = self.b.get()
        self.assertEqual(got["SenderID"], HE)
        self.assertEqual(got["DedupWindowSize"], 200)
        self.assertEqual(got["PHYPayload"], DATA_APP_B)  # plain lower-case hex for ChirpStack

    # ---------------------------------------------------------------- item 4
    def test_chirpstack_async_peer_gets_sync_home_ns_answer(self):
        """X is async for roaming but its Join Server client is sync: HomeNSAns in the body."""
        req = {"ProtocolVersion": "1.0", "SenderID": X, "ReceiverID": JOIN_EUI_C,
               "TransactionID": next_txid(), "MessageType": "HomeNSReq", "DevEUI": "0807060504030201"}
        st, ans, _ = self.hub.post(req, self.x.key)
        self.assertEqual(st, 200)
        self.assertIsNotNone(ans, "an empty 200 is a JSON EOF for ChirpStack's sync client")
        self.assertEqual(ans["MessageType"], "HomeNSAns")
        self.assertEqual(ans["HNetID"].lower(), C)

    # ---------------------------------------------------------------- item 5
    def test_any_path_accepted(self):
        for path in ("/sns", "//sns", "/fns", "/helium/route/1", "/api/roaming"):
            req = pr_start_req(A, B, DATA_APP_B)
            st, ans, _ = self.hub.post(req, self.a.key, path=path)
            self.assertEqual(st, 200, path)
            self.assertEqual(ans["Result"]["ResultCode"], "Success", path)

    # ---------------------------------------------------------------- item 6
    def test_result_codes_mapped_for_chirpstack(self):
        for code in ("FrameReplayed", "NoAction", "MalformedMessage"):
            self.answers_b.update(code=code, desc="from a 1.1 peer")
            req = pr_start_req(X, B, DATA_APP_B)
            st, ans, _ = self.hub.post(req, self.x.key)
            self.assertIsNone(ans)
            posted = self.x.get(mtype="PRStartAns")
            self.assertIn(posted["Result"]["ResultCode"], ("Other", "MalformedRequest"))
            self.assertIn(code, posted["Result"].get("Description", ""))

    def test_regions_mapped_for_chirpstack(self):
        for region in ("AS923_1", "US902", "AS923-1"):
            req = pr_start_req(A, B, DATA_APP_B, RFRegion=region)
            req["ULMetaData"]["GWInfo"][0]["RFRegion"] = region
            st, ans, _ = self.hub.post(req, self.a.key)
            self.assertEqual(ans["Result"]["ResultCode"], "Success", (region, ans))
            got = self.b.get()
            self.assertIn(got["ULMetaData"]["RFRegion"], ("AS923", "US915"))

    # ---------------------------------------------------------------- item 7
    def test_chirpstack_500_for_unhandled_type_does_not_open_the_breaker(self):
        for _ in range(5):
            req = {"ProtocolVersion": "1.0", "SenderID": A, "ReceiverID": B,
                   "TransactionID": next_txid(), "MessageType": "ProfileReq",
                   "DevEUI": "0102030405060708"}
            st, ans, _ = self.hub.post(req, self.a.key)
            self.assertEqual(ans["Result"]["ResultCode"], "Other")
            self.assertIn("HTTP 500", ans["Result"]["Description"])
        st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
        self.assertNotIn('msg="endpoint failing, backing off" peer=netB', self.hub.logs())

    # ---------------------------------------------------------------- item 8
    def test_join_request_too_late_for_rx_window_fails_fast(self):
        late = (datetime.datetime.now(datetime.timezone.utc)
                - datetime.timedelta(seconds=5.9)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        req = pr_start_req(A, C, JOIN_REQ_C, RecvTime=late)
        st, ans, el = self.hub.post(req, self.a.key)
        self.assertEqual(ans["Result"]["ResultCode"], "Other")
        self.assertIn("receive window", ans["Result"]["Description"])
        self.assertLess(el, 1.0)
        self.c.assert_nothing()

    def test_confirmed_uplink_too_late_for_rx2_fails_fast(self):
        """A confirmed uplink (MType 100) heard 1.9 s ago cannot be acknowledged in RX2 (2 s)."""
        late = (datetime.datetime.now(datetime.timezone.utc)
                - datetime.timedelta(seconds=1.9)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        confirmed = "80" + DATA_APP_C[2:]
        st, ans, el = self.hub.post(pr_start_req(A, C, confirmed, RecvTime=late), self.a.key)
        self.assertIn("receive window", ans["Result"]["Description"])
        self.assertLess(el, 1.0)
        self.c.assert_nothing()
        # the same frame unconfirmed is relayed: no window to meet
        st, ans, el = self.hub.post(pr_start_req(A, C, DATA_APP_C, RecvTime=late), self.a.key)
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)

    # ---------------------------------------------------------------- item 10
    def test_placeholder_receiver_id_replaced(self):
        req = pr_start_req(A, "000000", JOIN_REQ_C)
        st, ans, _ = self.hub.post(req, self.a.key)
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
        got = self.c.get()
        self.assertEqual(got["ReceiverID"].lower(), C)
        self.assertEqual(ans["TransactionID"], req["TransactionID"])

    # ---------------------------------------------------------------- item 11
    def test_malformed_async_answer_fails_at_once(self):
        req = pr_start_req(A, C, DATA_APP_C)
        orig = self.c.answer_fn
        self.c.answer_fn = lambda r: answer(r, "Success", DevEUI="010203040506070")  # 15 digits
        try:
            st, ans, el = self.hub.post(req, self.a.key)
        finally:
            self.c.answer_fn = orig
        self.assertEqual(ans["Result"]["ResultCode"], "Other")
        self.assertIn("malformed", ans["Result"]["Description"])
        self.assertIn("DevEUI", ans["Result"]["Description"])
        self.assertLess(el, 1.0)  # not the 1.5 s timeout

    # ---------------------------------------------------------------- item 12
    def test_debug_line_per_relayed_message(self):
        req = pr_start_req(A, C, DATA_APP_C)
        self.hub.post(req, self.a.key)
        got = self.c.get()
        time.sleep(0.1)
        pat = (r"msg=\"relayed\" type=PRStartReq sender=netA receiver=netC txid=%d hub_txid=%d "
               r"class=\S+ outcome=forwarded result=Success latency_us=\d+"
               % (req["TransactionID"], got["TransactionID"]))
        self.assertRegex(self.hub.logs(), pat)


class TimeoutDefaultTest(unittest.TestCase):
    """Item 8: relay.request_timeout_ms is the timeout of endpoints that set none."""

    def test_request_timeout_ms_read(self):
        a = Member("netA", A, "key-A-0123456789", mode="sync")
        h = Member("netH", B, "key-H-0123456789", mode="hang")
        recs = member_records(h)
        del recs["endpoints"][0]["timeout_ms"]
        hub = Hub(merge(member_records(a), recs, {
            "devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B}],
            "policies": [policy(A, B)]}), config={"relay": {"request_timeout_ms": 400}})
        try:
            a.hub = h.hub = hub
            st, ans, el = hub.post(pr_start_req(A, B, DATA_APP_B), a.key, timeout=4.0)
            self.assertEqual(ans["Result"]["ResultCode"], "Other")
            self.assertLess(el, 2.0)
        finally:
            self.assertEqual(hub.stop(), 0)
            hub.cleanup()
            a.stop()
            h.stop()


class HeliumAsyncTest(unittest.TestCase):
    """Item 3: a Helium route whose XmitDataAns never comes still gets a deadline."""

    def test_acknowledged_downlink_has_a_deadline(self):
        b = Member("netB", B, "key-B-0123456789", mode="sync")
        he = Member("helium", HE, "key-HE-0123456789", mode="sync", behaviour="helium")
        recs = member_records(he, timeout_ms=600)
        recs["endpoints"][0]["async_answers"] = True  # flow_type async, answer never posted
        hub = Hub(merge(member_records(b), recs, {"policies": [policy(HE, B)]}))
        try:
            b.hub = he.hub = hub
            req = dl_xmit(B, HE, "60" "0100000a" "00" "0500" "0a" "54972baa" "8b983cd1")
            st, ans, el = hub.post(req, b.key, timeout=4.0)
            self.assertEqual(ans["Result"]["ResultCode"], "XmitFailed")
            self.assertLess(el, 2.0)
        finally:
            self.assertEqual(hub.stop(), 0)
            hub.cleanup()
            b.stop()
            he.stop()


class TtsJoinServerTest(unittest.TestCase):
    """Item 9: JoinReq relayed to a TTS Join Server over mTLS with Content-Type application/json;
    a PRStartReq (not a TTS interop message) is refused by it with 400."""

    def test_join_req_to_tts_over_mtls(self):
        d = tempfile.mkdtemp(prefix="roamhub-tts-")
        try:
            make_ca(d, "jsca")
            make_cert(d, "js", "jsca", san=True)
            make_ca(d, "hubca")
            make_cert(d, "hubclient", "hubca")
            b = Member("netB", B, "key-B-0123456789", mode="sync")
            js = Member("tts-js", "70B3D57ED0000C00", "key-TTS-0123456789", mode="sync",
                        behaviour="tts-js", own_sender_id=False,
                        tls=(os.path.join(d, "js.pem"), os.path.join(d, "js.key"),
                             os.path.join(d, "hubca.pem")),
                        answer_fn=lambda r: answer(r, "MICFailed", "MIC failed"))
            ep = {"id": "tts-js", "join_eui": "70b3d57ed0000c00", "url": js.url,
                  "protocol_version": "PROTOCOL_VERSION_1_0", "timeout_ms": 1500,
                  "upper_case_hex": True, "ca_file": os.path.join(d, "jsca.pem"),
                  "client_cert_file": os.path.join(d, "hubclient.pem"),
                  "client_key_file": os.path.join(d, "hubclient.key")}
            hub = Hub(merge(member_records(b), {"endpoints": [ep], "policies": [policy(B, B)],
                                                 "join_routes": [{"join_eui": "70b3d57ed0000c00/56",
                                                                  "join_server_id": "tts-js"}]}))
            try:
                b.hub = hub
                req = {"ProtocolVersion": "1.0", "SenderID": B, "ReceiverID": "70b3d57ed0000c00",
                       "TransactionID": next_txid(), "MessageType": "JoinReq", "MACVersion": "1.0.3",
                       "PHYPayload": join_req("70b3d57ed0000c00"), "DevEUI": "0807060504030201",
                       "DevAddr": "0a000001", "DLSettings": "00", "RxDelay": 1}
                st, ans, _ = hub.post(req, b.key)
                self.assertEqual(st, 200)
                self.assertEqual(ans["MessageType"], "JoinAns", ans)
                self.assertEqual(ans["Result"]["ResultCode"], "MICFailed", ans)
                got = js.get()
                self.assertEqual(got["_content_type"], "application/json")
                self.assertEqual(js.violations, [])
            finally:
                self.assertEqual(hub.stop(), 0)
                hub.cleanup()
                b.stop()
                js.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)




# The relay, policy and failure tests of test_relay.py with real products' behaviours.
class RelayChirpstackTest(test_relay.RelayTest):
    """Home networks and forwarders behave as ChirpStack v4."""
    HOME_BEHAVIOUR = "chirpstack"
    FWD_BEHAVIOUR = "chirpstack"

    def test_pr_stop_and_profile_relayed_by_receiver_id(self):
        """ChirpStack handles PRStopReq; it answers ProfileReq (not implemented) with HTTP 500,
        which the hub turns into Other for the sender."""
        for mt, code in (("PRStopReq", "Success"), ("ProfileReq", "Other")):
            req = {"ProtocolVersion": "1.0", "SenderID": B, "ReceiverID": A,
                   "TransactionID": next_txid(), "MessageType": mt, "DevEUI": "0102030405060708",
                   "Lifetime": 0}
            st, ans, _ = self.hub.post(req, self.b.key)
            self.assertEqual(ans["MessageType"], mt[:-3] + "Ans")
            self.assertEqual(ans["Result"]["ResultCode"], code, ans)
            self.assertEqual(ans["TransactionID"], req["TransactionID"])
            self.assertEqual(self.a.get()["MessageType"], mt)


class RelayHeliumTest(test_relay.RelayTest):
    """Forwarders behave as Helium's packet router; home networks as ChirpStack."""
    HOME_BEHAVIOUR = "chirpstack"
    FWD_BEHAVIOUR = "helium"


if __name__ == "__main__":
    unittest.main(verbosity=2)
