"""The README's main job: tools/demo/demo.py runs to completion, every check in it passes, and it
leaves a readable report (run in a temporary directory)."""
import fcntl
import re
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from roamhub_harness import assert_no_sanitizer_report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("ROAMHUB_BUILD", os.path.join(ROOT, "build"))


class DemoTest(unittest.TestCase):
    def test_demo_runs_and_reports(self):
        out = tempfile.mkdtemp(prefix="roamhub-demo-")
        # The demo uses the fixed ports 4270/4271: one demo at a time on this machine (the same
        # lock as `flock /tmp/roamhub-demo.lock python3 tools/demo/demo.py build`).
        lock = open("/tmp/roamhub-demo.lock", "a")
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "demo", "demo.py"), BUILD,
                                "--out", os.path.join(out, "demo-out"), "--devices", "6", "--uplinks", "3"],
                               capture_output=True, text=True, timeout=180)
            # Every daemon the demo ran exited cleanly (demo.py fails on a non-zero status) and
            # printed no sanitizer report.
            self.assertTrue(os.path.isdir(os.path.join(out, "demo-out")), r.stdout + r.stderr)
            logs = [f for f in os.listdir(os.path.join(out, "demo-out")) if f.endswith(".log")]
            self.assertIn("roamhubd.log", logs)
            for name in logs:
                with open(os.path.join(out, "demo-out", name), errors="replace") as f:
                    assert_no_sanitizer_report(name, f.read())
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-2000:])
            self.assertIn("demo OK", r.stdout)
            with open(os.path.join(out, "demo-out", "REPORT.md")) as f:
                report = f.read()
            self.assertIn("| result | OK |", report)
            self.assertRegex(report, r"OTAA joins through the hub \| (\d+) accepted of \1 ")
            self.assertIn("downlink_mac", report)   # the hub's statistics made it into the report
            # the Packet Broker members' runs, bridged both ways to TS002: every join, every ACK
            for label in ("C's devices heard by D's gateways", "B's devices heard by C's gateways",
                          "C's devices heard by A's gateways"):
                self.assertRegex(report, r"\| %s [^|]*\| [1-9]\d* uplinks \((\d+) confirmed\), "
                                         r"([1-9]\d*)/\2 joins, \1/\1 ACKs \(late 0, wrong 0\) \|"
                                 % re.escape(label))
        finally:
            lock.close()
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
