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
token does not carry the forwarder's token in clear; statistics count the bridged traffic."""
import json
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

FWD, HOME = "000014", "000505"
JOIN_EUI, DEV_EUI = 0x70B3D57ED0000001, 0x0004A30B001C0530
GW_TOKEN = b"\x01sealed-by-the-agent\xff\x00"
JOIN_ACCEPT = bytes([0x20]) + bytes(range(1, 17))


def join_request():
    return (bytes([0x00]) + JOIN_EUI.to_bytes(8, "little") + DEV_EUI.to_bytes(8, "little") +
            b"\x34\x12" + b"\xde\xad\xbe\xef")


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


class BridgeWorld(unittest.TestCase):
    @classmethod
    def answer_home(cls, req):
        """ChirpStack as home network: a join-accept in PRStartAns, Success for data."""
        phy = bytes.fromhex(req["PHYPayload"])
        if phy[0] >> 5 == 0:
            ul = req["ULMetaData"]
            return answer(req, "Success", PHYPayload=JOIN_ACCEPT.hex(), DLMetaData={
                "DevEUI": "%016x" % DEV_EUI, "DLFreq1": ul["ULFreq"], "DataRate1": ul["DataRate"],
                "DLFreq2": 869.525, "DataRate2": 0, "RXDelay1": 5, "ClassMode": "A",
                "FNSULToken": ul["FNSULToken"],
                "GWInfo": [{"ULToken": ul["GWInfo"][0]["ULToken"]}]})
        return answer(req, "Success")

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="roamhub-pbb-")
        cls.home = Member("chirp", HOME, "key-home-0123456789", mode="sync", behaviour="chirpstack",
                          answer_fn=cls.answer_home)
        table = {
            "networks": [{"net_id": n, "name": "net" + n, "listed": True} for n in (FWD, HOME)],
            "members": [{"id": "tts", "net_ids": [FWD], "api_key_hashes": [sha256_hex("unused-tts-key-000")]},
                        {"id": "chirp", "net_ids": [HOME], "api_key_hashes": [sha256_hex(cls.home.key)]}],
            "endpoints": [{"id": "chirp", "net_id": HOME, "url": cls.home.url,
                           "protocol_version": "PROTOCOL_VERSION_1_0", "timeout_ms": 1500,
                           "strict_enums": True, "js_answer_mode": "ANSWER_MODE_SYNC"}],
            "devaddr_blocks": [{"prefix": "0a000000/7", "net_id": HOME}],
            "join_routes": [{"join_eui": "70B3D57ED0000000/56", "home_net_id": HOME}],
            "policies": [{"forwarder_net_id": FWD, "home_net_id": HOME, "uplink": dict(ALL_UP),
                          "downlink": dict(ALL_DOWN)}]}
        cls.hub = Hub(table, workers=2, config={
            "admin": admin_config(cls.dir),
            "grpc": {"address": "127.0.0.1", "port": 0, "hold_ms": 2000, "queue_max": 40}})
        cls.home.hub = cls.hub
        adm = AdminClient(cls.hub)
        op = adm.token(adm.operator_key())
        key, _ = adm.create_key(op, net_id=FWD, rights=["RIGHT_DATA_PLANE"])
        kid, secret = key.split(":", 1)
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": kid,
                                       "client_secret": secret, "scope": "networks"}).encode()
        st, data, _ = adm.raw("POST", "/api/v1/oauth/token", body=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert st == 200, data
        cls.tok = json.loads(data)["access_token"]
        cls.ch = grpc.insecure_channel("127.0.0.1:%d" % cls.hub.grpc_port)
        cls.md = (("authorization", "Bearer " + cls.tok),)
        cls.fwd_stream = Collector(rtg.ForwarderDataStub(cls.ch).Subscribe(
            rt.SubscribeForwarderRequest(forwarder_net_id=0x14, forwarder_tenant_id="",
                                         forwarder_cluster_id="eu1", group="eu1"),
            metadata=cls.md), v3.RoutedDownlinkMessage)
        time.sleep(0.3)

    @classmethod
    def tearDownClass(cls):
        cls.fwd_stream.cancel()
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

if __name__ == "__main__":
    unittest.main()
