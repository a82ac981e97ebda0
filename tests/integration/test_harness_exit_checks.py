"""The harness's own guarantee (issue 16 item 1, "why CI did not see it"): stopping a daemon fails
the test when it exits with a non-zero status, is killed by a signal, hangs on SIGTERM, or prints
a sanitizer report, and passes only on a clean exit. Stand-in daemons are small Python programs."""
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import Daemon, DaemonExitError, sanitizer_report  # noqa: E402

SERVE = ("import signal, sys, time\n"
         "signal.signal(signal.SIGTERM, lambda *a: (sys.stderr.write(%r), sys.exit(%d)))\n"
         "print('ready', flush=True)\n"
         "while True: time.sleep(0.05)\n")

LSAN = ("=================================================================\n"
        "==4242==ERROR: LeakSanitizer: detected memory leaks\n\n"
        "Direct leak of 272 byte(s) in 1 object(s) allocated from:\n"
        "    #0 0x7f in calloc\n    #1 0x55 in txn_new broker/relay.c:58\n\n"
        "SUMMARY: AddressSanitizer: 272 byte(s) leaked in 1 allocation(s).\n")
UBSAN = "broker/config.c:120:9: runtime error: 1e+300 is outside the range of 'long long'\n"


class HarnessExitChecks(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="roamhub-harness-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, on_term="", status=0, program=None):
        d = Daemon("stand-in", [sys.executable, "-c", program or SERVE % (on_term, status)],
                   os.path.join(self.dir, "d.log"))
        deadline = time.time() + 10
        while "ready" not in d.output() and time.time() < deadline and d.poll() is None:
            time.sleep(0.02)
        return d

    def test_clean_exit_passes(self):
        d = self.start()
        self.assertEqual(d.stop(), 0)

    def test_nonzero_status_fails(self):
        d = self.start(status=23)   # LeakSanitizer's exit status
        with self.assertRaisesRegex(DaemonExitError, "exited with status 23"):
            d.stop()

    def test_sanitizer_report_fails_even_with_status_0(self):
        for report in (LSAN, UBSAN):
            d = self.start(on_term=report, status=0)
            with self.assertRaisesRegex(DaemonExitError, "printed a sanitizer report"):
                d.stop()

    def test_crash_before_stop_fails(self):
        d = self.start(program="import os, signal; os.kill(os.getpid(), signal.SIGABRT)")
        d.proc.wait(timeout=10)
        with self.assertRaisesRegex(DaemonExitError, "exited with status -6"):
            d.stop()

    def test_hang_on_sigterm_fails(self):
        d = self.start(program="import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                               "print('ready', flush=True)\ntime.sleep(60)\n")
        with self.assertRaisesRegex(DaemonExitError, "did not stop"):
            d.stop(timeout=0.5)

    def test_killed_on_purpose_is_not_held_against_it(self):
        d = self.start()
        d.kill()
        self.assertEqual(d.stop(), -9)

    def test_report_detection(self):
        self.assertIsNone(sanitizer_report("ts=... level=info msg=\"stopped\"\nruntime errors: 0\n"))
        self.assertTrue(sanitizer_report("x\n" + LSAN).startswith("==4242==ERROR: LeakSanitizer"))
        self.assertIn("runtime error", sanitizer_report(UBSAN))


if __name__ == "__main__":
    unittest.main()
