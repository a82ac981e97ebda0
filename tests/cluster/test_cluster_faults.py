"""Faults of a roamhubd cluster (issue 13): kill -9 of one node under traffic — members re-send to
the other nodes and keep flowing, nothing acknowledged is lost, writes go on; the restarted node
catches up with what was written while it was down and serves — against 3 real nats-server
processes (JetStream cluster) and 3 real roamhubd nodes on 127.0.0.1."""
import os
import queue
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from cluster_harness import cluster_section, wait_readyz  # noqa: E402
from roamhub_harness import Hub, Member, answer, member_records, merge, pr_start_req  # noqa: E402
from test_cluster import A, B, AdminNodes, NodesTest, table  # noqa: E402
from test_relay import DOWN_APP, dl_xmit  # noqa: E402

EVENT = 'roamhub_events_total{event="%s"}'


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



def xmit_uplink(sender, receiver, phy_hex):
    """An uplink XmitDataReq (ULMetaData): the PRStartReq's fields under another MessageType."""
    m = pr_start_req(sender, receiver, phy_hex)
    m["MessageType"] = "XmitDataReq"
    return m


class InflightTest(NodesTest):
    """A and B are async senders (their answers are POSTed to their endpoints) and receivers that
    acknowledge and then stay silent on what the test wants to hang; node 1 holds the
    transactions and is killed while they wait."""
    WAIT_MS = 4000  # the receivers' timeout_ms: the holder's answer deadline

    def setUp(self):
        super().setUp()
        self.a.stop()
        self.b.stop()
        self.answered = set()  # FCnts B answers (after that, silence)

        def b_answers(req):  # B acknowledges everything, answers only the FCnts in answered
            phy = req.get("PHYPayload", "")
            if req["MessageType"] == "PRStartReq" and fcnt_of(phy) in self.answered:
                return answer(req, "Success")
            return None
        self.a = Member("netA", A, "key-A-0123456789", mode="async", answer_fn=lambda req: None)
        self.b = Member("netB", B, "key-B-0123456789", mode="async", answer_fn=b_answers)

    def node(self, node_id):
        urls = self.nats.urls()
        tbl = merge(member_records(self.a, timeout_ms=self.WAIT_MS),
                    member_records(self.b, timeout_ms=self.WAIT_MS),
                    {k: v for k, v in table(self.a, self.b).items()
                     if k in ("devaddr_blocks", "policies")})
        h = Hub(tbl, config={"cluster": cluster_section(
            node_id, urls[node_id % 3:] + urls[:node_id % 3], **self.stream)})
        self.hubs.append(h)
        return h

    def answers(self, members, n, until):
        """The first n answers the members' endpoints receive before `until` (time.time()), with
        their arrival times."""
        got = []
        while len(got) < n and time.time() < until:
            for member in members:
                try:
                    m = member.get(timeout=0.02)
                except queue.Empty:
                    continue
                if m.get("MessageType", "").endswith("Ans"):
                    got.append((time.time(), m))
        return got

    def test_kill9_holder_async_senders_get_failures_at_deadline_exactly_once(self):
        n1, n2, n3 = self.node(1), self.node(2), self.node(3)
        for n in (n1, n2, n3):
            wait_readyz(n, 200, "ready\n")
        self.b.hub = n1  # B posts its answers to the holder
        time.sleep(1.5)  # every node has heard the others (presence) and their runs
        # completed before the kill: A gets its Success, and no failure for it later
        self.answered.add(1)
        done = pr_start_req(A, B, uplink(1))
        st, _, _ = n1.post(done, self.a.key)
        self.assertEqual(st, 200, n1.logs()[-2000:])  # async: acknowledged, answer posted later
        ok = self.a.get(timeout=5, mtype="PRStartAns")
        self.assertEqual((ok["TransactionID"], ok["Result"]["ResultCode"]),
                         (done["TransactionID"], "Success"), ok)
        # waiting on a silent receiver when the holder dies: PRStartReq and XmitDataReq (uplink)
        # from A to B, a downlink XmitDataReq from B to A
        pr, xd, dl = (pr_start_req(A, B, uplink(2)), xmit_uplink(A, B, uplink(3)),
                      dl_xmit(B, A, DOWN_APP))
        t_sent = time.time()
        for req, m in ((pr, self.a), (xd, self.a), (dl, self.b)):
            st, body, _ = n1.post(req, m.key)
            self.assertEqual((st, body), (200, None), n1.logs()[-2000:])
        for got in (self.b.get(timeout=5, mtype="PRStartReq"),
                    self.b.get(timeout=5, mtype="XmitDataReq"),
                    self.a.get(timeout=5, mtype="XmitDataReq")):
            self.assertEqual(int(got["TransactionID"]) >> 24, 1, got)  # node 1 holds them
        time.sleep(0.3)  # published (batches leave within 10 ms)
        n1.kill()
        t_kill = time.time()
        deadline = t_sent + self.WAIT_MS / 1000.0
        # no earlier than the deadline; no later than the deadline or the holder seen missing
        # (presence: 3 s), plus slack for this shared machine
        latest = max(deadline, t_kill + 3.0) + 5.0
        got = self.answers((self.a, self.b), 3, latest)
        by_txid = {}
        for t, m in got:
            by_txid.setdefault(m["TransactionID"], []).append((t, m))
        want = {pr["TransactionID"]: ("PRStartAns", "Other", A, B),
                xd["TransactionID"]: ("XmitDataAns", "Other", A, B),
                dl["TransactionID"]: ("XmitDataAns", "XmitFailed", B, A)}
        self.assertEqual(sorted(by_txid), sorted(want), (got, n2.logs()[-3000:]))
        for txid, (mtype, code, to, sender) in want.items():
            (t, m), = by_txid[txid]  # exactly once
            self.assertEqual(m["MessageType"], mtype, m)
            self.assertEqual(m["Result"]["ResultCode"], code, m)
            self.assertIn("hub node 1", m["Result"].get("Description", ""), m)
            self.assertEqual((m["ReceiverID"].lower(), m["SenderID"].lower()), (to, sender), m)
            self.assertGreaterEqual(t, deadline - 0.05, (t - t_sent, m))
            self.assertLessEqual(t, latest, (t - t_sent, m))
        # exactly once: nothing more, and nothing for the transaction that completed
        time.sleep(2.0)
        self.a.assert_nothing(0.1)
        self.b.assert_nothing(0.1)
        # the lowest-numbered live node answered them, the other did not
        self.assertEqual(n2.metric(EVENT % "inflight_failed_for_node"), 3, n2.logs()[-3000:])
        self.assertEqual(n3.metric(EVENT % "inflight_failed_for_node"), 0, n3.logs()[-3000:])

    def test_holder_restarted_at_once_its_earlier_transactions_fail_at_deadline(self):
        """kill -9 and an immediate restart (as systemd's Restart= would): the holder is never
        seen missing, but its new run ID orphans the transactions of its earlier run, which the
        lowest-numbered other node answers at their deadlines."""
        n1, n2, n3 = self.node(1), self.node(2), self.node(3)
        for n in (n1, n2, n3):
            wait_readyz(n, 200, "ready\n")
        time.sleep(1.5)  # presence and runs heard
        pr = pr_start_req(A, B, uplink(7))
        t_sent = time.time()
        st, body, _ = n1.post(pr, self.a.key)
        self.assertEqual((st, body), (200, None), n1.logs()[-2000:])
        self.b.get(timeout=5, mtype="PRStartReq")
        time.sleep(0.3)
        n1.kill()
        n1.start()  # back at once, a new run: it knows nothing of the transaction
        wait_readyz(n1, 200, "ready\n")
        deadline = t_sent + self.WAIT_MS / 1000.0
        got = self.answers((self.a,), 1, deadline + 5.0)
        self.assertEqual(len(got), 1, n2.logs()[-3000:])
        t, m = got[0]
        self.assertEqual((m["MessageType"], m["TransactionID"], m["Result"]["ResultCode"]),
                         ("PRStartAns", pr["TransactionID"], "Other"), m)
        self.assertGreaterEqual(t, deadline - 0.05, t - t_sent)
        self.assertIn("node 1 restarted", n2.logs())
        time.sleep(1.0)
        self.a.assert_nothing(0.1)  # once
        self.assertEqual(n2.metric(EVENT % "inflight_failed_for_node"), 1, n2.logs()[-3000:])


if __name__ == "__main__":
    unittest.main()
