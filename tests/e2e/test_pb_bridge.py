"""A Packet Broker member (roamns in Packet Broker mode, as The Things Stack) and TS002 members
(roamns over TS002) in one world, bridged by the hub (issue 12, "Bridging"): B's devices (TS002
home network, asynchronous) heard only by C's gateways (Packet Broker forwarder) join through the
hub — the PRStartReq built from C's Publish, B's PRStartAns with the join-accept routed back on
C's Subscribe stream with C's identity and gateway token — and their uplinks reach B with C's
NetID as forwarder; roamsim judges every join-accept (RX1, tmst, MIC)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pb_world import C_NET, PBWorld, hub_metric  # noqa: E402
from roaming_world import B_DEVICES  # noqa: E402


class PBBridgeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = PBWorld(ts002=True)

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def logs(self):
        return "\n".join("%s:\n%s" % (n.name, n.logs()[-3000:]) for n in (self.w.b, self.w.c)) + \
            "\nhub:\n" + self.w.hub.logs()[-3000:]

    def test_b_devices_join_and_uplink_through_c_gateways(self):
        otaa = [d for d in B_DEVICES if "app_key" in d]
        rc, s = self.w.roamsim(self.w.c, B_DEVICES, uplinks=2, confirmed_ratio=0.0)
        msg = "%s\n%s" % (s, self.logs())
        self.assertEqual(rc, 0, msg)
        self.assertTrue(s["ok"], msg)
        self.assertEqual(s["joins_accepted"], len(otaa), msg)
        self.assertEqual(s["downlinks"]["late"] + s["downlinks"]["wrong"], 0, msg)
        ups = [u for u in self.w.b.uplinks() if u["forwarder_net_id"] == C_NET]
        self.assertEqual(len(ups), s["uplinks_sent"], msg)
        self.assertTrue(all(u["via"] == "roaming" for u in ups))
        self.assertGreaterEqual(self.w.b.stats()["roaming_home_joins"], len(otaa))
        self.assertGreaterEqual(self.w.c.stats()["pb_downlinks_received"], len(otaa))
        cs = self.w.c.stats()
        self.assertEqual(cs["pb_downlink_failures"], 0, msg)
        self.assertEqual(cs["downlinks_sent"], cs["pb_downlinks_received"], cs)
        self.assertGreater(hub_metric(self.w.hub, "roamhub_events_total",
                                      {"event": "pb_bridged_uplink"}), 0)


if __name__ == "__main__":
    unittest.main()
