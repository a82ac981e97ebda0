"""roamctl (the real binary) against the real roamhubd: the main flows, the table and --json
outputs, the clear messages and exit codes for 401/403/404/409, and configuration from the
environment or the config file."""
import gzip
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import BUILD, Hub, admin_config  # noqa: E402

ROAMCTL = os.path.join(BUILD, "tools", "roamctl")
A, B = "000013", "000505"


class Roamctl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hub = Hub({"networks": [{"net_id": A, "name": "Alpha", "listed": True}]},
                      config={"admin": admin_config()}, workers=1)
        cls.url = "http://127.0.0.1:%d" % cls.hub.admin_port
        cls.keyfile = cls.hub.config["admin"]["operator_key_file"]
        cls.home = tempfile.mkdtemp(prefix="roamctl-home-")

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()

    def run_ctl(self, *args, env=None, key=None):
        e = {"PATH": os.environ.get("PATH", ""), "HOME": self.home,
             "ROAMCTL_URL": self.url, "ROAMCTL_KEY_FILE": self.keyfile}
        if key:
            e.pop("ROAMCTL_KEY_FILE")
            e["ROAMCTL_KEY"] = key
        e.update(env or {})
        p = subprocess.run([ROAMCTL] + list(args), env=e, capture_output=True, text=True,
                           timeout=30)
        return p.returncode, p.stdout, p.stderr

    def test_main_flows(self):
        rc, out, err = self.run_ctl("whoami")
        self.assertEqual(rc, 0, err)
        self.assertIn("RIGHT_ADMIN", out)
        rc, out, err = self.run_ctl("networks", "create", json.dumps({"net_id": B, "name": "Beta"}))
        self.assertEqual(rc, 0, err)
        rc, out, err = self.run_ctl("networks", "list")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("NET_ID"))
        self.assertEqual(lines[1].index("Alpha"), lines[0].index("NAME"))  # aligned columns
        rc, out, _ = self.run_ctl("--json", "networks", "get", B)
        self.assertEqual(json.loads(out)["name"], "Beta")
        rc, out, err = self.run_ctl("policy", "set", A, B, "--allow", "join_request,application_data",
                                    "--down", "join_accept")
        self.assertEqual(rc, 0, err)
        rc, out, _ = self.run_ctl("--json", "policies", "get", A, B)
        p = json.loads(out)
        self.assertTrue(p["uplink"]["application_data"])
        self.assertFalse(p["uplink"]["mac_data"])
        self.assertTrue(p["downlink"]["join_accept"])
        # keys: the secret is printed once and works
        rc, out, err = self.run_ctl("keys", "create", "--net-id", B, "--rights",
                                    "read_network,write_network,read_traffic", "--name", "beta")
        self.assertEqual(rc, 0, err)
        member_key = out.strip().splitlines()[-1]
        self.assertRegex(member_key, r"^k-[0-9a-f]+:[0-9a-f]{64}$")
        rc, out, err = self.run_ctl("whoami", key=member_key)
        self.assertEqual(rc, 0, err)
        self.assertIn(B, out)
        rc, out, _ = self.run_ctl("keys", "list")
        self.assertNotIn(member_key.split(":")[1], out)
        # blocks, import, stats, capture
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"devaddr_blocks": [{"prefix": "0a000000/7", "net_id": B}],
                       "tenants": [{"net_id": B, "tenant_id": "acme"}]}, f)
        rc, out, err = self.run_ctl("import", f.name)
        os.unlink(f.name)
        self.assertEqual(rc, 0, err)
        rc, out, _ = self.run_ctl("--json", "routes", "--devaddr", "0a000001")
        self.assertEqual(json.loads(out)["home_net_id"], B)
        rc, out, _ = self.run_ctl("stats", "--by", "hour", "--format", "csv")
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("period_start,forwarder,home,class,outcome"))
        cap = os.path.join(self.home, "cap.jsonl.gz")
        rc, out, err = self.run_ctl("capture", "--seconds", "1", "-o", cap)
        self.assertEqual(rc, 0, err)
        with gzip.open(cap, "rt") as g:
            self.assertIn("summary", json.loads(g.read().splitlines()[-1]))
        rc, out, _ = self.run_ctl("audit")
        self.assertIn("ACTOR", out.splitlines()[0])

    def test_refusals_have_clear_messages(self):
        rc, out, err = self.run_ctl("whoami", key="nobody:0123456789abcdef0123")
        self.assertEqual(rc, 1)
        self.assertIn("401 unauthorized: invalid client credentials", err)
        rc, _, err = self.run_ctl("--token", "a.b.c", "networks", "list")
        self.assertEqual(rc, 1)
        self.assertIn("401", err)
        rc, _, err = self.run_ctl("networks", "get", "000999")
        self.assertEqual(rc, 1)
        self.assertIn("404 not found", err)
        self.run_ctl("networks", "create", json.dumps({"net_id": "000777", "name": "x"}))
        rc, _, err = self.run_ctl("networks", "create", json.dumps({"net_id": "000777", "name": "x"}))
        self.assertEqual(rc, 1)
        self.assertIn("409 conflict", err)
        self.assertIn("already exists", err)
        rc, out, _ = self.run_ctl("keys", "create", "--net-id", "000777", "--rights", "read_network")
        ro = out.strip().splitlines()[-1]
        rc, _, err = self.run_ctl("devaddr-blocks", "list", key=ro)
        self.assertEqual(rc, 1)
        self.assertIn("403 forbidden", err)
        self.assertIn("RIGHT_READ_DEVADDR_BLOCKS", err)
        rc, _, err = self.run_ctl("networks", "create", "{not json")
        self.assertEqual(rc, 1)
        self.assertIn("400", err)

    def test_usage_connection_and_config_file(self):
        self.assertEqual(self.run_ctl()[0], 2)
        self.assertEqual(self.run_ctl("frobnicate")[0], 2)
        self.assertEqual(self.run_ctl("networks", "get")[0], 2)
        rc, _, err = self.run_ctl("whoami", env={"ROAMCTL_URL": "http://127.0.0.1:1"})
        self.assertEqual(rc, 3)
        self.assertIn("connection failed", err)
        # credentials from ~/.config/roamctl.json only
        os.makedirs(os.path.join(self.home, ".config"), exist_ok=True)
        with open(os.path.join(self.home, ".config", "roamctl.json"), "w") as f:
            json.dump({"url": self.url, "key_file": self.keyfile}, f)
        p = subprocess.run([ROAMCTL, "whoami"], env={"HOME": self.home}, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("operator", p.stdout)

    def test_url_without_scheme(self):
        """Issue 16 item 12: "HOST:PORT" (in --url or ROAMCTL_URL) means http://HOST:PORT; bad
        URLs are a usage error (exit 2) with a message, never a crash."""
        hostport = "127.0.0.1:%d" % self.hub.admin_port
        rc, out, err = self.run_ctl("--url", hostport, "whoami")
        self.assertEqual(rc, 0, err)
        self.assertIn("RIGHT_ADMIN", out)
        rc, out, err = self.run_ctl("whoami", env={"ROAMCTL_URL": hostport})
        self.assertEqual(rc, 0, err)
        self.assertIn("RIGHT_ADMIN", out)
        for bad in ("::::", "http://", "ftp://127.0.0.1:1", "a b", "%zz", ":", "[::1", "x" * 2000):
            rc, out, err = self.run_ctl("--url", bad, "whoami")
            self.assertEqual(rc, 2, (bad, rc, err))  # a signal would give a negative code
            self.assertIn("server URL", err)


if __name__ == "__main__":
    unittest.main()
