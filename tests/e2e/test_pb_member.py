"""roamns in Packet Broker mode as a The Things Stack-like member (issue 12): two such members, C
and D, peer through roamhubd's gRPC data plane only (OAuth2 token, 4-stream subscriptions per
role, Publish, delivery reports). roamsim plays C's devices heard only by D's gateways and D's
devices heard only by C's gateways: OTAA joins (join-accept routed back through the hub with the
forwarder's gateway token), confirmed uplinks and their ACKs, judged by roamsim itself (RX
window, tmst, MIC, decryption)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pb_world import PB_C_DEVICES, PB_D_DEVICES, PBWorld, hub_metric, wait_subscribed  # noqa: E402
from roaming_world import free_port  # noqa: E402
from roamhub_harness import AdminClient  # noqa: E402


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
        # the copies from both gateways were merged into one uplink (deduplication window)
        self.assertTrue(all(len(u["gateways"]) == 2 for u in ups), ups)
        hs, fs = home.stats(), forwarder.stats()
        self.assertGreaterEqual(hs["pb_uplinks_received"], s["uplinks_sent"] + s["join_requests"])
        self.assertGreater(fs["pb_published"], 0)
        self.assertGreaterEqual(fs["pb_downlinks_received"], s["acks"] + s["joins_accepted"])
        self.assertEqual(fs["pb_downlink_failures"], 0)
        # every routed downlink went out on a gateway once (counted once)
        self.assertEqual(fs["downlinks_sent"], fs["pb_downlinks_received"], fs)
        self.assertEqual(hs["pb_call_errors"] + fs["pb_call_errors"], 0, msg)
        # the hub counted the pair's traffic with Packet Broker on both sides, nothing else
        pair = {"forwarder": forwarder.net_id.lower(), "home": home.net_id.lower()}
        pb = dict(pair, forwarder_protocol="packet_broker", home_protocol="packet_broker")
        total = hub_metric(self.w.hub, "roamhub_messages_total", pair)
        self.assertGreaterEqual(total, s["uplinks_sent"] + s["join_requests"] + s["acks"])
        self.assertEqual(hub_metric(self.w.hub, "roamhub_messages_total", pb), total)

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


    def test_4_gateways_reported_to_the_mapper(self):
        # the forwarders' gateways reached the hub's gateway store through Mapper/UpdateGateway:
        # position (roamsim's stat) and online state
        adm = AdminClient(self.w.hub)
        op = adm.token(adm.operator_key())
        for fwd, lat in ((self.w.d, 52.37), (self.w.c, 52.37)):
            self.assertGreaterEqual(fwd.stats()["pb_gateway_updates"], 2)
            st, doc, _ = adm.call("GET", "/gateways?net_id=" + fwd.net_id, token=op)
            self.assertEqual(st, 200, doc)
            gws = [g for g in doc["gateways"] if g.get("id", "").startswith("00800000a000000")]
            self.assertEqual(len(gws), 2, doc)
            for g in gws:
                self.assertAlmostEqual(g["lat"], lat, places=1)
                self.assertAlmostEqual(g["lon"], 4.89, places=1)
                self.assertTrue(g["online"], g)


class PBMemberResilienceTest(unittest.TestCase):
    """The agent's behaviour over time, over TLS (ALPN h2, the hub's certificate verified) as in
    production: tokens refreshed before they expire (admin.jwt_ttl_s 10), and a hub restart:
    every stream ends, the member re-dials with back-off and re-subscribes, and traffic flows
    again (same ports: the hub's configuration is unchanged)."""

    @classmethod
    def setUpClass(cls):
        cls.w = PBWorld(hub_config={"admin": {"jwt_ttl_s": 10, "port": free_port()},
                                    "grpc": {"port": free_port()}}, tls=True)

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def wait_stat(self, net, key, at_least, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if net.stats()[key] >= at_least:
                return
            time.sleep(0.2)
        self.fail("%s: %s stayed below %d: %s\n%s" % (net.name, key, at_least, net.stats(),
                                                       net.logs()[-3000:]))

    def test_0_tls(self):
        self.assertIn("tls=h2", self.w.hub.logs())   # the listener's start line
        for n in (self.w.c, self.w.d):
            self.assertIn("tls_ca_file", n.config["packet_broker"])
            self.assertFalse(n.config["packet_broker"]["insecure"])
            self.assertGreaterEqual(n.stats()["pb_connects"], 1)

    def test_1_token_refreshed_before_expiry(self):
        # a 10 s token is fetched again after 6 s, then again: calls never went out unauthenticated
        self.wait_stat(self.w.c, "pb_tokens", 3, 20)
        rc, s = self.w.roamsim(self.w.d, PB_C_DEVICES[2:], uplinks=2)   # the ABP device
        self.assertTrue(rc == 0 and s["ok"] and s["acks"] == s["confirmed_sent"] > 0, s)
        for n in (self.w.c, self.w.d):
            st = n.stats()
            self.assertEqual(st["pb_call_errors"], 0, st)
            self.assertEqual(st["pb_token_errors"], 0, st)
            self.assertEqual(st["pb_subscribe_ends"], 0, st)

    def test_2_hub_restart(self):
        before = {n.name: n.stats() for n in (self.w.c, self.w.d)}
        self.w.hub.stop()
        self.w.hub.start()
        wait_subscribed(self.w.hub, 16, timeout=30)
        for n in (self.w.c, self.w.d):
            st = n.stats()
            self.assertGreater(st["pb_connects"], before[n.name]["pb_connects"], st)
            self.assertGreaterEqual(st["pb_subscribe_ends"], 8, st)   # its 4 + 4 streams ended
        # the ABP device again, with counters above those of test_1 (C refuses replays)
        rc, s = self.w.roamsim(self.w.d, [dict(PB_C_DEVICES[2], fcnt_up=100)], uplinks=2)
        self.assertTrue(rc == 0 and s["ok"] and s["acks"] == s["confirmed_sent"] > 0,
                        "%s\n%s" % (s, self.w.c.logs()[-3000:]))


if __name__ == "__main__":
    unittest.main()
