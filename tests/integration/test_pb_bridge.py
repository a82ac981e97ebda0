"""roamhubd bridging Packet Broker gRPC members and TS002 members through the relay core (issue
12, "Bridging"): the gRPC side is a The Things Stack agent played by Python grpcio (stubs
generated from the project's .proto, as in test_pb_dataplane), the TS002 side a scripted peer
that behaves as ChirpStack v4 does (sync answers, its serde checks: roamhub_harness.Member).

Covered (gRPC forwarder -> TS002 home network): a published join-request becomes a PRStartReq
with ULMetaData/GWInfo in TS002's units (ULFreq MHz, DataRate index, RSSI/SNR, location,
RecvTime, GWInfo.ID from the gateway EUI, a sealed ULToken/FNSULToken, DLAllowed) and the
PRStartAns's join-accept comes back on the forwarder's stream as a RoutedDownlinkMessage with
its forwarder_net_id/tenant_id/cluster_id and gateway_uplink_token exactly as sent and the RX
window in Packet Broker's units; a data uplink is answered Success with no downlink; the sealed
token does not carry the forwarder's token in clear; statistics count the bridged traffic.
Copies of one uplink (the agent publishes one per gateway) become ONE PRStartReq with a GWInfo
per gateway, each with its own token, best signal first; the home network (refusing replays as
ChirpStack does) counts no receiver_error; its downlink (XmitDataReq, or the join-accept in
PRStartAns) naming the 2nd GWInfo goes out with that gateway's own gateway_uplink_token; a
policy withholding signal quality and location strips it from every merged GWInfo. Statistics rows
name the protocol each side spoke (JSON, CSV, the protocol filters)."""
import csv
import io
import json
import threading
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (ALL_DOWN, ALL_UP, AdminClient, Hub, Member, admin_config,  # noqa: E402
                             answer, sha256_hex)
from test_pb_dataplane import Collector, data_up, grpc, rt, rtg, v3  # noqa: E402

FWD, HOME = "000014", "000505"          # gRPC forwarder, TS002 (ChirpStack) home network
TSFWD, PBHOME = "000202", "000013"       # TS002 (ChirpStack) forwarder, gRPC home network
PB_JOIN_EUI = 0x70B3D57ED0001001
JOIN_EUI, DEV_EUI = 0x70B3D57ED0000001, 0x0004A30B001C0530
GW_TOKEN = b"\x01sealed-by-the-agent\xff\x00"
JOIN_ACCEPT = bytes([0x20]) + bytes(range(1, 17))


def join_request(join_eui=JOIN_EUI):
    return (bytes([0x00]) + join_eui.to_bytes(8, "little") + DEV_EUI.to_bytes(8, "little") +
            b"\x34\x12" + b"\xde\xad\xbe\xef")


def ts002_uplink(phy, txid):
    """A ChirpStack forwarder's PRStartReq: two gateways, the second the better one."""
    now = time.time()
    return {
        "ProtocolVersion": "1.0", "SenderID": TSFWD, "ReceiverID": "000000", "TransactionID": txid,
        "MessageType": "PRStartReq", "PHYPayload": phy.hex(),
        "ULMetaData": {
            "DataRate": 5, "ULFreq": 868.3, "RFRegion": "EU868", "GWCnt": 2,
            "RecvTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".250Z",
            "FNSULToken": "f0f1f2f3",
            "GWInfo": [{"ID": "a0a1a2a3a4a5a6a7", "RFRegion": "EU868", "RSSI": -118, "SNR": -9.5,
                        "ULToken": "0a0b0c0d", "DLAllowed": True},
                       {"ID": "b0b1b2b3b4b5b6b7", "RFRegion": "EU868", "RSSI": -71, "SNR": 9.25,
                        "Lat": 48.5, "Lon": 2.25, "ULToken": "1a1b1c1d", "DLAllowed": True}]}}


# A Publish whose gateway_receive_time holds a field numbered 0 (written as the two-byte varint
# 80 00): protobuf-c accepts it as an unknown field and writes it back as a tag it refuses itself
# (found by fuzz_pb_messages; tests/fuzz/corpus/pb_messages/regress-field-number-0).
FIELD_ZERO_PUBLISH = bytes.fromhex(
    "081412036575311a0874656e616e742d6122810312560a3b0a209ab300b1742df190c6192f87fc242aaba4a3fbc5b585"
    "3532101d23412c2f4ed2121509000000d07ed5b3701130051c000ba3040018b42420171a1700000000d07eddb3703005"
    "1c000ba3040034127c9840e61a0b08fcddc8b1061080e59a77220b08fcddc8b11080008bd66d280a38a084919e034292"
    "010a040a0210011a3d0a3b0a1e121c0d0000c2c212050d0000c7c225000050c028d0f6ffffffffffffff010a19080112"
    "150d0000cac2250000d8c028e4f6ffffffffffffff012a4b0a490a471220093b014d840d2f4a40112041f163cc9d1340"
    "2500ff7e40290000ffffffffd7bfe5fa08959aef3a221c0d0000c2c212050d0000c7c225000050c028d0f6ffffffffff"
    "ffff0152460a360fffff30fe1e1485dd6b3c557a325d576d816543c27b29db18e449ce0ddbd659383d8e1a351ea34205"
    "cd068d99953e60cfc335ced287120c0c0d0e0f101112131415161762190a0b08d6e8c8f0fffffa93b801120a6d792d67"
    "6174657761796a0d0a0b080a10c8d0071a03342f35")


def uplink(phy):
    m = v3.UplinkMessage()
    m.phy_payload.plain = phy
    m.gateway_id.eui.value = 0x0102030405060708
    m.gateway_receive_time.FromSeconds(int(time.time()))
    m.gateway_region = v3.EU_863_870
    m.data_rate.lora.spreading_factor = 7
    m.data_rate.lora.bandwidth = 125000
    m.data_rate.lora.coding_rate = "4/5"
    m.frequency = 868100000
    m.gateway_metadata.teaser.terrestrial.SetInParent()
    sq = m.gateway_metadata.plain_signal_quality.terrestrial
    a0 = sq.antennas.add(index=0)
    a0.value.channel_rssi, a0.value.snr = -110.4, -3.5
    a1 = sq.antennas.add(index=1)
    a1.value.channel_rssi, a1.value.snr = -97.6, 7.25
    lo = m.gateway_metadata.plain_localization.terrestrial.antennas.add(index=0)
    lo.location.latitude, lo.location.longitude = 52.375, 4.875
    m.gateway_uplink_token = GW_TOKEN
    return rt.PublishUplinkMessageRequest(forwarder_net_id=0x14, forwarder_tenant_id="",
                                          forwarder_cluster_id="eu1", message=m)


def gateway_copies(phy, gws):
    """The agent's Publish requests of one uplink, one per gateway (eui, snr, rssi, token)."""
    reqs = []
    for eui, snr, rssi, tok in gws:
        r = uplink(phy)
        r.message.gateway_id.eui.value = eui
        sq = r.message.gateway_metadata.plain_signal_quality.terrestrial
        del sq.antennas[:]
        a = sq.antennas.add(index=0)
        a.value.channel_rssi, a.value.snr = rssi, snr
        r.message.gateway_uplink_token = tok
        reqs.append(r)
    return reqs


class BridgeWorld(unittest.TestCase):
    seen_phy = set()
    join_gw = 0  # the GWInfo a join-accept's DLMetaData names

    @classmethod
    def answer_home(cls, req):
        """ChirpStack as home network: a join-accept in PRStartAns, Success for data; a data
        uplink it already had (same PHYPayload: another gateway's copy in its own PRStartReq) is
        a replay, refused MICFailed as ChirpStack does (chirpstack issue 813)."""
        phy = bytes.fromhex(req["PHYPayload"])
        if phy[0] >> 5 != 0 and phy in cls.seen_phy:
            return answer(req, "MICFailed", "frame-counter reset or rollover / replay")
        cls.seen_phy.add(phy)
        if phy[0] >> 5 == 0:
            ul = req["ULMetaData"]
            return answer(req, "Success", PHYPayload=JOIN_ACCEPT.hex(), DLMetaData={
                "DevEUI": "%016x" % DEV_EUI, "DLFreq1": ul["ULFreq"], "DataRate1": ul["DataRate"],
                "DLFreq2": 869.525, "DataRate2": 0, "RXDelay1": 5, "ClassMode": "A",
                "FNSULToken": ul["FNSULToken"],
                "GWInfo": [{"ULToken": ul["GWInfo"][cls.join_gw]["ULToken"]}]})
        return answer(req, "Success")

    @classmethod
    def answer_tsfwd(cls, req):
        """ChirpStack as forwarder: a downlink it is asked to send is sent."""
        return answer(req, "Success")

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="roamhub-pbb-")
        cls.tsfwd = Member("chirpfwd", TSFWD, "key-tsfwd-0123456789", mode="sync",
                           behaviour="chirpstack", answer_fn=cls.answer_tsfwd)
        cls.home = Member("chirp", HOME, "key-home-0123456789", mode="sync", behaviour="chirpstack",
                          answer_fn=cls.answer_home)
        table = {
            "networks": [{"net_id": n, "name": "net" + n, "listed": True}
                         for n in (FWD, HOME, TSFWD, PBHOME)],
            "members": [{"id": "tts", "net_ids": [FWD], "api_key_hashes": [sha256_hex("unused-tts-key-000")]},
                        {"id": "ttshome", "net_ids": [PBHOME], "api_key_hashes": [sha256_hex("unused-tts-key-001")]},
                        {"id": "chirp", "net_ids": [HOME], "api_key_hashes": [sha256_hex(cls.home.key)]},
                        {"id": "chirpfwd", "net_ids": [TSFWD], "api_key_hashes": [sha256_hex(cls.tsfwd.key)]}],
            "endpoints": [{"id": m.name, "net_id": m.net_id, "url": m.url,
                           "protocol_version": "PROTOCOL_VERSION_1_0", "timeout_ms": 1500,
                           "strict_enums": True, "js_answer_mode": "ANSWER_MODE_SYNC"}
                          for m in (cls.home, cls.tsfwd)],
            "devaddr_blocks": [{"prefix": "0a000000/7", "net_id": HOME},
                               {"prefix": "26000000/7", "net_id": PBHOME}],
            "join_routes": [{"join_eui": "70B3D57ED0000000/56", "home_net_id": HOME},
                            {"join_eui": "70B3D57ED0001000/56", "home_net_id": PBHOME}],
            "policies": [{"forwarder_net_id": f, "home_net_id": h, "uplink": dict(ALL_UP),
                          "downlink": dict(ALL_DOWN)}
                         for f, h in ((FWD, HOME), (TSFWD, PBHOME), (FWD, TSFWD))]}
        cls.hub = Hub(table, workers=2, config={
            "admin": admin_config(cls.dir),
            "grpc": {"address": "127.0.0.1", "port": 0, "hold_ms": 2000, "queue_max": 40}})
        cls.home.hub = cls.hub
        cls.tsfwd.hub = cls.hub
        cls.t0 = int(time.time()) - 120
        cls.adm = adm = AdminClient(cls.hub)
        cls.op = op = adm.token(adm.operator_key())
        cls.tok = cls.agent_token(adm, op, FWD)
        cls.home_tok = cls.agent_token(adm, op, PBHOME)
        cls.ch = grpc.insecure_channel("127.0.0.1:%d" % cls.hub.grpc_port)
        cls.md = (("authorization", "Bearer " + cls.tok),)
        cls.home_md = (("authorization", "Bearer " + cls.home_tok),)
        cls.home_stream = Collector(rtg.HomeNetworkDataStub(cls.ch).Subscribe(
            rt.SubscribeHomeNetworkRequest(home_network_net_id=0x13, home_network_cluster_id="nam1",
                                           group="nam1"), metadata=cls.home_md),
            v3.RoutedUplinkMessage)
        cls.fwd_stream = Collector(rtg.ForwarderDataStub(cls.ch).Subscribe(
            rt.SubscribeForwarderRequest(forwarder_net_id=0x14, forwarder_tenant_id="",
                                         forwarder_cluster_id="eu1", group="eu1"),
            metadata=cls.md), v3.RoutedDownlinkMessage)
        time.sleep(0.3)

    @staticmethod
    def agent_token(adm, op, net_id):
        key, _ = adm.create_key(op, net_id=net_id, rights=["RIGHT_DATA_PLANE"])
        kid, secret = key.split(":", 1)
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": kid,
                                       "client_secret": secret, "scope": "networks"}).encode()
        st, data, _ = adm.raw("POST", "/api/v1/oauth/token", body=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert st == 200, data
        return json.loads(data)["access_token"]

    @classmethod
    def tearDownClass(cls):
        cls.fwd_stream.cancel()
        cls.home_stream.cancel()
        cls.tsfwd.stop()
        cls.ch.close()
        rc = cls.hub.stop()
        logs = cls.hub.logs()
        cls.home.stop()
        cls.hub.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert rc == 0, "roamhubd exit %s:\n%s" % (rc, logs)

    def publish(self, req):
        return rtg.ForwarderDataStub(self.ch).Publish(req, metadata=self.md, timeout=3)

    def wait_msgs(self, n, timeout=3.0):
        t0 = time.time()
        while time.time() - t0 < timeout and len(self.fwd_stream.msgs) < n:
            time.sleep(0.02)
        return len(self.fwd_stream.msgs) >= n

    def test_1_join_request_and_join_accept(self):
        before = len(self.fwd_stream.msgs)
        resp = self.publish(uplink(join_request()))
        self.assertTrue(resp.id)
        req = self.home.get(timeout=3, mtype="PRStartReq")
        self.assertEqual(self.home.violations, [])
        self.assertEqual((req["SenderID"].lower(), req["ReceiverID"].lower()), (FWD, HOME))
        self.assertEqual(bytes.fromhex(req["PHYPayload"]), join_request())
        ul = req["ULMetaData"]
        self.assertEqual(ul["ULFreq"], 868.1)          # Hz -> MHz
        self.assertEqual(ul["DataRate"], 5)            # SF7/125 kHz in EU868
        self.assertEqual(ul["RFRegion"], "EU868")
        self.assertEqual(ul["DevEUI"].lower(), "%016x" % DEV_EUI)
        self.assertEqual(ul["GWCnt"], 1)
        self.assertTrue(ul["RecvTime"].endswith("Z"))
        gw = ul["GWInfo"][0]
        self.assertEqual(gw["ID"].lower(), "0102030405060708")
        self.assertEqual((gw["RSSI"], gw["SNR"]), (-98, 7.25))  # the best antenna, rounded
        self.assertEqual((gw["Lat"], gw["Lon"]), (52.375, 4.875))
        self.assertTrue(gw["DLAllowed"])
        self.assertEqual(gw["ULToken"], ul["FNSULToken"])
        tok = bytes.fromhex(ul["FNSULToken"])
        self.assertNotIn(GW_TOKEN, tok, "the forwarder's token travels sealed")
        self.assertNotIn(b"eu1", tok)
        # the join-accept on the forwarder's own stream
        self.assertTrue(self.wait_msgs(before + 1), "no RoutedDownlinkMessage")
        m = self.fwd_stream.msgs[before]
        self.assertEqual((m.forwarder_net_id, m.forwarder_tenant_id, m.forwarder_cluster_id),
                         (0x14, "", "eu1"))
        self.assertEqual(m.home_network_net_id, 0x505)
        self.assertEqual(m.message.phy_payload, JOIN_ACCEPT)
        self.assertEqual(m.message.gateway_uplink_token, GW_TOKEN)
        self.assertEqual(m.message.rx1.frequency, 868100000)
        self.assertEqual((m.message.rx1.data_rate.lora.spreading_factor,
                          m.message.rx1.data_rate.lora.bandwidth), (7, 125000))
        self.assertEqual(m.message.rx2.frequency, 869525000)
        self.assertEqual(m.message.rx2.data_rate.lora.spreading_factor, 12)
        self.assertEqual(m.message.rx1_delay.seconds, 5)
        self.assertEqual(m.message.region, v3.EU_863_870)
        self.assertEqual(len(m.message.downlink_token), 8)

    def test_2_data_uplink_success_without_downlink(self):
        before = len(self.fwd_stream.msgs)
        self.publish(uplink(data_up(0x0A001234, fcnt=3)))
        req = self.home.get(timeout=3, mtype="PRStartReq")
        self.assertEqual(req["ULMetaData"]["DevAddr"].lower(), "0a001234")
        self.assertFalse(req["ULMetaData"]["Confirmed"])
        self.assertEqual(self.home.violations, [])
        time.sleep(0.5)
        self.assertEqual(len(self.fwd_stream.msgs), before, "a Success without a downlink sends nothing")

    def test_3_counted_as_relayed(self):
        self.publish(uplink(data_up(0x0A001235, fcnt=4)))
        self.home.get(timeout=3, mtype="PRStartReq")
        name = 'roamhub_events_total{event="pb_bridged_uplink"}'
        t0 = time.time()
        while time.time() - t0 < 3 and self.hub.metric(name) < 1:
            time.sleep(0.05)
        self.assertGreaterEqual(self.hub.metric(name), 1)
        # the relay core counted the transactions: forwarded outcomes for the pair
        self.assertGreaterEqual(self.hub.metric('roamhub_relay_outcomes_total'), 1)
    # ---------------------------------------------------------------- helpers

    def post_async(self, msg, key):
        """POSTs msg on a thread (a sync sender waits); .result() gives (status, answer)."""
        box = {}

        def run():
            st, ans, _ = self.hub.post(msg, key, timeout=10)
            box["r"] = (st, ans)
        th = threading.Thread(target=run, daemon=True)
        th.start()

        class Res:
            @staticmethod
            def result(timeout=10):
                th.join(timeout)
                return box.get("r")
        return Res

    def next_routed_uplink(self, before, timeout=3.0):
        t0 = time.time()
        while time.time() - t0 < timeout and len(self.home_stream.msgs) <= before:
            time.sleep(0.02)
        self.assertGreater(len(self.home_stream.msgs), before, "no RoutedUplinkMessage")
        return self.home_stream.msgs[before]

    def home_publish(self, routed, phy, **kw):
        dm = v3.DownlinkMessage(phy_payload=phy, gateway_uplink_token=kw.get(
            "gw_token", routed.message.gateway_uplink_token),
            forwarder_uplink_token=routed.message.forwarder_uplink_token,
            priority=v3.HIGHEST, region=v3.EU_863_870)
        dm.rx1.frequency = 868300000
        dm.rx1.data_rate.lora.spreading_factor = 7
        dm.rx1.data_rate.lora.bandwidth = 125000
        dm.rx2.frequency = 869525000
        dm.rx2.data_rate.lora.spreading_factor = 12
        dm.rx2.data_rate.lora.bandwidth = 125000
        dm.rx1_delay.seconds = kw.get("delay", 5)
        req = rt.PublishDownlinkMessageRequest(
            home_network_net_id=0x13, home_network_cluster_id="nam1",
            forwarder_net_id=routed.forwarder_net_id,
            forwarder_tenant_id=routed.forwarder_tenant_id,
            forwarder_cluster_id=kw.get("fwd_cluster", routed.forwarder_cluster_id), message=dm)
        return rtg.HomeNetworkDataStub(self.ch).Publish(req, metadata=self.home_md, timeout=3)

    def home_report(self, routed, error=None):
        sc = v3.UplinkMessageDeliveryStateChange(
            id=routed.id, home_network_net_id=0x13, home_network_cluster_id="nam1",
            forwarder_net_id=routed.forwarder_net_id,
            forwarder_tenant_id=routed.forwarder_tenant_id,
            forwarder_cluster_id=routed.forwarder_cluster_id,
            forwarder_uplink_token=routed.message.forwarder_uplink_token, state=v3.PROCESSED)
        if error is not None:
            sc.error.value = error
        rtg.HomeNetworkDataStub(self.ch).ReportUplinkMessageDeliveryState(
            rt.UplinkMessageDeliveryStateChangeRequest(state_change=sc), metadata=self.home_md,
            timeout=3)

    # ---------------------------------------------------------------- TS002 home -> gRPC forwarder

    def xmit_data_req(self, fns_token, txid):
        return {"ProtocolVersion": "1.0", "SenderID": HOME, "ReceiverID": FWD,
                "TransactionID": txid, "MessageType": "XmitDataReq",
                "PHYPayload": (bytes([0x60]) + (0x0A001236).to_bytes(4, "little") +
                               b"\x00\x01\x00\x01\xaa\x01\x02\x03\x04").hex(),
                "DLMetaData": {"DevEUI": "%016x" % DEV_EUI, "DLFreq1": 868.1, "DataRate1": 5,
                               "DLFreq2": 869.525, "DataRate2": 0, "RXDelay1": 1,
                               "ClassMode": "A", "FNSULToken": fns_token,
                               "GWInfo": [{"ULToken": fns_token}]}}

    def test_4_class_a_downlink_from_ts002_home(self):
        self.publish(uplink(data_up(0x0A001236, fcnt=5)))
        up = self.home.get(timeout=3, mtype="PRStartReq")
        token = up["ULMetaData"]["FNSULToken"]
        before = len(self.fwd_stream.msgs)
        res = self.post_async(self.xmit_data_req(token, 4711), self.home.key)
        self.assertTrue(self.wait_msgs(before + 1), "no RoutedDownlinkMessage")
        m = self.fwd_stream.msgs[before]
        self.assertEqual((m.forwarder_net_id, m.forwarder_tenant_id, m.forwarder_cluster_id),
                         (0x14, "", "eu1"))
        self.assertEqual(m.message.gateway_uplink_token, GW_TOKEN)
        self.assertEqual(m.message.rx1.frequency, 868100000)
        self.assertEqual(m.message.rx1.data_rate.lora.spreading_factor, 7)
        self.assertEqual(m.message.rx1_delay.seconds, 1)
        self.assertEqual(m.message.phy_payload[:5], bytes([0x60]) + (0x0A001236).to_bytes(4, "little"))
        # the forwarder's delivery report is the XmitDataAns
        sc = v3.DownlinkMessageDeliveryStateChange(
            id=m.id, home_network_net_id=m.home_network_net_id, forwarder_net_id=0x14,
            forwarder_tenant_id="", forwarder_cluster_id="eu1",
            downlink_token=m.message.downlink_token, state=v3.PROCESSED)
        sc.success.rx1 = True
        rtg.ForwarderDataStub(self.ch).ReportDownlinkMessageDeliveryState(
            rt.DownlinkMessageDeliveryStateChangeRequest(state_change=sc), metadata=self.md,
            timeout=3)
        st, ans = res.result()
        self.assertEqual(st, 200)
        self.assertEqual(ans["MessageType"], "XmitDataAns")
        self.assertEqual(ans["TransactionID"], 4711)
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)

    def test_5_tampered_or_foreign_token_refused_ts002(self):
        self.publish(uplink(data_up(0x0A001237, fcnt=6)))
        token = self.home.get(timeout=3, mtype="PRStartReq")["ULMetaData"]["FNSULToken"]
        bad = token[:40] + ("0" if token[40] != "0" else "1") + token[41:]
        st, ans, _ = self.hub.post(self.xmit_data_req(bad, 4712), self.home.key)
        self.assertEqual(st, 200)
        self.assertEqual(ans["Result"]["ResultCode"], "MalformedRequest", ans)
        # the GWInfo ULToken names the gateway (FNSULToken only when no GWInfo carries one)
        self.assertIn("DLMetaData.GWInfo[0].ULToken", ans["Result"]["Description"])
        self.assertIn("does not authenticate", ans["Result"]["Description"])
        st, ans, _ = self.hub.post(self.xmit_data_req("zz", 4713), self.home.key)
        self.assertEqual(ans["Result"]["ResultCode"], "MalformedRequest", ans)
        self.assertIn("DLMetaData.GWInfo[0].ULToken: malformed token", ans["Result"]["Description"])
        only_fns = self.xmit_data_req("zz", 4715)
        del only_fns["DLMetaData"]["GWInfo"]
        st, ans, _ = self.hub.post(only_fns, self.home.key)
        self.assertEqual(ans["Result"]["ResultCode"], "MalformedRequest", ans)
        self.assertIn("DLMetaData.FNSULToken: malformed token", ans["Result"]["Description"])
        # another member (allowed to send downlinks to this forwarder) with the home's token
        before = len(self.fwd_stream.msgs)
        foreign = self.xmit_data_req(token, 4714)
        foreign["SenderID"] = TSFWD
        st, ans, _ = self.hub.post(foreign, self.tsfwd.key)
        self.assertEqual(ans["Result"]["ResultCode"], "MalformedRequest", ans)
        self.assertIn("sealed for another home network", ans["Result"]["Description"])
        time.sleep(0.2)
        self.assertEqual(len(self.fwd_stream.msgs), before, "nothing sent with a foreign token")

    # ---------------------------------------------------------------- TS002 forwarder -> gRPC home

    def test_6_ts002_join_to_grpc_home(self):
        before = len(self.home_stream.msgs)
        req = ts002_uplink(join_request(PB_JOIN_EUI), 901)
        res = self.post_async(req, self.tsfwd.key)
        r = self.next_routed_uplink(before)
        self.assertEqual((r.forwarder_net_id, r.forwarder_tenant_id, r.forwarder_cluster_id),
                         (0x202, "", ""))
        self.assertEqual(r.home_network_net_id, 0x13)
        um = r.message
        self.assertEqual(um.phy_payload.plain, join_request(PB_JOIN_EUI))
        self.assertEqual(um.frequency, 868300000)                 # MHz -> Hz
        self.assertEqual((um.data_rate.lora.spreading_factor, um.data_rate.lora.bandwidth),
                         (7, 125000))                              # DR5 EU868
        self.assertEqual(um.gateway_region, v3.EU_863_870)
        self.assertEqual(um.gateway_id.eui.value, 0xb0b1b2b3b4b5b6b7)  # the better gateway
        ant = um.gateway_metadata.plain_signal_quality.terrestrial.antennas[0].value
        self.assertEqual((ant.channel_rssi, ant.snr), (-71.0, 9.25))
        loc = um.gateway_metadata.plain_localization.terrestrial.antennas[0].location
        self.assertEqual((loc.latitude, loc.longitude), (48.5, 2.25))
        self.assertTrue(um.gateway_receive_time.seconds > 0)
        self.assertGreater(len(um.gateway_uplink_token), 16, "the agent downlinks only with a token")
        self.assertNotIn(b"0a0b0c0d", um.gateway_uplink_token)
        self.assertEqual(r.hops[0].protocol, v3.TS002_V1_0)
        self.assertEqual((r.hops[0].sender_name, r.hops[0].receiver_name), ("chirpfwd", "roamhub"))
        self.home_report(r)  # PROCESSED: a join-request keeps waiting for its join-accept
        time.sleep(0.2)
        self.assertIsNone(res.result(timeout=0.01))
        self.home_publish(r, JOIN_ACCEPT)
        st, ans = res.result()
        self.assertEqual(st, 200)
        self.assertEqual(self.tsfwd.violations, [])
        self.assertEqual(ans["MessageType"], "PRStartAns")
        self.assertEqual(ans["TransactionID"], 901)
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
        self.assertEqual(bytes.fromhex(ans["PHYPayload"]), JOIN_ACCEPT)
        dl = ans["DLMetaData"]
        self.assertEqual((dl["DLFreq1"], dl["DataRate1"], dl["DLFreq2"], dl["DataRate2"]),
                         (868.3, 5, 869.525, 0))
        self.assertEqual((dl["RXDelay1"], dl["ClassMode"], dl["HiPriorityFlag"]), (5, "A", True))
        self.assertEqual(dl["FNSULToken"], "f0f1f2f3")              # restored exactly
        self.assertEqual([g["ULToken"] for g in dl["GWInfo"]], ["0a0b0c0d", "1a1b1c1d"])

    def test_7_ts002_data_reports_and_downlink(self):
        before = len(self.home_stream.msgs)
        res = self.post_async(ts002_uplink(data_up(0x26000042, fcnt=1), 902), self.tsfwd.key)
        r = self.next_routed_uplink(before)
        self.home_report(r, error=v3.NOT_FOUND)
        st, ans = res.result()
        self.assertEqual(ans["Result"]["ResultCode"], "UnknownDevAddr", ans)
        self.assertIn("NOT_FOUND", ans["Result"].get("Description", ""))
        res = self.post_async(ts002_uplink(data_up(0x26000042, fcnt=2, confirmed=True), 903),
                              self.tsfwd.key)
        r = self.next_routed_uplink(before + 1)
        self.home_report(r)
        st, ans = res.result()
        self.assertEqual((ans["MessageType"], ans["Result"]["ResultCode"]), ("PRStartAns", "Success"))
        # a class A downlink afterwards: an XmitDataReq to the TS002 forwarder
        phy = bytes([0xA0]) + (0x26000042).to_bytes(4, "little") + b"\x20\x01\x00\x11\x22\x33\x44"
        resp = self.home_publish(r, phy, delay=1)
        self.assertTrue(resp.id)
        x = self.tsfwd.get(timeout=3, mtype="XmitDataReq")
        self.assertEqual(self.tsfwd.violations, [])
        self.assertEqual((x["SenderID"].lower(), x["ReceiverID"].lower()), (PBHOME, TSFWD))
        self.assertEqual(bytes.fromhex(x["PHYPayload"]), phy)
        dl = x["DLMetaData"]
        self.assertEqual((dl["DLFreq1"], dl["DataRate1"], dl["RXDelay1"], dl["ClassMode"]),
                         (868.3, 5, 1, "A"))
        self.assertEqual(dl["FNSULToken"], "f0f1f2f3")
        self.assertEqual([g["ULToken"] for g in dl["GWInfo"]], ["0a0b0c0d", "1a1b1c1d"])

    def test_8_tampered_or_foreign_token_refused_grpc(self):
        before = len(self.home_stream.msgs)
        res = self.post_async(ts002_uplink(data_up(0x26000043, fcnt=1), 904), self.tsfwd.key)
        r = self.next_routed_uplink(before)
        self.home_report(r)
        res.result()
        tok = bytearray(r.message.gateway_uplink_token)
        tok[-3] ^= 0x40
        with self.assertRaises(grpc.RpcError) as e:
            self.home_publish(r, b"\x60" + bytes(11), gw_token=bytes(tok))
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("message.gateway_uplink_token", e.exception.details())
        self.assertIn("does not authenticate", e.exception.details())
        # the same token for other forwarder IDs (redirected): refused the same way
        with self.assertRaises(grpc.RpcError) as e:
            self.home_publish(r, b"\x60" + bytes(11), fwd_cluster="other")
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("message.gateway_uplink_token", e.exception.details())
        self.tsfwd.assert_nothing(0.3)

    def test_9_no_waiting_past_the_deadline(self):
        """A join-request whose home network never answers gets its failure in time."""
        before = len(self.home_stream.msgs)
        t0 = time.time()
        st, ans, _ = self.hub.post(ts002_uplink(join_request(PB_JOIN_EUI), 905), self.tsfwd.key,
                                   timeout=10)
        el = time.time() - t0
        self.next_routed_uplink(before)
        self.assertEqual(ans["Result"]["ResultCode"], "Other", ans)
        self.assertLess(el, 6.0, "answered within the join-accept window")

    def test_10_field_number_zero_refused(self):
        publish = self.ch.unary_unary("/org.packetbroker.routing.v1.ForwarderData/Publish",
                                      request_serializer=lambda b: b,
                                      response_deserializer=lambda b: b)
        before = len(self.home_stream.msgs)
        with self.assertRaises(grpc.RpcError) as e:
            publish(FIELD_ZERO_PUBLISH, metadata=self.md, timeout=3)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("field number 0 in Timestamp", e.exception.details())
        time.sleep(0.2)
        self.assertEqual(len(self.home_stream.msgs), before)

    # ---------------------------------------------------------------- copies of one uplink

    def receiver_errors(self):
        """receiver_error outcomes: /metrics (every class) and the statistics rows for the pair."""
        _, text = self.hub.get_admin("/metrics")
        n = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("roamhub_relay_outcomes_total{") and
                'outcome="receiver_error"' in line)
        st, body, _ = self.adm.call("GET", "/stats?from=%d&outcome=receiver_error" % self.t0,
                                    token=self.op)
        self.assertEqual(st, 200, body)
        return n, sum(it["count"] for it in body["items"])

    def forwarded(self):
        _, text = self.hub.get_admin("/metrics")
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("roamhub_relay_outcomes_total{") and
                   'outcome="forwarded"' in line)

    def test_11_gateway_copies_become_one_prstartreq(self):
        """The agent publishes an uplink once per gateway: the TS002 home network gets ONE
        PRStartReq with a GWInfo per gateway (each its own token), and its downlink choosing
        the 2nd GWInfo goes out on that gateway's token."""
        phy = data_up(0x0A001240, fcnt=7)
        gws = [(0x1111111111111111, -5.0, -115.0, b"gateway-one"),
               (0x2222222222222222, 8.5, -90.0, b"gateway-two"),
               (0x3333333333333333, 2.0, -100.0, b"gateway-three")]
        reqs = gateway_copies(phy, gws)
        errors0 = self.receiver_errors()
        fwd0 = self.forwarded()
        merged0 = self.hub.metric('roamhub_events_total{event="pb_bridge_merged"}')
        stub = rtg.ForwarderDataStub(self.ch)
        futs = [stub.Publish.future(r, metadata=self.md, timeout=3) for r in reqs]
        ids = [f.result().id for f in futs]
        self.assertEqual(len(set(ids)), 3, "every copy's Publish answered with its own ID")
        up = self.home.get(timeout=3, mtype="PRStartReq")
        self.home.assert_nothing(0.6)  # exactly one PRStartReq
        self.assertEqual(self.home.violations, [])
        self.assertEqual(bytes.fromhex(up["PHYPayload"]), phy)
        ul = up["ULMetaData"]
        self.assertEqual(ul["GWCnt"], 3)
        self.assertEqual(len(ul["GWInfo"]), 3)
        # best signal first (SNR): gateway two, three, one
        self.assertEqual([g["ID"].lower() for g in ul["GWInfo"]],
                         ["2222222222222222", "3333333333333333", "1111111111111111"])
        self.assertEqual([(g["RSSI"], g["SNR"]) for g in ul["GWInfo"]],
                         [(-90, 8.5), (-100, 2.0), (-115, -5.0)])
        toks = [g["ULToken"] for g in ul["GWInfo"]]
        self.assertEqual(len(set(toks)), 3, "each gateway its own sealed token")
        self.assertEqual(ul["FNSULToken"], toks[0])
        self.assertTrue(all(g["DLAllowed"] for g in ul["GWInfo"]))
        # the home network's downlink chooses the 2nd GWInfo: gateway three's token
        before = len(self.fwd_stream.msgs)
        x = self.xmit_data_req(ul["FNSULToken"], 4720)
        x["PHYPayload"] = (bytes([0x60]) + (0x0A001240).to_bytes(4, "little") +
                           b"\x00\x01\x00\x01\xaa\x01\x02\x03\x04").hex()
        x["DLMetaData"]["GWInfo"] = [{"ULToken": toks[1]}]
        res = self.post_async(x, self.home.key)
        self.assertTrue(self.wait_msgs(before + 1), "no RoutedDownlinkMessage")
        m = self.fwd_stream.msgs[before]
        self.assertEqual(m.message.gateway_uplink_token, b"gateway-three")
        self.assertEqual((m.forwarder_net_id, m.forwarder_tenant_id, m.forwarder_cluster_id),
                         (0x14, "", "eu1"))
        sc = v3.DownlinkMessageDeliveryStateChange(
            id=m.id, home_network_net_id=m.home_network_net_id, forwarder_net_id=0x14,
            forwarder_tenant_id="", forwarder_cluster_id="eu1",
            downlink_token=m.message.downlink_token, state=v3.PROCESSED)
        sc.success.rx1 = True
        stub.ReportDownlinkMessageDeliveryState(
            rt.DownlinkMessageDeliveryStateChangeRequest(state_change=sc), metadata=self.md,
            timeout=3)
        st, ans = res.result()
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
        # counted once, no replays refused; the two other copies counted as merged
        t0 = time.time()
        while time.time() - t0 < 4 and self.forwarded() < fwd0 + 2:
            time.sleep(0.1)
        self.assertEqual(self.forwarded(), fwd0 + 2)  # the PRStartReq and the XmitDataReq
        time.sleep(1.2)  # statistics rows are flushed every second
        self.assertEqual(self.receiver_errors(), errors0)
        self.assertEqual(self.hub.metric('roamhub_events_total{event="pb_bridge_merged"}'),
                         merged0 + 2)

    def test_12_join_accept_on_the_chosen_gateway(self):
        """A join-request heard by two gateways: one PRStartReq; the join-accept's DLMetaData
        names the 2nd GWInfo, and the RoutedDownlinkMessage carries that gateway's token."""
        jr = join_request(JOIN_EUI + 1)
        reqs = gateway_copies(jr, [(0xAAAA, 9.0, -100.0, b"join-gw-a"),
                                   (0xBBBB, -2.0, -100.0, b"join-gw-b")])
        before = len(self.fwd_stream.msgs)
        type(self).join_gw = 1  # answer_home: the join-accept names GWInfo[1]
        try:
            stub = rtg.ForwarderDataStub(self.ch)
            for f in [stub.Publish.future(r, metadata=self.md, timeout=3) for r in reqs]:
                f.result()
            up = self.home.get(timeout=3, mtype="PRStartReq")
            self.home.assert_nothing(0.5)
            self.assertEqual(len(up["ULMetaData"]["GWInfo"]), 2)
            self.assertTrue(self.wait_msgs(before + 1), "no join-accept")
        finally:
            type(self).join_gw = 0
        m = self.fwd_stream.msgs[before]
        self.assertEqual(m.message.phy_payload, JOIN_ACCEPT)
        self.assertEqual(m.message.gateway_uplink_token, b"join-gw-b")


    def test_13_policy_strips_every_gwinfo(self):
        """The forwarder's policy withholds signal quality and location: the merged PRStartReq
        has a GWInfo per gateway, none with RSSI/SNR/Lat/Lon, each still with its own token."""
        def policy(up):
            st, body, _ = self.adm.call("PUT", "/policies/%s/%s" % (FWD, HOME),
                                        {"uplink": up, "downlink": dict(ALL_DOWN)}, self.op)
            self.assertIn(st, (200, 201), body)
        policy(dict(ALL_UP, signal_quality=False, localization=False))
        try:
            reqs = gateway_copies(data_up(0x0A001241, fcnt=8),
                                  [(0x4444, 1.0, -100.0, b"strip-a"), (0x5555, 5.0, -95.0, b"strip-b")])
            stub = rtg.ForwarderDataStub(self.ch)
            for f in [stub.Publish.future(r, metadata=self.md, timeout=3) for r in reqs]:
                f.result()
            up = self.home.get(timeout=3, mtype="PRStartReq")
            self.home.assert_nothing(0.5)
        finally:
            policy(dict(ALL_UP))
        gws = up["ULMetaData"]["GWInfo"]
        self.assertEqual(len(gws), 2)
        for g in gws:
            for k in ("RSSI", "SNR", "Lat", "Lon"):
                self.assertNotIn(k, g)
        self.assertEqual(len({g["ULToken"] for g in gws}), 2)
        self.assertEqual(sorted(g["ID"].lower() for g in gws),
                         ["0000000000004444", "0000000000005555"])

    def test_14_statistics_name_each_sides_protocol(self):
        """Bridged rows say which protocol each side spoke, both ways; filters and CSV too."""
        t0 = int(time.time()) - 60
        self.publish(uplink(data_up(0x0A001240, fcnt=9)))                 # gRPC -> TS002
        self.home.get(timeout=3, mtype="PRStartReq")
        down = len(self.fwd_stream.msgs)  # and a join-accept back: TS002 -> the gRPC forwarder
        self.publish(uplink(join_request()))
        self.home.get(timeout=3, mtype="PRStartReq")
        self.assertTrue(self.wait_msgs(down + 1), "no RoutedDownlinkMessage")
        before = len(self.home_stream.msgs)
        res = self.post_async(ts002_uplink(data_up(0x26000044, fcnt=1), 906), self.tsfwd.key)
        self.home_report(self.next_routed_uplink(before))               # TS002 -> gRPC
        self.assertEqual(res.result()[1]["Result"]["ResultCode"], "Success")
        adm = AdminClient(self.hub)
        op = adm.token(adm.operator_key())
        want = {(FWD, HOME, "uplink_app", "packet_broker", "ts002"),
                (FWD, HOME, "join_accept", "packet_broker", "ts002"),  # the forwarder transmits
                (TSFWD, PBHOME, "uplink_app", "ts002", "packet_broker")}

        def rows(query=""):
            st, body, _ = adm.call("GET", "/stats?from=%d%s" % (t0, query), token=op)
            self.assertEqual(st, 200, body)
            return body["items"]
        deadline = time.time() + 8
        while True:
            got = {(it["forwarder"], it["home"], it["class"], it["forwarder_protocol"],
                    it["home_protocol"]) for it in rows() if it["outcome"] == "forwarded"}
            if want <= got or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertLessEqual(want, got)
        for it in rows():
            if it["outcome"] != "forwarded":
                continue  # a refusal counts the side never reached as the sender's protocol
            # in this world FWD and PBHOME speak only gRPC, HOME and TSFWD only TS002
            side = {FWD: "packet_broker", PBHOME: "packet_broker", HOME: "ts002", TSFWD: "ts002"}
            self.assertEqual(it["forwarder_protocol"], side[it["forwarder"]], it)
            self.assertEqual(it["home_protocol"], side[it["home"]], it)
        # filters: either side, one side, both
        pb = rows("&protocol=packet_broker")
        self.assertTrue(pb)
        self.assertTrue(all("packet_broker" in (it["forwarder_protocol"], it["home_protocol"])
                            for it in pb))
        t2p = rows("&forwarder_protocol=ts002&home_protocol=packet_broker")
        self.assertIn((TSFWD, PBHOME), {(it["forwarder"], it["home"]) for it in t2p})
        self.assertEqual({(it["forwarder_protocol"], it["home_protocol"]) for it in t2p},
                         {("ts002", "packet_broker")})
        p2t = rows("&forwarder_protocol=packet_broker&home_protocol=ts002&class=uplink_app")
        self.assertEqual({(it["forwarder"], it["home"]) for it in p2t}, {(FWD, HOME)})
        st, body, _ = adm.call("GET", "/stats?protocol=grpc", token=op)
        self.assertEqual(st, 400)
        self.assertIn("protocol: expected ts002 or packet_broker", json.dumps(body))
        # the CSV's last two columns
        st, data, hd = adm.raw("GET", "/api/v1/stats?format=csv&from=%d" % t0,
                               headers={"Authorization": "Bearer " + op})
        self.assertEqual(st, 200)
        table = list(csv.DictReader(io.StringIO(data.decode())))
        self.assertEqual(data.decode().splitlines()[0].split(",")[-2:],
                         ["forwarder_protocol", "home_protocol"])
        self.assertIn((TSFWD, PBHOME, "ts002", "packet_broker"),
                      {(r["forwarder"], r["home"], r["forwarder_protocol"], r["home_protocol"])
                       for r in table})


if __name__ == "__main__":
    unittest.main()
