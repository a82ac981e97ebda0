"""roamns in Packet Broker mode as a The Things Stack-like member (issue 12): two such members, C
and D, peer through roamhubd's gRPC data plane only (OAuth2 token, 4-stream subscriptions per
role, Publish, delivery reports). roamsim plays C's devices heard only by D's gateways and D's
devices heard only by C's gateways: OTAA joins (join-accept routed back through the hub with the
forwarder's gateway token), confirmed uplinks and their ACKs, judged by roamsim itself (RX
window, tmst, MIC, decryption)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pb_world import PB_C_DEVICES, PB_D_DEVICES, PBWorld, hub_metric  # noqa: E402


class PBMemberTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = PBWorld()

    @classmethod
    def tearDownClass(cls):
        cls.w.close()   # fails unless every process exited cleanly without sanitizer reports

    def check_run(self, home, forwarder, devices, rc, s):
        n_otaa = sum(1 for d in devices if "app_key" in d)
        msg = "%s\nhome log:\n%s\nforwarder log:\n%s" % (s, home.logs()[-4000:],
                                                          forwarder.logs()[-4000:])
        self.assertEqual(rc, 0, msg)
        self.assertTrue(s["ok"], msg)
        self.assertEqual(s["joins_accepted"], n_otaa, msg)
        self.assertGreater(s["confirmed_sent"], 0, msg)
        self.assertEqual(s["acks"], s["confirmed_sent"], msg)
        self.assertEqual(s["downlinks"]["late"], 0, msg)
        self.assertEqual(s["downlinks"]["wrong"], 0, msg)
        # the home network decrypted every uplink, and knows they came over the hub from the
        # forwarder's NetID
        ups = [u for u in home.uplinks() if u["dev_eui"] in {d["dev_eui"] for d in devices}]
        self.assertEqual(len(ups), s["uplinks_sent"], msg)
        self.assertTrue(all(u["via"] == "roaming" and u["forwarder_net_id"] == forwarder.net_id
                            for u in ups), ups)
        self.assertTrue(all(u["gateways"] and u["gateways"][0]["lat"] is not None for u in ups), ups)
        hs, fs = home.stats(), forwarder.stats()
        self.assertGreaterEqual(hs["pb_uplinks_received"], s["uplinks_sent"] + s["join_requests"])
        self.assertGreater(fs["pb_published"], 0)
        self.assertGreaterEqual(fs["pb_downlinks_received"], s["acks"] + s["joins_accepted"])
        self.assertEqual(fs["pb_downlink_failures"], 0)
        # every routed downlink went out on a gateway once (counted once)
        self.assertEqual(fs["downlinks_sent"], fs["pb_downlinks_received"], fs)
        self.assertEqual(hs["pb_call_errors"] + fs["pb_call_errors"], 0, msg)

    def test_1_c_devices_through_d_gateways(self):
        rc, s = self.w.roamsim(self.w.d, PB_C_DEVICES)
        self.check_run(self.w.c, self.w.d, PB_C_DEVICES, rc, s)

    def test_2_d_devices_through_c_gateways(self):
        rc, s = self.w.roamsim(self.w.c, PB_D_DEVICES)
        self.check_run(self.w.d, self.w.c, PB_D_DEVICES, rc, s)

    def test_3_hub_counted_delivery_reports(self):
        # both members reported every routed message's fate with their own identity
        self.assertGreater(hub_metric(self.w.hub, "roamhub_events_total",
                                      {"event": "pb_uplink_report_ok"}), 0)
        self.assertGreater(hub_metric(self.w.hub, "roamhub_events_total",
                                      {"event": "pb_downlink_report_ok"}), 0)


if __name__ == "__main__":
    unittest.main()
