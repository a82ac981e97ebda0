"""Faults of a roamhubd cluster (issue 13): kill -9 of one node under traffic — members re-send to
the other nodes and keep flowing, nothing acknowledged is lost, writes go on; the restarted node
catches up with what was written while it was down and serves — against 3 real nats-server
processes (JetStream cluster) and 3 real roamhubd nodes on 127.0.0.1."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from cluster_harness import wait_readyz  # noqa: E402
from roamhub_harness import pr_start_req  # noqa: E402
from test_cluster import A, B, AdminNodes  # noqa: E402


def uplink(i):
    """An application-data uplink of A's device 0A000001 (NetID B's block) with FCnt i: each
    message of the traffic is told apart by its FCnt (the hub does not check the MIC)."""
    return "40" "0100000a" "00" + "%02x%02x" % (i & 0xFF, (i >> 8) & 0xFF) + "01" "aabb" "01020304"


def fcnt_of(phy_hex):
    b = bytes.fromhex(phy_hex)
    return b[6] | b[7] << 8


class FaultTest(AdminNodes):
    def test_kill9_one_node_under_traffic_members_resend_then_it_catches_up(self):
        nodes = [self.node(1), self.node(2), self.node(3)]
        n1, n2, n3 = nodes
        self.seed(n1)
        for n in (n2, n3):
            self.wait_record(n, "/policies/%s/%s" % (A, B))
        acknowledged, resent, failures = [], 0, []
        killed_at = None
        for i in range(60):
            if i == 20:
                n2.kill()  # kill -9 under traffic
                killed_at = i
            # a member sends to "its" node and, when that node is gone, re-sends the same
            # message to the next one (as it would behind a load balancer)
            for k in range(len(nodes)):
                h = nodes[(i + k) % len(nodes)]
                try:
                    st, ans, _ = h.post(pr_start_req(A, B, uplink(i)), self.a.key, timeout=10)
                except OSError:
                    resent += 1
                    continue
                self.assertEqual(st, 200, h.logs()[-2000:])
                if ans["Result"]["ResultCode"] == "Success":
                    acknowledged.append(i)
                else:
                    failures.append((i, ans))
                break
            if i == 30:  # a write while node 2 is down: acknowledged by the cluster
                self.write(n1, "POST", "/devaddr-blocks", {"prefix": "04000000/16", "net_id": A})
        self.assertEqual(failures, [])
        self.assertEqual(acknowledged, list(range(60)))  # every message got through
        self.assertGreater(resent, 0)  # some had to be re-sent past the dead node
        received = set()
        while True:
            try:
                received.add(fcnt_of(self.b.get(timeout=0.5)["PHYPayload"]))
            except Exception:
                break
        self.assertEqual(sorted(set(acknowledged) - received), [])  # nothing acknowledged lost
        self.assertIsNotNone(killed_at)
        # restarted: it catches up (the block written meanwhile) before it is ready, and serves
        n2.start()
        wait_readyz(n2, 200, "ready\n")
        n2.op = n2.api.token(n2.api.operator_key())
        self.wait_record(n2, "/devaddr-blocks/04000000/16", timeout=1.0)
        self.assertEqual(self.relay(n2), "Success")
        self.assertEqual(fcnt_of(self.b.get()["PHYPayload"]), 1)


if __name__ == "__main__":
    unittest.main()
