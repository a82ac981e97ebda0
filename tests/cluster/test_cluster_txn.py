"""Transactions across roamhubd cluster nodes (issue 13): an async home network answering to
another node than the one holding the transaction; the answer is handed to the holder over NATS
(broker/cluster_txn.c) — against 3 real nats-server processes (JetStream cluster) and real
roamhubd nodes on 127.0.0.1, each node with the same imported table."""
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from cluster_harness import cluster_section, wait_readyz  # noqa: E402
from roamhub_harness import Hub, Member, pr_start_req  # noqa: E402
from test_cluster import A, B, DATA_APP_B, NodesTest, table  # noqa: E402

EVENT = 'roamhub_events_total{event="%s"}'


class TxnTest(NodesTest):
    def setUp(self):
        super().setUp()
        self.b.stop()  # the home network answers asynchronously: a POST to the hub
        self.b = Member("netB", B, "key-B-0123456789", mode="async")

    def node(self, node_id):
        urls = self.nats.urls()
        h = Hub(table(self.a, self.b), config={"cluster": cluster_section(
            node_id, urls[node_id % 3:] + urls[:node_id % 3], **self.stream)})
        self.hubs.append(h)
        return h

    def ready(self, *nodes):
        for n in nodes:
            wait_readyz(n, 200, "ready\n")

    def events(self, h, name):
        return h.metric(EVENT % name)

    def wait_event(self, h, name, value, timeout=10.0):
        deadline = time.time() + timeout
        while self.events(h, name) != value:
            self.assertLess(time.time(), deadline, "%s never %s:\n%s" % (name, value,
                                                                         h.logs()[-3000:]))
            time.sleep(0.05)

    def test_async_answer_to_node2_reaches_the_holder_node1(self):
        n1, n2, n3 = self.node(1), self.node(2), self.node(3)
        self.ready(n1, n2, n3)
        for holder, answered_at, rounds in ((n1, n2, 3), (n3, n1, 2)):
            self.b.hub = answered_at  # B posts its answers to another node than the holder
            for i in range(rounds):
                st, ans, _ = holder.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
                self.assertEqual(st, 200, holder.logs()[-3000:])
                self.assertEqual(ans["Result"]["ResultCode"], "Success",
                                 (ans, holder.logs()[-2000:], answered_at.logs()[-2000:]))
                req = self.b.get()
                # the hub-owned TransactionID names its holder in its top 8 bits (hub_txid.h)
                node_id = 1 if holder is n1 else 3
                self.assertEqual(int(req["TransactionID"]) >> 24, node_id, req)
            self.wait_event(answered_at, "answer_handed_to_node", rounds)
            self.wait_event(holder, "answer_from_node", rounds)
        for n in (n1, n2, n3):
            self.assertEqual(self.events(n, "unmatched_answer"), 0)
            self.assertEqual(self.events(n, "answer_unmatched_at_holder"), 0)

    def test_answer_after_the_deadline_fails_at_the_holder_unmatched(self):
        n1, n2 = self.node(1), self.node(2)
        self.ready(n1, n2)
        self.b.hub = n2
        late = threading.Event()
        post_async = self.b.post_async

        def slow(ans):  # past the endpoint's timeout_ms (1500 ms)
            time.sleep(2.5)
            post_async(ans)
            late.set()
        self.b.post_async = slow
        t0 = time.time()
        st, ans, _ = n1.post(pr_start_req(A, B, DATA_APP_B), self.a.key, timeout=10)
        self.assertEqual(st, 200)
        # the holder answered its sender with a failure at the deadline, not silence
        self.assertEqual(ans["Result"]["ResultCode"], "Other", ans)
        self.assertIn("did not answer in time", ans["Result"].get("Description", ""), ans)
        self.assertLess(time.time() - t0, 2.4)
        self.assertTrue(late.wait(10))
        self.wait_event(n2, "answer_handed_to_node", 1)
        self.wait_event(n2, "answer_unmatched_at_holder", 1)  # the holder's reply
        self.wait_event(n1, "unmatched_answer", 1)

    def test_answer_for_a_killed_holder_is_counted_unreachable(self):
        n1, n2 = self.node(1), self.node(2)
        self.ready(n1, n2)
        self.b.hub = n2
        answered = threading.Event()
        post_async = self.b.post_async

        def after_kill(ans):  # the holder is killed before the answer comes
            n1.kill()
            post_async(ans)
            answered.set()
        self.b.post_async = after_kill
        with self.assertRaises(OSError):  # the sync sender's connection to the dead node breaks
            n1.post(pr_start_req(A, B, DATA_APP_B), self.a.key, timeout=10)
        self.assertTrue(answered.wait(10))
        self.wait_event(n2, "answer_holder_unreachable", 1)  # NATS: no responders
        self.assertEqual(self.events(n2, "answer_handed_to_node"), 1)


if __name__ == "__main__":
    unittest.main()
