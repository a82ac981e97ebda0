"""tools/bench-pb, the Packet Broker data-plane load client (issue 12, "Benchmark";
tools/bench/pb_publish.py), against a real roamhubd in pb_publish.py's own world, so that the
benchmark tool cannot rot: the agent's OAuth2 tokens, 4 Subscribe streams in one group, and every
published uplink received exactly once by the subscriber, in both loops. Counts only: no timing
is asserted (the figures are docs/PERFORMANCE.md's, measured by the benchmark script)."""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools", "bench"))
import pb_publish  # noqa: E402


class BenchPBSmoke(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="roamhub-benchpb-")
        cls.world = pb_publish.World(cls.dir)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.world.stop()  # raises unless roamhubd exited 0 without a sanitizer report
        finally:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def assert_all_received(self, r, n):
        self.assertEqual((r["sent"], r["acked"], r["failed"]), (n, n, 0), r)
        self.assertEqual((r["received"], r["lost"], r["dup"], r["stray"]), (n, 0, 0, 0), r)
        self.assertEqual(r["reconnects"], 0, r)

    def test_closed_loop_every_message_received_once(self):
        f0 = self.world.failed()
        r = self.world.bench_pb("-n", 1500, "-c", 2, "-k", 8)
        self.assertEqual(r["mode"], "closed")
        self.assert_all_received(r, 1500)
        self.assertEqual(self.world.failed(), f0)

    def test_open_loop_every_message_received_once(self):
        # 300 msg/s for 1 s after a 0.2 s warm-up: 360 sent, the last 300 counted
        r = self.world.bench_pb("-r", 300, "-d", 1, "-w", 0.2, "-c", 2)
        self.assertEqual(r["mode"], "open")
        self.assertEqual(r["due"], 300)
        self.assertEqual((r["sent"], r["acked"], r["failed"]), (360, 360, 0), r)
        self.assertEqual((r["received"], r["answered"], r["lost"], r["dup"], r["stray"]),
                         (300, 300, 0, 0, 0), r)
        self.assertEqual(r["reconnects"], 0, r)
        self.assertGreater(r["p50_us"], 0)

    def test_bad_key_fails_cleanly(self):
        real = self.world.fwd_key
        self.world.fwd_key = real.split(":")[0] + ":wrong"
        try:
            with self.assertRaisesRegex(RuntimeError, "token request: HTTP status 401"):
                self.world.bench_pb("-n", 10)
        finally:
            self.world.fwd_key = real


if __name__ == "__main__":
    unittest.main()
