"""roamhubd cluster on NATS JetStream (issue 13): the `cluster` section, the node's NATS link and
stream set-up, /readyz, and the one routing table replicated through the stream (a write on one
node applies on the others; overlapping writes at once: exactly one wins; no NATS: writes 503,
relaying goes on; a node started empty catches up) — against real nats-server processes (3
clustered with JetStream) and real roamhubd nodes on 127.0.0.1."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from cluster_harness import NatsCluster, cluster_section, readyz, wait_readyz  # noqa: E402
from roamhub_harness import (ALL_DOWN, ALL_UP, ROAMHUBD, AdminClient, Hub, Member,  # noqa: E402
                             admin_config, free_port, member_records, merge, pr_start_req)

A, B = "000202", "000505"
DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"


def table(a, b):
    return merge(member_records(a), member_records(b), {
        "devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B}],
        "policies": [{"forwarder_net_id": A, "home_net_id": B, "uplink": ALL_UP,
                      "downlink": ALL_DOWN}]})


_stream_no = [0]


def fresh_stream():
    """A stream name and subject prefix of its own for one test (streams cannot share subjects)."""
    _stream_no[0] += 1
    return {"stream": "RH_T%d_%d" % (os.getpid(), _stream_no[0]),
            "subject_prefix": "roamhub.t%d.n%d" % (os.getpid(), _stream_no[0])}


class NodesTest(unittest.TestCase):
    """Shared by the test classes: one 3-server NATS cluster per class, members A and B, and
    every roamhubd node started by a test stopped cleanly (or killed by the test) afterwards."""
    nats = None

    @classmethod
    def setUpClass(cls):
        cls.nats = NatsCluster(3)
        try:
            cls.nats.wait_jetstream()
        except BaseException:  # tearDownClass does not run after a failed setUpClass
            cls.nats.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.nats:
            cls.nats.cleanup()

    def setUp(self):
        self.a = Member("netA", A, "key-A-0123456789")
        self.b = Member("netB", B, "key-B-0123456789")
        self.hubs = []
        self.stream = fresh_stream()

    def tearDown(self):
        for h in self.hubs:
            rc = h.stop()
            self.assertIn(rc, (0, -signal.SIGKILL), h.logs())
            self.assertNotIn("Sanitizer", h.logs())
            h.cleanup()
        self.a.stop()
        self.b.stop()


class ClusterTest(NodesTest):
    def node(self, node_id, urls, **cluster):
        h = Hub(table(self.a, self.b), config={"cluster": cluster_section(node_id, urls, **cluster)})
        self.hubs.append(h)
        return h

    def relay_ok(self, hub):
        st, ans, _ = hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        self.assertEqual(st, 200, hub.logs())
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
        self.b.get()

    def test_without_cluster_section_no_nats_and_ready(self):
        h = Hub(table(self.a, self.b))
        self.hubs.append(h)
        self.assertEqual(readyz(h), (200, "ready\n"))
        self.assertNotIn("cluster", h.logs())
        self.relay_ok(h)

    def test_three_nodes_share_one_r3_stream_and_become_ready(self):
        urls = self.nats.urls()
        # each node is given the servers in another order: any one of them is enough
        nodes = [self.node(i + 1, urls[i:] + urls[:i]) for i in range(3)]
        for n in nodes:
            wait_readyz(n, 200, "ready\n")
            self.assertIn('sub=cluster msg="nats connected"', n.logs())
        cfg = self.nats.streams(0)
        self.assertIn("RH_TEST", cfg, cfg)
        self.assertEqual(cfg["RH_TEST"]["num_replicas"], 3, cfg)
        self.assertEqual(cfg["RH_TEST"]["subjects"], ["roamhub.test.table"], cfg)
        for n in nodes:
            self.relay_ok(n)

    def test_unreachable_nats_not_ready_then_ready(self):
        port = free_port()
        h = self.node(7, ["nats://127.0.0.1:%d" % port], stream="RH_LATE", replicas=1)
        st, body = wait_readyz(h, 503, "not ready: cluster: not connected to any NATS server")
        self.assertEqual(h.get_admin("/healthz"), (200, "ok\n"))  # alive, just not ready
        self.relay_ok(h)  # the data plane does not wait for NATS
        # a single JetStream server appears on that port: the node connects and becomes ready
        solo = NatsCluster(1, client_ports=[port])
        try:
            wait_readyz(h, 200, "ready\n")
        finally:
            solo.cleanup()

    def test_member_rate_limit_is_each_nodes_share(self):
        """cluster.nodes = 3: a member's rate_limit_per_s holds for the 3 nodes together, each
        node enforcing a third of it (burst 2 s of the share); a single node, the whole rate."""
        def burst(h, n=12):
            t0, allowed = time.time(), 0
            for _ in range(n):
                st, ans, _ = h.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
                self.assertEqual(st, 200, h.logs()[-2000:])
                if ans["Result"]["ResultCode"] == "Success":
                    allowed += 1
                else:
                    self.assertIn("rate limit exceeded", ans["Result"]["Description"], ans)
            return allowed, time.time() - t0
        tbl = table(self.a, self.b)
        tbl["members"][0]["rate_limit_per_s"] = 6  # member A: 6/s, burst 12
        single = Hub(tbl)
        self.hubs.append(single)
        allowed, _ = burst(single)
        self.assertEqual(allowed, 12)
        h = Hub(tbl, config={"cluster": cluster_section(5, self.nats.urls(), nodes=3)})
        self.hubs.append(h)
        wait_readyz(h, 200, "ready\n")
        allowed, took = burst(h)
        # the node's share: 2/s, burst 4 (plus what refills while the 12 are sent)
        self.assertGreaterEqual(allowed, 4)
        self.assertLessEqual(allowed, 4 + int(2 * took) + 1, took)
        self.assertLess(allowed, 12)

    def test_stream_refused_keeps_node_not_ready_with_the_reason(self):
        # 5 replicas on a 3-server cluster: JetStream refuses; the node says why
        h = self.node(4, self.nats.urls(), stream="RH_FIVE", replicas=5)
        wait_readyz(h, 503, "creating stream RH_FIVE (replicas 5)")

    def test_kill9_one_nats_server_invisible_then_all_stopped_keeps_relaying(self):
        nats = NatsCluster(3)  # its own: this test kills and restarts servers
        self.addCleanup(nats.cleanup)
        nats.wait_jetstream()
        urls = nats.urls()
        h = self.node(2, urls)
        wait_readyz(h, 200, "ready\n")
        seen = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                seen.append(readyz(h)[0])
                time.sleep(0.05)
        t = threading.Thread(target=poll)
        t.start()
        try:
            nats.kill(0)  # kill -9 of one NATS server
            time.sleep(1.0)
            self.relay_ok(h)
        finally:
            stop.set()
            t.join()
        self.assertTrue(seen and all(s == 200 for s in seen), seen)
        wait_readyz(h, 200, "ready\n")  # reconnected to another server
        nats.kill(1, signal.SIGTERM)
        nats.kill(2, signal.SIGTERM)
        st, body = wait_readyz(h, 200, "relaying on the last table")
        self.assertIn("not connected to any NATS server", body)
        self.relay_ok(h)  # the data plane keeps working without NATS
        self.assertIn('sub=cluster msg="nats disconnected"', h.logs())
        for i in range(3):
            nats.start(i)
        wait_readyz(h, 200, "ready\n", timeout=30)


class AdminNodes(NodesTest):
    """Nodes start with an empty table; every record is written through one node's admin API
    (helpers only: the tests are in the subclasses)."""

    def node(self, node_id, nats=None, wait=True, **cluster):
        """Node node_id (its own order of the NATS URLs), `cluster` keys added to its section."""
        urls = (nats or self.nats).urls()
        h = Hub({}, config={"cluster": cluster_section(node_id, urls[node_id % 3:] + urls[:node_id % 3],
                                                       **dict(self.stream, **cluster)),
                            "admin": admin_config()})
        self.hubs.append(h)
        h.api = AdminClient(h)
        if wait:
            wait_readyz(h, 200, "ready\n")
            h.op = h.api.token(h.api.operator_key())
        return h

    def write(self, h, method, path, body=None, expect=(200, 201, 204)):
        # a cluster write may wait write_timeout_ms to be stored and as long to be applied
        st, data, _ = h.api.call(method, path, body, h.op, timeout=25.0)
        if expect:
            self.assertIn(st, expect, (method, path, data, h.logs()[-2000:]))
        return st, data

    def seed(self, h, policy=True):
        """The members, endpoints, block (and policy) of A and B, written through h's API."""
        recs = table(self.a, self.b)
        for net in recs["networks"]:
            self.write(h, "POST", "/networks", net)
        for m in recs["members"]:
            self.write(h, "POST", "/members", m)
        for e in recs["endpoints"]:
            self.write(h, "POST", "/endpoints", e)
        for blk in recs["devaddr_blocks"]:
            self.write(h, "POST", "/devaddr-blocks", blk)
        if policy:
            for p in recs["policies"]:
                self.write(h, "PUT", "/policies/%s/%s" % (p["forwarder_net_id"], p["home_net_id"]),
                           {"uplink": p["uplink"], "downlink": p["downlink"]})

    def wait_record(self, h, path, present=True, timeout=10.0, check=None):
        """Polls GET path on h until it is there (and check(record) holds) or gone."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, data, _ = h.api.call("GET", path, token=h.op)
            if (st == 200) == present and (not check or not present or check(data)):
                return data
            time.sleep(0.01)
        self.fail("%s never %s on node:\n%s" % (path, "present" if present else "gone",
                                                 h.logs()[-3000:]))

    def relay(self, h):
        st, ans, _ = h.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        self.assertEqual(st, 200, h.logs())
        return ans["Result"]["ResultCode"]


class ReplicationTest(AdminNodes):
    def test_write_on_node1_applies_to_next_message_on_node3(self):
        n1, n2, n3 = self.node(1), self.node(2), self.node(3)
        self.seed(n1, policy=False)
        self.wait_record(n3, "/members/netB")
        self.wait_record(n3, "/endpoints/netB")
        self.wait_record(n3, "/devaddr-blocks/0A000000/7")  # seed's last write
        # node 3 knows members and blocks from the stream, but no policy yet
        self.assertEqual(self.relay(n3), "NoRoamingAgreement")
        self.b.assert_nothing(0.1)
        self.write(n1, "PUT", "/policies/%s/%s" % (A, B), {"uplink": ALL_UP, "downlink": ALL_DOWN})
        self.wait_record(n3, "/policies/%s/%s" % (A, B))
        self.assertEqual(self.relay(n3), "Success")
        self.assertEqual(self.b.get()["PHYPayload"].lower(), DATA_APP_B)
        # a delete on node 2 stops node 1 and node 3 alike
        self.write(n2, "DELETE", "/policies/%s/%s" % (A, B))
        for n in (n1, n3):
            self.wait_record(n, "/policies/%s/%s" % (A, B), present=False)
            self.assertEqual(self.relay(n), "NoRoamingAgreement")
        # the writer's own refusal is the cluster's: a duplicate network is 409 on its writer
        st, data = self.write(n3, "POST", "/networks", {"net_id": A, "name": "again"}, expect=None)
        self.assertEqual(st, 409, data)

    def test_overlapping_blocks_written_at_once_exactly_one_wins(self):
        n1, n2, n3 = self.node(1), self.node(2), self.node(3)
        for net, name in ((A, "netA"), (B, "netB")):
            self.write(n1, "POST", "/networks", {"net_id": net, "name": name})
        self.wait_record(n2, "/networks/%s" % B)
        for round_ in range(3):
            base = 0x04000000 + (round_ << 17)  # inside NetID A's DevAddr prefix 04000000/7
            prefix1, prefix2 = "%08X/16" % base, "%08X/15" % base
            results = {}
            barrier = threading.Barrier(2)

            def post(h, prefix, net, key):
                barrier.wait()
                results[key] = self.write(h, "POST", "/devaddr-blocks",
                                          {"prefix": prefix, "net_id": net,
                                           "outside_net_id": net != A}, expect=None)
            t1 = threading.Thread(target=post, args=(n1, prefix1, A, 1))
            t2 = threading.Thread(target=post, args=(n2, prefix2, B, 2))
            t1.start(); t2.start(); t1.join(); t2.join()
            codes = sorted(r[0] for r in results.values())
            self.assertEqual(codes, [201, 409], results)
            winner = prefix1 if results[1][0] == 201 else prefix2
            loser = results[2] if results[1][0] == 201 else results[1]
            self.assertIn("overlap", str(loser[1]).lower(), loser)
            # every node holds the winner and only it
            for n in (n1, n2, n3):
                deadline = time.time() + 10
                while True:
                    st, data, _ = n.api.call("GET", "/devaddr-blocks", token=n.op)
                    prefixes = sorted(b["prefix"] for b in data["items"]
                                      if b["prefix"] in (prefix1, prefix2))
                    if prefixes == [winner] or time.time() > deadline:
                        break
                    time.sleep(0.02)
                self.assertEqual(prefixes, [winner], (round_, data))

    def test_no_nats_writes_503_relaying_goes_on_then_catch_up(self):
        nats = NatsCluster(3)  # its own: this test stops every server
        self.addCleanup(nats.cleanup)
        nats.wait_jetstream()
        # a write during the stream leader's election after a kill -9 waits for the new leader:
        # on this shared 2-core machine that took more than 5 s at times
        self.stream["write_timeout_ms"] = 10000
        n1, n2 = self.node(1, nats), self.node(2, nats)
        self.seed(n1)
        self.wait_record(n2, "/policies/%s/%s" % (A, B))
        self.assertEqual(self.relay(n2), "Success")
        self.b.get()
        nats.kill(0)  # kill -9 of one NATS server: nothing visible
        self.write(n1, "PUT", "/policies/%s/%s" % (A, B), {"uplink": {"mac_data": True}})
        self.wait_record(n2, "/policies/%s/%s" % (A, B),
                         check=lambda p: not p["uplink"].get("application_data"))
        for i in (1, 2):
            nats.kill(i, signal.SIGTERM)
        wait_readyz(n1, 200, "relaying on the last table")
        st, data = self.write(n1, "PUT", "/policies/%s/%s" % (A, B), {"uplink": ALL_UP}, expect=None)
        self.assertEqual(st, 503, data)
        self.assertIn("cluster", str(data))
        self.assertEqual(self.relay(n2), "NoRoamingAgreement")  # last table: MAC data only
        for i in range(3):
            nats.start(i)
        # JetStream recovers the stream (meta and stream leaders elected, replicas current): ~7 s
        # here when idle, more under load — asked of the servers (/healthz), not guessed; the
        # nodes' writes before that are refused 503 (no stream leader: no responders)
        nats.wait_jetstream(timeout=90)
        wait_readyz(n1, 200, "ready\n", timeout=30)
        wait_readyz(n2, 200, "ready\n", timeout=30)
        deadline = time.time() + 20
        while True:  # a leader change right after recovery: the write is retried
            st, data = self.write(n1, "PUT", "/policies/%s/%s" % (A, B), {"uplink": ALL_UP},
                                  expect=None)
            if st != 503 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertIn(st, (200, 201), data)
        deadline = time.time() + 10
        while self.relay(n2) != "Success":
            self.assertLess(time.time(), deadline, n2.logs()[-3000:])
            time.sleep(0.05)
        self.b.get()

    def test_node_started_empty_catches_up_and_answers_the_same(self):
        n1 = self.node(1)
        self.seed(n1)
        for i in range(40):  # a table with some history: creates and deletes
            self.write(n1, "POST", "/devaddr-blocks", {"prefix": "%08X/16" % (0x04000000 + (i << 16)),
                                                       "net_id": A})
        for i in range(0, 40, 2):
            self.write(n1, "DELETE", "/devaddr-blocks/%08X/16" % (0x04000000 + (i << 16)), expect=(204,))
        n4 = self.node(4, wait=False)
        wait_readyz(n4, 200, "ready\n")
        n4.op = n4.api.token(n4.api.operator_key())
        for path in ("/devaddr-blocks", "/members", "/endpoints", "/policies", "/networks"):
            st1, d1, _ = n1.api.call("GET", path + "?limit=500", token=n1.op)
            st4, d4, _ = n4.api.call("GET", path + "?limit=500", token=n4.op)
            self.assertEqual((st1, st4), (200, 200))
            self.assertEqual(d4["items"], d1["items"], path)
        self.assertEqual(self.relay(n4), "Success")
        self.b.get()
        # restarted, it replays only what it has not applied (the applied sequence is kept)
        n4.stop()
        self.write(n1, "DELETE", "/policies/%s/%s" % (A, B))
        n4.start()
        wait_readyz(n4, 200, "ready\n")
        self.assertEqual(self.relay(n4), "NoRoamingAgreement")


class ClusterConfigTest(unittest.TestCase):
    def test_unreadable_credentials_refused_naming_the_key(self):
        d = tempfile.mkdtemp(prefix="roamhub-cluster-cfg-")
        self.addCleanup(shutil.rmtree, d, True)
        cfg = os.path.join(d, "roamhub.json")
        with open(cfg, "w") as f:
            json.dump({"database": {"path": os.path.join(d, "db")},
                       "ts002": {"port": 0}, "admin": {"enabled": False},
                       "cluster": cluster_section(1, ["nats://127.0.0.1:4"],
                                                  credentials_file=os.path.join(d, "none.creds"))},
                      f)
        p = subprocess.run([ROAMHUBD, "-c", cfg], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("cluster.credentials_file", p.stdout + p.stderr)
        self.assertIn("No such file", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
