"""roamhubd under a connection flood past its file descriptor limit (issue 16 item 3): started with
RLIMIT_NOFILE 256 (soft = hard, so it cannot raise it) against the default max_connections 8192,
it lowers its caps to fit (logged once), does not spin on accept() (its log stays small), and a
member's relay is still answered while the flood goes on. Regression: libevent retried accept() at
100 % CPU and logged every EMFILE (900 MB of log in 3 s)."""
import os
import resource
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import ALL_DOWN, ALL_UP, Hub, Member, member_records, merge, pr_start_req  # noqa: E402

A, B = "000202", "000505"
DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"
NOFILE = 256
FLOOD = 600            # connections opened and held, more than the process may have open
LOG_BOUND = 128 * 1024  # bytes of log the whole run may write


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


class FdLimitTest(unittest.TestCase):
    def setUp(self):
        self.a = Member("netA", A, "key-A-0123456789")
        self.b = Member("netB", B, "key-B-0123456789")
        table = merge(member_records(self.a), member_records(self.b), {
            "devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B}],
            "policies": [{"forwarder_net_id": A, "home_net_id": B, "uplink": ALL_UP,
                          "downlink": ALL_DOWN}]})
        self.hub = Hub(table, config={"ts002": {"header_timeout_ms": 1000}},
                       popen={"preexec_fn": low_nofile})
        self.a.hub = self.hub
        self.flood = []

    def tearDown(self):
        for s in self.flood:
            s.close()
        self.hub.cleanup()
        self.a.stop()
        self.b.stop()

    def log_size(self):
        return os.path.getsize(self.hub.log_path)

    def test_flood_past_the_descriptor_limit(self):
        logs = self.hub.logs()
        self.assertEqual(logs.count("max_connections lowered to fit the file descriptor limit"), 1, logs)
        self.assertIn("nofile=%d " % NOFILE, logs)

        for _ in range(FLOOD):   # idle connections: the kernel completes them into the backlog
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.hub.port))
            self.flood.append(s)
            if self.log_size() > LOG_BOUND:
                break
        # While the flood is held, a member's relay is answered (flooders are closed at the
        # header deadline, 1 s, and the backlog drains through the connection cap).
        deadline = time.time() + 4
        while time.time() < deadline and self.log_size() <= LOG_BOUND:
            time.sleep(0.1)
        self.assertLessEqual(self.log_size(), LOG_BOUND, self.hub.logs()[-2000:])
        st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key, timeout=20)
        self.assertEqual(st, 200)
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
        self.assertEqual(self.b.get()["MessageType"], "PRStartReq")
        self.assertLessEqual(self.log_size(), LOG_BOUND, self.hub.logs()[-2000:])


if __name__ == "__main__":
    unittest.main()
