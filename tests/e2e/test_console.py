"""The web console in a real browser (Debian's chromium, headless, driven by playwright-core from
npm) against the demo world — roamhubd, roamns A (gateways) and B (devices), bystander C, all on
127.0.0.1 with ephemeral ports — while roamsim keeps B's devices sending through A's gateways.
The browser part is tests/e2e/console/console_test.mjs: sign in as operator and as members, the
traffic chart shows the relayed uplinks, a policy change in the peering matrix makes the next
uplinks denied and the chart shows it, live traffic shows events as they happen, the gateway map
shows the demo gateways, a member's hidden gateways disappear for another member, hostile names
stay text, no CSP violation. With ROAMHUB_CONSOLE_SCREENSHOTS=DIR it also saves the screenshots
shown in the README (docs/console/)."""
import json
import os
import shutil
import subprocess
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from roaming_world import B_DEVICES, World  # noqa: E402
from roamhub_harness import AdminClient  # noqa: E402

SOURCE = os.environ.get("ROAMHUB_SOURCE", os.path.join(HERE, "..", ".."))
PLAYWRIGHT = os.path.join(SOURCE, "broker", "console", "node_modules", "playwright-core")
CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>"


class ConsoleInBrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for need in (PLAYWRIGHT, CHROMIUM):
            if not os.path.exists(need):
                raise RuntimeError("missing %s (deploy/bootstrap.sh installs chromium and runs npm ci "
                                   "in broker/console)" % need)
        cls.w = World(with_c=True)
        cls.api = AdminClient(cls.w.hub)
        cls.op_key = cls.api.operator_key()
        op = cls.api.token(cls.op_key)
        cls.keys = {}
        for n in (cls.w.a, cls.w.b):
            cls.keys[n.net_id], _ = cls.api.create_key(op, net_id=n.net_id, rights=["RIGHT_ADMIN"],
                                                       name="console " + n.name)
        st, rec, _ = cls.api.call("GET", "/networks/" + cls.w.c.net_id, token=op)
        rec["name"] = HOSTILE
        st, data, _ = cls.api.call("PUT", "/networks/" + cls.w.c.net_id, rec, token=op)
        assert st == 200, (st, data)
        # invalid UTF-8 in a name: refused by the API (400), or, if stored, shown with
        # replacement characters without breaking the page (checked in the browser)
        st, data, _ = cls.api.call("POST", "/tenants",
                                   b'{"net_id": "%s", "tenant_id": "t-bad", "name": "bad \xff\xfe name"}'
                                   % cls.w.c.net_id.encode(), token=op,
                                   headers={"Content-Type": "application/json"})
        assert st in (201, 400), (st, data)
        cls.invalid_utf8_stored = st == 201
        cls.op_token = op
        # traffic keeps flowing during the whole browser session
        cls.stop = threading.Event()
        cls.sim_runs = []

        def traffic():
            while not cls.stop.is_set():
                rc, summary, _ = cls.w.roamsim(B_DEVICES, uplinks=4, interval_ms=700, timeout=120)
                cls.sim_runs.append(rc)
        cls.sim = threading.Thread(target=traffic, daemon=True)
        cls.sim.start()

    @classmethod
    def tearDownClass(cls):
        cls.stop.set()
        cls.sim.join(timeout=120)
        rc = cls.w.hub.stop()
        logs = cls.w.hub.logs()
        cls.w.close()
        if rc != 0 or "Sanitizer" in logs or "runtime error:" in logs:
            at = max(logs.find("==ERROR"), logs.find("runtime error:"), 0)
            raise AssertionError("roamhubd exited %s:\n%s" % (rc, logs[at:at + 6000] if at else logs[-4000:]))

    def test_console_in_chromium(self):
        cfg_path = os.path.join(self.w.dir, "console-test.json")
        results = os.path.join(self.w.dir, "console-results.json")
        shots = os.environ.get("ROAMHUB_CONSOLE_SCREENSHOTS", "")
        if shots:
            os.makedirs(shots, exist_ok=True)
        with open(cfg_path, "w") as f:
            json.dump({"url": "http://127.0.0.1:%d" % self.w.hub.admin_port,
                       "operator_key": self.op_key, "key_a": self.keys[self.w.a.net_id],
                       "key_b": self.keys[self.w.b.net_id], "net_a": self.w.a.net_id,
                       "net_b": self.w.b.net_id, "net_c": self.w.c.net_id,
                       "hostile_name": HOSTILE, "invalid_utf8_stored": self.invalid_utf8_stored,
                       "screenshots": shots, "results": results,
                       "playwright": PLAYWRIGHT, "tmp": self.w.dir}, f)
        r = subprocess.run(["node", os.path.join(HERE, "console", "console_test.mjs"), cfg_path],
                           capture_output=True, text=True, timeout=400)
        sys.stderr.write(r.stdout)
        if not os.path.exists(results):
            self.fail("the browser test did not run: %s" % r.stderr[-3000:])
        with open(results) as f:
            res = json.load(f)
        self.assertEqual(r.returncode, 0, "%s\n%s\n%s\n%s" % (res.get("error"), json.dumps(res.get("shown"), indent=1),
                                                             r.stderr[-3000:],
                                                         self.w.hub.logs()[-3000:]))
        self.assertTrue(res["ok"])
        names = [c["name"] for c in res["checks"]]
        for want in ("unauthenticated visitor", "traffic chart shows the relayed uplinks",
                     "policy change in the matrix", "live traffic shows events",
                     "gateway map shows the demo gateways", "member: sees only its own",
                     "hidden gateways disappear", "no CSP violations"):
            self.assertTrue(any(want in n for n in names), want)
        sys.stderr.write("console timings (ms): %s\n" % json.dumps(res["timings_ms"]))
        # the hub agrees with what the browser showed: the policy edit was written through the API
        st, audit, _ = self.api.call("GET", "/audit", token=self.op_token)
        self.assertEqual(st, 200)
        self.assertTrue(any(a["kind"] == "policy" for a in audit["items"]))
        self.assertEqual(self.w.hub.proc.poll(), None, "roamhubd still running")


if __name__ == "__main__":
    unittest.main()
