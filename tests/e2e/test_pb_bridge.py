"""A Packet Broker member (roamns in Packet Broker mode, as The Things Stack) and TS002 members
(roamns over TS002) in one world, bridged by the hub (issue 12, "Bridging"), both ways:
  - B's devices (TS002 home network, asynchronous) heard only by C's gateways (Packet Broker
    forwarder): the PRStartReq built from C's Publish, B's PRStartAns with the join-accept and
    B's XmitDataReq ACKs routed back on C's Subscribe stream with C's identity and gateway token;
  - C's devices (Packet Broker home network) heard only by A's gateways (TS002 forwarder, sync):
    A's PRStartReq routed to C's subscription as a RoutedUplinkMessage, C's Publish of the
    join-accept / ACK answered to A as PRStartAns / XmitDataReq, C's report as A's Result.
Joins and confirmed uplinks in each direction; roamsim judges every downlink (RX1, tmst, MIC,
decryption). The hub counts each direction with the protocol each side spoke."""
import os
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pb_world import PB_C_DEVICES, PBWorld, hub_metric  # noqa: E402
from roaming_world import B_DEVICES  # noqa: E402


class PBBridgeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = PBWorld(ts002=True)

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def logs(self):
        return "\n".join("%s:\n%s" % (n.name, n.logs()[-3000:]) for n in (self.w.a, self.w.b, self.w.c)) + \
            "\nhub:\n" + self.w.hub.logs()[-3000:]

    def check(self, home, forwarder, devices, rc, s):
        otaa = [d for d in devices if "app_key" in d]
        msg = "%s\n%s" % (s, self.logs())
        self.assertEqual(rc, 0, msg)
        self.assertTrue(s["ok"], msg)
        self.assertEqual(s["joins_accepted"], len(otaa), msg)
        self.assertGreater(s["confirmed_sent"], 0, msg)
        self.assertEqual(s["acks"], s["confirmed_sent"], msg)
        self.assertEqual(s["downlinks"]["late"] + s["downlinks"]["wrong"], 0, msg)
        ups = [u for u in home.uplinks() if u["dev_eui"] in {d["dev_eui"] for d in devices}]
        self.assertEqual(len(ups), s["uplinks_sent"], msg)
        self.assertTrue(all(u["via"] == "roaming" and u["forwarder_net_id"] == forwarder.net_id
                            for u in ups), ups)

    def test_1_b_devices_through_c_gateways(self):
        """Packet Broker forwarder -> TS002 home network (async)."""
        rc, s = self.w.roamsim(self.w.c, B_DEVICES, uplinks=3, confirmed_ratio=1.0)
        self.check(self.w.b, self.w.c, B_DEVICES, rc, s)
        cs = self.w.c.stats()
        self.assertGreaterEqual(self.w.b.stats()["xmit_req_sent"], s["acks"])
        self.assertEqual(cs["pb_downlink_failures"], 0, cs)
        self.assertEqual(cs["downlinks_sent"], cs["pb_downlinks_received"], cs)
        self.assertGreater(hub_metric(self.w.hub, "roamhub_events_total",
                                      {"event": "pb_bridged_uplink"}), 0)
        # C publishes each uplink once per gateway (2): the hub merges the copies into one
        # PRStartReq, so B (as ChirpStack would) refuses none as a replay
        bs = self.w.b.stats()
        self.assertEqual((bs["replays"], bs["mic_failures"]), (0, 0), bs)
        self.assertGreater(hub_metric(self.w.hub, "roamhub_events_total",
                                      {"event": "pb_bridge_merged"}), 0)
        self.assertEqual(hub_metric(self.w.hub, "roamhub_relay_outcomes_total",
                                    {"outcome": "receiver_error"}), 0)
        self.check_protocols(self.w.c, self.w.b, "packet_broker", "ts002", s)

    def check_protocols(self, fwd, home, fwd_proto, home_proto, s):
        """The hub's counters of the pair: uplinks and downlinks forwarded, each side named with
        its protocol (a downlink's forwarder is still the network whose gateways send it); no
        forwarded message of the pair with the protocols the other way round."""
        pair = {"forwarder": fwd.net_id.lower(), "home": home.net_id.lower(), "outcome": "forwarded"}
        mine = dict(pair, forwarder_protocol=fwd_proto, home_protocol=home_proto)
        def count(*classes):
            return sum(hub_metric(self.w.hub, "roamhub_messages_total", dict(mine, **{"class": c}))
                       for c in classes)
        self.assertGreaterEqual(count("uplink_app", "uplink_mac"), s["uplinks_sent"], s)
        self.assertGreaterEqual(count("join_request"), s["joins_accepted"], s)
        self.assertGreater(count("join_accept", "downlink_mac", "downlink_app"), 0, s)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.w.hub.admin_port) as r:
            text = [x for x in r.read().decode().splitlines()
                    if x.startswith("roamhub_messages_total")]
        self.assertEqual(hub_metric(self.w.hub, "roamhub_messages_total", pair),
                         hub_metric(self.w.hub, "roamhub_messages_total", mine), "\n".join(text))

    def test_2_c_devices_through_a_gateways(self):
        """TS002 forwarder (sync) -> Packet Broker home network."""
        rc, s = self.w.roamsim(self.w.a, PB_C_DEVICES, uplinks=3, confirmed_ratio=1.0)
        self.check(self.w.c, self.w.a, PB_C_DEVICES, rc, s)
        cs, as_ = self.w.c.stats(), self.w.a.stats()
        self.assertGreaterEqual(cs["pb_downlinks_published"], s["acks"] + s["joins_accepted"])
        self.assertGreaterEqual(as_["roaming_forwarded"], s["uplinks_sent"] + s["join_requests"])
        self.assertEqual(as_["roaming_forward_errors"], 0, as_)
        self.check_protocols(self.w.a, self.w.c, "ts002", "packet_broker", s)

if __name__ == "__main__":
    unittest.main()
