"""Transaction lifetime in roamhubd's relay (issue #16 item 1): every relayed transaction is
freed once it is answered, whatever the sender's and receiver's sync/async modes, and the daemon
exits cleanly afterwards.

Regression: an asynchronously answered relay (sync forwarder -> hub -> async home) kept the
answer timer's reference to its transaction, so every such transaction (its body, arena, JSON
trees, timer and registry reference) stayed allocated; under ASan the daemon exited 1 with a
LeakSanitizer report at SIGTERM. Checked two ways: the `roamhub_relay_transactions` gauge must
fall back to 0 (any build), and SIGTERM must give exit status 0 with no sanitizer report in the
log (in the ASan build this is where a leak shows)."""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (ALL_DOWN, ALL_UP, Hub, Member, member_records, merge,  # noqa: E402
                             pr_start_req)

A, B, C = "000202", "000505", "000707"   # forwarder (sync), home (sync), home (async)
S = "000909"                              # home (async) that acknowledges and never answers
UP_B = "40" "0100000a" "00" "0100" "01" "aa" "01020304"   # DevAddr 0A000001 -> B
UP_C = "40" "0100000e" "00" "0100" "01" "aa" "01020304"   # DevAddr 0E000001 -> C
UP_S = "40" "01000012" "00" "0100" "01" "aa" "01020304"   # DevAddr 12000001 -> S
N = 100
SANITIZER_MARKS = ("LeakSanitizer", "AddressSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:")


def policy(fwd, home):
    return {"forwarder_net_id": fwd, "home_net_id": home, "uplink": dict(ALL_UP),
            "downlink": dict(ALL_DOWN)}


class RelayLifetimeTest(unittest.TestCase):
    def setUp(self):
        self.a = Member("netA", A, "key-A-0123456789", mode="sync")
        self.b = Member("netB", B, "key-B-0123456789", mode="sync")
        self.c = Member("netC", C, "key-C-0123456789", mode="async")
        # acknowledges every request and never answers: transactions wait on their timers
        self.s = Member("netS", S, "key-S-0123456789", mode="async", answer_fn=lambda req: None)
        table = merge(member_records(self.a), member_records(self.b), member_records(self.c),
                      member_records(self.s, timeout_ms=20000),
                      {"devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B},
                                          {"prefix": "0E000000/7", "net_id": C},
                                          {"prefix": "12000000/7", "net_id": S}],
                       "policies": [policy(A, B), policy(A, C), policy(A, S)]})
        self.hub = Hub(table)
        for m in (self.a, self.b, self.c, self.s):
            m.hub = self.hub

    def tearDown(self):
        self.hub.cleanup()
        for m in (self.a, self.b, self.c, self.s):
            m.stop()

    def wait_transactions(self, want, timeout=5.0):
        _, text = self.hub.get_admin("/metrics")
        self.assertTrue("\nroamhub_relay_transactions " in text,
                        "the live-transaction gauge roamhub_relay_transactions is missing")
        deadline = time.time() + timeout
        n = self.hub.metric("roamhub_relay_transactions")
        while n != want and time.time() < deadline:
            time.sleep(0.05)
            n = self.hub.metric("roamhub_relay_transactions")
        return n

    def assert_clean_exit(self):
        status = self.hub.stop()
        log = self.hub.logs()
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, log, "sanitizer report in roamhubd's output:\n" + log[-4000:])
        self.assertEqual(status, 0, "roamhubd exit status %s:\n%s" % (status, log[-4000:]))

    def relay(self, phy, home, n):
        for _ in range(n):
            st, ans, _ = self.hub.post(pr_start_req(A, home, phy), self.a.key)
            self.assertEqual(st, 200)
            self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)

    def test_async_home_transactions_are_freed(self):
        self.relay(UP_C, C, N)
        for _ in range(N):
            self.c.get()
        self.assertEqual(self.wait_transactions(0), 0,
                         "relay transactions still allocated after every answer was delivered")
        self.assert_clean_exit()

    def test_shutdown_with_transactions_waiting_for_answers(self):
        """SIGTERM while transactions wait on their answer timers (pending entries held, timers
        armed): the drain fails them, every reference goes, the daemon exits cleanly."""
        n = 20
        results = []

        def one():
            try:
                results.append(self.hub.post(pr_start_req(A, S, UP_S), self.a.key, timeout=30))
            except OSError as e:
                results.append(e)
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for _ in range(n):
            self.s.get(timeout=10)
        self.assertEqual(self.wait_transactions(n), n)  # all waiting, none answered
        self.assert_clean_exit()
        for t in threads:
            t.join(10)
        answered = [r for r in results if isinstance(r, tuple) and r[1]]
        for st, ans, _ in answered:  # the ones answered before the connection closed: a failure
            self.assertNotEqual(ans["Result"]["ResultCode"], "Success", ans)

    def test_sync_home_transactions_are_freed(self):
        self.relay(UP_B, B, N)
        self.assertEqual(self.wait_transactions(0), 0)
        self.assert_clean_exit()


if __name__ == "__main__":
    unittest.main()
