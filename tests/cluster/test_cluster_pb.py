"""Packet Broker data plane across roamhubd cluster nodes (issue 13 "PB-API subscriptions span
the cluster", issue 12 bridging; broker/cluster_pb.c): subscription groups are NATS queue
groups, so a message routed on one node reaches each group once, wherever its streams are; a
Packet Broker home network's answer to a TS002 forwarder's transaction held by another node is
handed to that node. Against 3 real nats-server processes (JetStream cluster) and 3 real roamhubd
nodes on 127.0.0.1 with gRPC listeners, played by Python grpcio clients (the stubs of
tests/integration/test_pb_dataplane.py)."""
import os
import shutil
import sys
import tempfile
import threading
import json
import time
import types
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from cluster_harness import cluster_section, wait_readyz  # noqa: E402
from roamhub_harness import (ALL_DOWN, ALL_UP, AdminClient, Hub, Member, admin_config,  # noqa: E402
                             answer, sha256_hex)
from test_cluster import NodesTest  # noqa: E402
import test_pb_bridge  # noqa: E402  (its helpers; not its TestCase, which would run here)
from test_pb_bridge import (JOIN_ACCEPT, PB_JOIN_EUI, join_request, ts002_uplink,  # noqa: E402
                            uplink)
from test_pb_dataplane import Collector, data_up, grpc, rt, rtg, v3  # noqa: E402

FWD, TSFWD, PBHOME, HOME = "000014", "000202", "000013", "000505"
EVENT = 'roamhub_events_total{event="%s"}'


class PBClusterTest(NodesTest):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="roamhub-cpb-")
        self.secret = os.path.join(self.dir, "jwt.secret")
        with open(self.secret, "w") as f:
            f.write("s" * 16 + os.urandom(24).hex())
        self.token_key = os.path.join(self.dir, "token.key")  # the cluster's sealed-token key
        with open(self.token_key, "w") as f:
            f.write(os.urandom(32).hex())
        self.tsfwd = Member("chirpfwd", TSFWD, "key-tsfwd-0123456789", mode="sync",
                            behaviour="chirpstack", answer_fn=lambda req: answer(req, "Success"))
        self.home = Member("chirp", HOME, "key-home-0123456789", mode="sync",
                           behaviour="chirpstack", answer_fn=lambda req: answer(req, "Success"))
        self.calls = []
        self.channels = []

    def tearDown(self):
        for c in self.calls:
            c.cancel()
        for ch in self.channels:
            ch.close()
        self.tsfwd.stop()
        self.home.stop()
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def table(self):
        return {
            "networks": [{"net_id": n, "name": "net" + n, "listed": True}
                         for n in (FWD, TSFWD, PBHOME, HOME)],
            "members": [{"id": "tts", "net_ids": [FWD],
                         "api_key_hashes": [sha256_hex("unused-tts-key-000")]},
                        {"id": "ttshome", "net_ids": [PBHOME],
                         "api_key_hashes": [sha256_hex("unused-tts-key-001")]},
                        {"id": "chirpfwd", "net_ids": [TSFWD],
                         "api_key_hashes": [sha256_hex(self.tsfwd.key)]},
                        {"id": "chirp", "net_ids": [HOME],
                         "api_key_hashes": [sha256_hex(self.home.key)]}],
            "endpoints": [{"id": m.name, "net_id": m.net_id, "url": m.url,
                           "protocol_version": "PROTOCOL_VERSION_1_0", "timeout_ms": 1500,
                           "strict_enums": True, "js_answer_mode": "ANSWER_MODE_SYNC"}
                          for m in (self.tsfwd, self.home)],
            "devaddr_blocks": [{"prefix": "26000000/7", "net_id": PBHOME},
                               {"prefix": "0a000000/7", "net_id": HOME}],
            "join_routes": [{"join_eui": "70B3D57ED0001000/56", "home_net_id": PBHOME}],
            "policies": [{"forwarder_net_id": f, "home_net_id": PBHOME, "uplink": dict(ALL_UP),
                          "downlink": dict(ALL_DOWN)} for f in (FWD, TSFWD)] +
                        [{"forwarder_net_id": FWD, "home_net_id": HOME, "uplink": dict(ALL_UP),
                          "downlink": dict(ALL_DOWN)}]}

    def start(self, n=3):
        urls = self.nats.urls()
        nodes = []
        for i in range(1, n + 1):
            d = os.path.join(self.dir, "n%d" % i)
            os.makedirs(d, exist_ok=True)
            h = Hub(self.table(), workers=2, config={
                "admin": admin_config(d, jwt_secret_file=self.secret),
                "grpc": {"address": "127.0.0.1", "port": 0, "hold_ms": 2000, "queue_max": 40,
                         "token_key_file": self.token_key},
                "cluster": cluster_section(i, urls[i % 3:] + urls[:i % 3], **self.stream)})
            self.hubs.append(h)
            nodes.append(h)
        for h in nodes:
            wait_readyz(h, 200, "ready\n")
        self.tsfwd.hub = nodes[0]
        self.home.hub = nodes[0]
        # data-plane keys written on node 1 (replicated); tokens signed with the shared secret
        adm = AdminClient(nodes[0])
        op = adm.token(adm.operator_key())
        self.fwd_md = self.agent_md(adm, op, FWD)
        self.home_md = self.agent_md(adm, op, PBHOME)
        time.sleep(0.3)  # the keys applied on every node
        return nodes

    @staticmethod
    def agent_md(adm, op, net_id):
        token = test_pb_bridge.BridgeWorld.agent_token(adm, op, net_id)
        return (("authorization", "Bearer " + token),)

    def channel(self, hub):
        ch = grpc.insecure_channel("127.0.0.1:%d" % hub.grpc_port)
        self.channels.append(ch)
        return ch

    def home_streams(self, hub, group, n):
        ch = self.channel(hub)
        out = []
        for _ in range(n):
            c = Collector(rtg.HomeNetworkDataStub(ch).Subscribe(
                rt.SubscribeHomeNetworkRequest(home_network_net_id=0x13,
                                               home_network_cluster_id="nam1", group=group),
                metadata=self.home_md), v3.RoutedUplinkMessage)
            self.calls.append(c)
            out.append(c)
        return out

    def fwd_stream(self, hub):
        fs = Collector(rtg.ForwarderDataStub(self.channel(hub)).Subscribe(
            rt.SubscribeForwarderRequest(forwarder_net_id=0x14, forwarder_tenant_id="",
                                         forwarder_cluster_id="eu1", group="eu1"),
            metadata=self.fwd_md), v3.RoutedDownlinkMessage)
        self.calls.append(fs)
        self.wait_subscribed(hub, 1)
        self.wait_interest("f", 0x14, 1)
        return fs

    def wait_subscribed(self, hub, streams):
        deadline = time.time() + 5
        while hub.metric("roamhub_pb_subscription_streams") < streams:
            self.assertLess(time.time(), deadline, hub.logs()[-2000:])
            time.sleep(0.05)

    def interest(self, role, net_id):
        """The NATS queue groups (= subscription groups) each NATS server routes
        PREFIX.pb.<role>.<NetID> to: its own clients' and those its routes told it about."""
        subject = "%s.pb.%s.%06X" % (self.stream["subject_prefix"], role, net_id)
        out = []
        for port in self.nats.http_ports:
            def subs(path, key):
                with urllib.request.urlopen("http://127.0.0.1:%d/%s" % (port, path),
                                            timeout=2) as r:
                    return [x for c in json.load(r)[key] for x in
                            c.get("subscriptions_list_detail") or []]
            out.append(sorted({x.get("qgroup") for x in subs("routez?subs=detail", "routes") +
                               subs("connz?subs=detail", "connections")
                               if x.get("subject") == subject}))
        return out

    def wait_interest(self, role, net_id, n):
        """Until every NATS server routes PREFIX.pb.<role>.<NetID> to n groups' queues."""
        deadline = time.time() + 5
        while [len(q) for q in self.interest(role, net_id)] != [n] * len(self.nats.http_ports):
            self.assertLess(time.time(), deadline, self.interest(role, net_id))
            time.sleep(0.05)

    def publish(self, hub, phy):
        return rtg.ForwarderDataStub(self.channel(hub)).Publish(uplink(phy), metadata=self.fwd_md,
                                                                timeout=3)

    def wait_total(self, streams, n, timeout=5.0, settle=0.5):
        deadline = time.time() + timeout
        while sum(len(s.msgs) for s in streams) < n and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(settle)  # no more than n: one copy per group
        return sum(len(s.msgs) for s in streams)

    def events(self, h, name):
        return h.metric(EVENT % name)

    def wait_event(self, h, name, value, timeout=5.0):
        deadline = time.time() + timeout
        while self.events(h, name) < value:
            self.assertLess(time.time(), deadline, "%s never %s:\n%s" % (name, value,
                                                                         h.logs()[-3000:]))
            time.sleep(0.05)

    # ---------------------------------------------------------------- subscriptions

    def test_uplink_on_node1_reaches_one_group_of_4_streams_on_node3_once(self):
        n1, n2, n3 = self.start()
        streams = self.home_streams(n3, "nam1", 4)
        self.wait_subscribed(n3, 4)
        self.wait_interest("h", 0x13, 1)
        for i in range(8):
            self.assertTrue(self.publish(n1, data_up(0x26000100 + i, fcnt=i)).id)
        self.assertEqual(self.wait_total(streams, 8), 8, n3.logs()[-2000:])
        ids = [m.id for s in streams for m in s.msgs]
        self.assertEqual(len(set(ids)), 8)
        self.assertGreaterEqual(sum(1 for s in streams if s.msgs), 2, "balanced over the streams")
        for s in streams:
            for m in s.msgs:
                self.assertEqual((m.forwarder_net_id, m.forwarder_cluster_id), (0x14, "eu1"))
                self.assertEqual(m.message.gateway_uplink_token, uplink(b"").message
                                 .gateway_uplink_token)
        self.assertEqual(self.events(n1, "pb_to_nodes"), 8)
        self.assertEqual(self.events(n3, "pb_from_node"), 8)
        self.assertEqual(self.events(n2, "pb_from_node"), 0)

    def test_two_groups_on_nodes_2_and_3_each_get_one_copy(self):
        n1, n2, n3 = self.start()
        a = self.home_streams(n2, "groupA", 2)
        b = self.home_streams(n3, "groupB", 2) + self.home_streams(n2, "groupB", 2)
        self.wait_subscribed(n2, 4)
        self.wait_subscribed(n3, 2)
        self.wait_interest("h", 0x13, 2)  # A (node 2), B (nodes 2 and 3)
        for i in range(6):
            self.publish(n1, data_up(0x26000200 + i, fcnt=i))
        self.assertEqual(self.wait_total(a, 6), 6)
        self.assertEqual(self.wait_total(b, 6), 6)  # streams on 2 nodes, still one copy
        # routed on node 3, where groupB has streams: B's copy stays local, A's goes to node 2
        before = self.events(n3, "pb_from_node")
        for i in range(4):
            self.publish(n3, data_up(0x26000300 + i, fcnt=i))
        self.assertEqual(self.wait_total(a, 10), 10)
        self.assertEqual(self.wait_total(b, 10), 10)
        self.assertEqual(sum(len(s.msgs) for s in b[:2]) >= 4, True)
        self.assertEqual(self.events(n3, "pb_from_node"), before)  # nothing came back to 3

    def test_downlink_on_node3_reaches_the_forwarders_stream_on_node2(self):
        n1, n2, n3 = self.start()
        fs = self.fwd_stream(n2)
        dm = v3.DownlinkMessage(phy_payload=bytes([0x60]) + bytes(11),
                                gateway_uplink_token=b"gw-token", region=v3.EU_863_870)
        dm.rx1.frequency = 868100000
        dm.rx1.data_rate.lora.spreading_factor = 7
        dm.rx1.data_rate.lora.bandwidth = 125000
        dm.rx1_delay.seconds = 1
        resp = rtg.HomeNetworkDataStub(self.channel(n3)).Publish(rt.PublishDownlinkMessageRequest(
            home_network_net_id=0x13, home_network_cluster_id="nam1", forwarder_net_id=0x14,
            forwarder_tenant_id="", forwarder_cluster_id="eu1", message=dm),
            metadata=self.home_md, timeout=3)
        self.assertTrue(resp.id)
        self.assertEqual(self.wait_total([fs], 1), 1, n2.logs()[-2000:])
        m = fs.msgs[0]
        self.assertEqual((m.forwarder_net_id, m.forwarder_cluster_id), (0x14, "eu1"))
        self.assertEqual(m.message.gateway_uplink_token, b"gw-token")

    # ---------------------------------------------------------------- bridged answers

    def post_async(self, hub, msg, key):
        box = {}

        def run():
            box["t0"] = time.time()
            st, ans, _ = hub.post(msg, key, timeout=10)
            box["r"] = (st, ans, time.time() - box["t0"])
        th = threading.Thread(target=run, daemon=True)
        th.start()
        return th, box

    def as_home(self, hub):
        """What test_pb_bridge's home_publish/home_report use: the home on this node."""
        return types.SimpleNamespace(ch=self.channel(hub), home_md=self.home_md)

    def test_ts002_prstartreq_on_node1_answered_by_the_home_on_node3(self):
        n1, n2, n3 = self.start()
        streams = self.home_streams(n2, "nam1", 4)
        self.wait_subscribed(n2, 4)
        self.wait_interest("h", 0x13, 1)
        # a join-request: the report waits, the join-accept published on node 3 answers it
        th, box = self.post_async(n1, ts002_uplink(join_request(PB_JOIN_EUI), 911), self.tsfwd.key)
        self.assertEqual(self.wait_total(streams, 1, settle=0), 1, n2.logs()[-2000:])
        r = [m for s in streams for m in s.msgs][0]
        # test_pb_bridge's helpers, as the home network on node 3
        test_pb_bridge.BridgeWorld.home_publish(self.as_home(n3), r, JOIN_ACCEPT)
        th.join(10)
        st, ans, _ = box["r"]
        self.assertEqual(st, 200)
        self.assertEqual((ans["MessageType"], ans["Result"]["ResultCode"]),
                         ("PRStartAns", "Success"), (ans, n1.logs()[-2000:]))
        self.assertEqual(bytes.fromhex(ans["PHYPayload"]), JOIN_ACCEPT)
        self.assertEqual(ans["DLMetaData"]["FNSULToken"], "f0f1f2f3")  # restored on node 1
        self.assertEqual(self.events(n3, "answer_handed_to_node"), 1)
        self.wait_event(n1, "pb_bridged_answer_from_node", 1)
        # a data uplink: the home's report NOT_FOUND on node 3 is the forwarder's Result
        th, box = self.post_async(n1, ts002_uplink(data_up(0x26000042, fcnt=1), 912),
                                  self.tsfwd.key)
        self.assertEqual(self.wait_total(streams, 2, settle=0), 2)
        r = [m for s in streams for m in s.msgs if m.message.phy_payload.plain[0] == 0x40][0]
        test_pb_bridge.BridgeWorld.home_report(self.as_home(n3), r, error=v3.NOT_FOUND)
        th.join(10)
        st, ans, el = box["r"]
        self.assertEqual(ans["Result"]["ResultCode"], "UnknownDevAddr", ans)
        self.assertIn("NOT_FOUND", ans["Result"].get("Description", ""))
        self.assertLess(el, 1.4, "answered by the report, not at the deadline")
        self.assertEqual(self.events(n3, "answer_handed_to_node"), 2)
        self.wait_event(n1, "pb_bridged_answer_from_node", 2)

    def test_ts002_home_xmitdatareq_on_node1_completed_by_the_forwarders_report_on_node3(self):
        n1, n2, n3 = self.start()
        fs = self.fwd_stream(n2)
        self.publish(n1, data_up(0x0A001236, fcnt=5))  # to the TS002 home network
        token = self.home.get(timeout=3, mtype="PRStartReq")["ULMetaData"]["FNSULToken"]
        xmit = {"ProtocolVersion": "1.0", "SenderID": HOME, "ReceiverID": FWD,
                "TransactionID": 4711, "MessageType": "XmitDataReq",
                "PHYPayload": (bytes([0x60]) + (0x0A001236).to_bytes(4, "little") +
                               b"\x00\x01\x00\x01\xaa\x01\x02\x03\x04").hex(),
                "DLMetaData": {"DLFreq1": 868.1, "DataRate1": 5, "RXDelay1": 1,
                               "ClassMode": "A", "FNSULToken": token}}
        th, box = self.post_async(n1, xmit, self.home.key)  # held by node 1
        self.assertEqual(self.wait_total([fs], 1, settle=0), 1, n2.logs()[-2000:])
        m = fs.msgs[0]
        self.assertEqual(m.message.gateway_uplink_token, uplink(b"").message.gateway_uplink_token)
        sc = v3.DownlinkMessageDeliveryStateChange(
            id=m.id, home_network_net_id=m.home_network_net_id, forwarder_net_id=0x14,
            forwarder_tenant_id="", forwarder_cluster_id="eu1",
            downlink_token=m.message.downlink_token, state=v3.PROCESSED)
        sc.error = v3.TOO_LATE
        rtg.ForwarderDataStub(self.channel(n3)).ReportDownlinkMessageDeliveryState(
            rt.DownlinkMessageDeliveryStateChangeRequest(state_change=sc), metadata=self.fwd_md,
            timeout=3)
        th.join(10)
        st, ans, el = box["r"]
        self.assertEqual((ans["MessageType"], ans["TransactionID"]), ("XmitDataAns", 4711))
        self.assertEqual(ans["Result"]["ResultCode"], "XmitFailed", (ans, n1.logs()[-2000:]))
        self.assertIn("TOO_LATE", ans["Result"].get("Description", ""))
        self.assertEqual(self.events(n3, "answer_handed_to_node"), 1)
        self.wait_event(n1, "pb_bridged_answer_from_node", 1)

    def test_no_stream_anywhere_fails_in_time(self):
        n1, n2, n3 = self.start()
        # a group that had streams on node 2 and closed them: node 2 left its NATS queue
        gone = self.home_streams(n2, "nam1", 2)
        self.wait_subscribed(n2, 2)
        self.wait_interest("h", 0x13, 1)
        for c in gone:
            c.cancel()
        self.wait_interest("h", 0x13, 0)  # node 2 left the group's queue
        t0 = time.time()
        st, ans, _ = n1.post(ts002_uplink(join_request(PB_JOIN_EUI), 913), self.tsfwd.key,
                             timeout=10)
        el = time.time() - t0
        self.assertEqual(st, 200)
        self.assertNotEqual(ans["Result"]["ResultCode"], "Success", ans)
        # refused when NATS says no node subscribes, not at the join-accept deadline (5.7 s)
        self.assertIn("no endpoint or subscription", ans["Result"].get("Description", ""), ans)
        self.assertLess(el, 2.0, "refused at once")
        self.wait_event(n1, "pb_no_subscriber_in_cluster", 1)
        self.assertEqual(self.events(n1, "pb_refused_no_subscriber"), 1)
        # a Packet Broker forwarder's uplink: accepted, counted unrouted
        self.publish(n1, data_up(0x26000400, fcnt=1))
        self.wait_event(n1, "pb_no_subscriber_in_cluster", 2)
        self.assertEqual(self.events(n2, "pb_from_node"), 0)


if __name__ == "__main__":
    unittest.main()
