"""roamhubd cluster (issue 13): a node started empty against a table of 100,000 DevAddr blocks
catches up — from the table snapshot node 1 wrote to the JetStream object store
(cluster.snapshot_every) plus the stream's tail, applied in batches — and becomes ready with
the same answers as the node that was there: admin GETs, a relayed message routed by one of the
last blocks, changes written after the snapshot, and — both nodes stopped — the same table
record for record (roamdb export).

The table is built fast: the members and policy through node 1's admin API, then the 100,000
block creates published straight into the stream (cluster_harness.fill_table_stream, as
cluster_write publishes them), which node 1 applies live."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import FILL_NET, fill_table_stream, wait_readyz  # noqa: E402
from test_cluster import A, B, AdminNodes  # noqa: E402
from roamhub_harness import pr_start_req  # noqa: E402

N = 100000
MARK_W = 'msg="table snapshot written" seq='


class CatchUpTest(AdminNodes):
    def exports(self, *hubs):
        """Each node's whole table, record for record (the nodes stopped: roamdb reads the LMDB
        offline); API keys by ID, without the nodes' own bootstrap operator keys."""
        out = []
        for h in hubs:
            h.stop()
            r = h.roamdb("export")
            self.assertEqual(r.returncode, 0, r.stderr)
            doc = json.loads(r.stdout)
            doc["api_keys"] = sorted(k["id"] for k in doc.get("api_keys", [])
                                     if k.get("name") != "bootstrap operator key")
            out.append(doc)
        return out

    def test_node_started_empty_against_100k_blocks_is_ready_with_the_same_answers(self):
        self.assertEqual("%06X" % FILL_NET, B)  # the blocks are B's: A's uplinks route by them
        n1 = self.node(1, snapshot_every=60000)
        self.seed(n1)  # members, endpoints, B's /7 block, the policy A -> B
        sent = fill_table_stream(self.nats.client_ports[0], self.stream["subject_prefix"] + ".table",
                                 N, network=False)
        self.assertEqual(sent, N)
        last = "/devaddr-blocks/%08X/32" % (0x0A000000 + N - 1)
        self.wait_record(n1, last, timeout=120.0)  # node 1 applied the whole stream
        deadline = time.time() + 60
        while MARK_W not in n1.logs():
            self.assertLess(time.time(), deadline, n1.logs()[-3000:])
            time.sleep(0.1)
        snap_seq = int(n1.logs().split(MARK_W)[1].split()[0])
        self.assertGreaterEqual(snap_seq, 60000)
        # the tail past the snapshot: a delete and a create
        self.write(n1, "DELETE", "/devaddr-blocks/0A000000/32", expect=(204,))
        self.write(n1, "POST", "/devaddr-blocks", {"prefix": "0B000000/16", "net_id": B})

        n2 = self.node(2, wait=False)
        wait_readyz(n2, 200, "ready\n", timeout=120.0)
        n2.op = n2.api.token(n2.api.operator_key())
        self.assertIn('msg="table snapshot loaded" seq=%d ' % snap_seq, n2.logs())
        # ready means caught up: every record is there at once, without waiting
        for path in ("/devaddr-blocks/0A000001/32", "/devaddr-blocks/%08X/32" % (0x0A000000 + N // 2),
                     last, "/members/netA", "/policies/%s/%s" % (A, B), "/devaddr-blocks/0B000000/16"):
            st1, d1, _ = n1.api.call("GET", path, token=n1.op)
            st2, d2, _ = n2.api.call("GET", path, token=n2.op)
            self.assertEqual((st1, st2), (200, 200), (path, d1, d2))
            self.assertEqual(d2, d1, path)
        for path in ("/devaddr-blocks/%08X/32" % (0x0A000000 + N), "/devaddr-blocks/0A000000/32"):
            st, d, _ = n2.api.call("GET", path, token=n2.op)
            self.assertEqual(st, 404, (path, d))
        for h in (n1, n2):  # DevAddr 0A01869F (in the last /32 block): A -> B, relayed by each
            devaddr = "%08x" % (0x0A000000 + N - 1)
            phy = "40" + "".join(reversed([devaddr[i:i + 2] for i in range(0, 8, 2)])) + \
                "00" "0100" "01" "aabb" "01020304"
            st, ans, _ = h.post(pr_start_req(A, B, phy), self.a.key)
            self.assertEqual((st, ans["Result"]["ResultCode"]), (200, "Success"), h.logs()[-2000:])
            self.b.get()
        exports = self.exports(n1, n2)
        self.assertEqual(len(exports[0]["devaddr_blocks"]), N + 1)  # /7, N - 1 /32s, the /16
        self.assertEqual(exports[1], exports[0])

    def test_node_behind_the_trimmed_stream_takes_the_snapshot_over_its_table(self):
        """Snapshots every 1,000 changes trim the stream to the 1,000 before the latest: node 3,
        down meanwhile, is further behind; it replaces its table by the snapshot (a policy
        deleted while it was down is gone there too) and applies the rest."""
        n1 = self.node(1, snapshot_every=1000)
        n3 = self.node(3)
        self.seed(n1)
        self.wait_record(n3, "/policies/%s/%s" % (A, B))
        key_a, _ = n1.api.create_key(n1.op, net_id=A, rights=["RIGHT_READ_TRAFFIC"])
        self.wait_record(n3, "/keys")
        n3.stop()
        self.write(n1, "DELETE", "/policies/%s/%s" % (A, B), expect=(204,))
        fill_table_stream(self.nats.client_ports[0], self.stream["subject_prefix"] + ".table",
                          2500, network=False)
        self.wait_record(n1, "/devaddr-blocks/%08X/32" % (0x0A000000 + 2499), timeout=60.0)
        deadline = time.time() + 60
        while "table stream trimmed below" not in n1.logs():
            self.assertLess(time.time(), deadline, n1.logs()[-3000:])
            time.sleep(0.1)
        n3.start()
        wait_readyz(n3, 200, "ready\n", timeout=60.0)
        self.assertIn('msg="table replaced by the snapshot (stream trimmed)"', n3.logs())
        n3.op = n3.api.token(n3.api.operator_key())  # its own operator key still works
        self.assertEqual(n3.api.call("GET", "/policies/%s/%s" % (A, B), token=n3.op)[0], 404)
        self.assertEqual(self.relay(n3), "NoRoamingAgreement")
        n3.api.token(key_a)  # a key written through the stream is in the snapshot
        ex = self.exports(n1, n3)
        self.assertEqual(len(ex[0]["devaddr_blocks"]), 2501)
        self.assertEqual(ex[1], ex[0])


if __name__ == "__main__":
    unittest.main()
