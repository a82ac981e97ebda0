"""roamhubd cluster (issue 13): statistics and capture asked of any node cover every node
(broker/cluster_view.c) — traffic relayed by node 1 and node 3 is counted in full by node 2's
GET /api/v1/stats (JSON and CSV), with a member still seeing only its own NetID's rows; a
capture started on node 2 gets the events node 1 relays; with node 3 killed, node 2's answers
name it as missing within seconds; the protocol each side of a row spoke (a Packet Broker gRPC
forwarder's traffic on one node) reads the same on the others. Real nats-server (3, JetStream)
and roamhubd processes on 127.0.0.1."""
import csv
import gzip
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import cluster_section, wait_readyz  # noqa: E402
from test_cluster import A, B, DATA_APP_B, NodesTest  # noqa: E402
from roamhub_harness import (ALL_DOWN, ALL_UP, AdminClient, Hub, Member,  # noqa: E402
                             admin_config, member_records, merge, pr_start_req)

C = "000303"


class ViewTest(NodesTest):
    def node(self, node_id, **extra):
        urls = self.nats.urls()
        h = Hub({}, config=dict({"cluster": cluster_section(node_id, urls[node_id % 3:] + urls[:node_id % 3],
                                                            **self.stream),
                                 "relay": {"stats_flush_ms": 200},
                                 "admin": admin_config()}, **extra))
        self.hubs.append(h)
        h.api = AdminClient(h)
        wait_readyz(h, 200, "ready\n")
        h.op = h.api.token(h.api.operator_key())
        return h

    def seed(self, h):
        recs = merge(member_records(self.a), member_records(self.b), member_records(self.c), {
            "devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B}],
            "policies": [{"forwarder_net_id": f, "home_net_id": B, "uplink": ALL_UP,
                          "downlink": ALL_DOWN} for f in (A, C)]})
        for kind, path in (("networks", "/networks"), ("members", "/members"),
                           ("endpoints", "/endpoints"), ("devaddr_blocks", "/devaddr-blocks")):
            for rec in recs[kind]:
                st, data, _ = h.api.call("POST", path, rec, h.op, timeout=25.0)
                self.assertEqual(st, 201, (path, data))
        for p in recs["policies"]:
            st, data, _ = h.api.call("PUT", "/policies/%s/%s" % (p["forwarder_net_id"], B),
                                     {"uplink": p["uplink"], "downlink": p["downlink"]}, h.op,
                                     timeout=25.0)
            self.assertIn(st, (200, 201), data)

    def setUp(self):
        super().setUp()
        self.c = Member("netC", C, "key-C-0123456789")
        self.n1, self.n2, self.n3 = self.node(1), self.node(2), self.node(3)
        self.seed(self.n1)
        for h in (self.n2, self.n3):  # every node has the table (last write: C's policy)
            deadline = time.time() + 10
            while h.api.call("GET", "/policies/%s/%s" % (C, B), token=h.op)[0] != 200:
                self.assertLess(time.time(), deadline)
                time.sleep(0.02)

    def tearDown(self):
        super().tearDown()
        self.c.stop()

    def relay(self, h, member, net, n):
        for _ in range(n):
            st, ans, _ = h.post(pr_start_req(net, B, DATA_APP_B), member.key)
            self.assertEqual((st, ans["Result"]["ResultCode"]), (200, "Success"), h.logs()[-2000:])

    def counts(self, h, token, fmt="json"):
        """{(forwarder, outcome): count} of the last hour on h, and the answer's headers/body."""
        st, data, hd = h.api.call("GET", "/stats?format=%s" % fmt, token=token)
        self.assertEqual(st, 200, data)
        got = {}
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(data.decode())))
        else:
            rows = data["items"]
        for r in rows:
            k = (r["forwarder"], r["outcome"])
            got[k] = got.get(k, 0) + int(r["count"])
        return got, data, hd

    def wait_counts(self, h, token, want, fmt="json", timeout=15.0):
        deadline = time.time() + timeout
        while True:
            got, data, hd = self.counts(h, token, fmt)
            if got == want or time.time() > deadline:
                return got, data, hd
            time.sleep(0.1)

    def metrics(self, h, path):
        st, data, hd = h.api.raw("GET", path)
        self.assertEqual(st, 200, data)
        return data.decode()

    @staticmethod
    def forwarded(text):
        """{node label (None without): uplink_app forwarded count} of roamhub_relay_outcomes_total."""
        out = {}
        for m in re.finditer(r'^roamhub_relay_outcomes_total\{(node="(\d+)",)?class="uplink_app",'
                             r'outcome="forwarded"\} (\d+)$', text, re.M):
            out[m.group(2)] = out.get(m.group(2), 0) + int(m.group(3))
        return out

    def test_stats_and_capture_on_node2_cover_nodes_1_and_3_then_node3_missing(self):
        n1, n2, n3 = self.n1, self.n2, self.n3
        self.relay(n1, self.a, A, 5)   # A's traffic through node 1
        self.relay(n3, self.c, C, 3)   # C's traffic through node 3
        for _ in range(8):
            self.b.get()
        want = {(A, "forwarded"): 5, (C, "forwarded"): 3}
        got, body, hd = self.wait_counts(n2, n2.op, want)
        self.assertEqual(got, want, n2.logs()[-3000:])
        self.assertEqual(body["cluster"], {"nodes_reporting": [1, 2, 3], "nodes_missing": [],
                                           "partial": False})
        got, _, hd = self.wait_counts(n2, n2.op, want, fmt="csv")
        self.assertEqual(got, want)
        self.assertEqual((hd.get("x-cluster-nodes-reporting"), hd.get("x-cluster-nodes-missing")),
                         ("1,2,3", ""))
        # a member sees its own NetID's rows only, whichever node relayed them
        key_a, _ = n1.api.create_key(n1.op, net_id=A, rights=["RIGHT_READ_TRAFFIC"])
        # acknowledged once node 1 applied it; node 2 applies it a moment later
        deadline = time.time() + 5.0
        while True:
            try:
                tok_a = n2.api.token(key_a)
                break
            except AssertionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.assertEqual(self.wait_counts(n2, tok_a, {(A, "forwarded"): 5})[0],
                         {(A, "forwarded"): 5})
        # node 1's own figures are not counted twice
        self.assertEqual(self.counts(n1, n1.op)[0], want)

        # /metrics per node, and the cluster view: every node's samples labelled by node
        text = self.metrics(n2, "/metrics/cluster")
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual((r.returncode, (r.stdout + r.stderr).strip()), (0, ""), text[:3000])
        self.assertEqual(self.forwarded(text), {"1": 5, "2": 0, "3": 3})
        for node in "123":
            self.assertIn('roamhub_cluster_node_up{node="%s"} 1\n' % node, text)
        self.assertEqual(self.forwarded(self.metrics(n3, "/metrics")), {None: 3})

        # a capture held on node 2 gets what node 1 and node 3 relay meanwhile
        res = {}

        def cap(name, h, token):
            res[name] = h.api.raw("GET", "/api/v1/capture?seconds=3&download=true",
                                  headers={"Authorization": "Bearer " + token}, timeout=15)
        def follow(name, h, token):  # the live form (chunked JSON lines), as the console reads it
            res[name] = h.api.raw("GET", "/api/v1/capture?follow=true&seconds=3",
                                  headers={"Authorization": "Bearer " + token}, timeout=15)
        threads = [threading.Thread(target=cap, args=("op", n2, n2.op)),
                   threading.Thread(target=cap, args=("a", n2, tok_a)),
                   threading.Thread(target=follow, args=("live", n2, n2.op))]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the captures announced (at once) and started on nodes 1 and 3
        self.relay(n1, self.a, A, 2)
        self.relay(n3, self.c, C, 1)
        for t in threads:
            t.join(15)
        for name, expect in (("op", {(1, A): 2, (3, C): 1}), ("a", {(1, A): 2}),
                             ("live", {(1, A): 2, (3, C): 1})):
            st, data, _ = res[name]
            self.assertEqual(st, 200)
            if name == "live":
                lines = [json.loads(x) for x in data.decode().splitlines() if x.strip()]
                self.assertIn("start", lines[0])
                lines = lines[1:]
            else:
                lines = [json.loads(x) for x in gzip.decompress(data).decode().splitlines()]
            events = lines[:-1]
            self.assertEqual(lines[-1]["summary"]["events"], len(events))
            got = {}
            for e in events:
                got[(e["node"], e["forwarder"])] = got.get((e["node"], e["forwarder"]), 0) + 1
                self.assertEqual((e["home"], e["outcome"]), (B, "forwarded"))
            self.assertEqual(got, expect, (name, events))
        for _ in range(3):
            self.b.get()

        # node 3 killed: node 2's answers say so within seconds
        n3.kill()
        t0 = time.time()
        while True:
            _, body, _ = self.counts(n2, n2.op)
            if body["cluster"]["nodes_missing"] == [3] or time.time() - t0 > 10:
                break
            time.sleep(0.1)
        self.assertEqual(body["cluster"], {"nodes_reporting": [1, 2], "nodes_missing": [3],
                                           "partial": True})
        _, _, hd = self.counts(n2, n2.op, fmt="csv")
        self.assertEqual(hd.get("x-cluster-nodes-missing"), "3")
        text = self.metrics(n2, "/metrics/cluster")
        self.assertIn('roamhub_cluster_node_up{node="3"} 0\n', text)
        self.assertEqual(self.forwarded(text), {"1": 7, "2": 0})
        # what node 3 relayed before is still counted
        self.assertEqual(self.counts(n2, n2.op)[0], {(A, "forwarded"): 7, (C, "forwarded"): 4})


    def test_node_started_empty_gets_every_nodes_statistics(self):
        self.relay(self.n1, self.a, A, 4)
        self.relay(self.n3, self.c, C, 2)
        for _ in range(6):
            self.b.get()
        want = {(A, "forwarded"): 4, (C, "forwarded"): 2}
        self.assertEqual(self.wait_counts(self.n2, self.n2.op, want)[0], want)
        n4 = self.node(4)
        got, body, _ = self.wait_counts(n4, n4.op, want)
        self.assertEqual(got, want, n4.logs()[-3000:])
        # restarted with its database: the rows are not added twice
        n4.stop()
        n4.start()
        wait_readyz(n4, 200, "ready\n")
        n4.op = n4.api.token(n4.api.operator_key())
        time.sleep(1.0)
        self.assertEqual(self.counts(n4, n4.op)[0], want)

    def test_packet_broker_rows_keep_their_protocol_on_other_nodes(self):
        """A gRPC forwarder's uplink on node 4 (its gRPC listener): node 2's statistics name
        Packet Broker on both sides of the row (ClusterStatsRow.forwarder/home_protocol), as
        node 4's own do; TS002 rows stay TS002."""
        from test_pb_bridge import BridgeWorld, uplink
        from test_pb_dataplane import data_up, grpc, rtg
        pbf = "000014"  # the forwarder NetID test_pb_bridge.uplink() publishes for
        n4 = self.node(4, grpc={"address": "127.0.0.1", "port": 0})
        st, data, _ = self.n1.api.call("POST", "/networks", {"net_id": pbf, "name": "tts"},
                                       self.n1.op, timeout=25.0)
        self.assertEqual(st, 201, data)
        n4.op = n4.api.token(n4.api.operator_key())
        deadline = time.time() + 10
        while n4.api.call("GET", "/networks/" + pbf, token=n4.op)[0] != 200:
            self.assertLess(time.time(), deadline)
            time.sleep(0.05)
        tok = BridgeWorld.agent_token(n4.api, n4.op, pbf)
        ch = grpc.insecure_channel("127.0.0.1:%d" % n4.grpc_port)
        try:
            for fcnt in (1, 2):  # DevAddr 70000077: in no block, refused no_route
                rtg.ForwarderDataStub(ch).Publish(uplink(data_up(0x70000077, fcnt=fcnt)),
                                                  metadata=(("authorization", "Bearer " + tok),),
                                                  timeout=3)
        finally:
            ch.close()
        self.relay(self.n1, self.a, A, 1)  # and a TS002 row through node 1
        self.b.get()

        def rows(h, fmt="json"):
            st, data, _ = h.api.call("GET", "/stats?format=" + fmt, token=h.op)
            self.assertEqual(st, 200, data)
            items = list(csv.DictReader(io.StringIO(data.decode()))) if fmt == "csv" else data["items"]
            return {(r["forwarder"], r["outcome"], r["forwarder_protocol"], r["home_protocol"]):
                    int(r["count"]) for r in items}
        want = {(pbf, "no_route", "packet_broker", "packet_broker"): 2,
                (A, "forwarded", "ts002", "ts002"): 1}
        for h in (self.n2, n4):
            deadline = time.time() + 15
            while rows(h) != want and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(rows(h), want, h.logs()[-3000:])
            self.assertEqual(rows(h, "csv"), want)


if __name__ == "__main__":
    unittest.main()
