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
        # the secret and its banner go to stderr; stdout is the record, without the secret
        member_key = err.strip().splitlines()[-1]
        self.assertRegex(member_key, r"^k-[0-9a-f]+:[0-9a-f]{64}$")
        self.assertNotIn(member_key.split(":")[1], out)
        self.assertIn(member_key.split(":")[0], out)
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
        self.assertTrue(out.splitlines()[0].endswith(",forwarder_protocol,home_protocol"), out)
        rc, out, err = self.run_ctl("--json", "stats", "--protocol", "packet_broker",
                                    "--forwarder-protocol", "ts002", "--home-protocol",
                                    "packet_broker")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["items"], [])
        rc, out, err = self.run_ctl("stats", "--home-protocol", "grpc")
        self.assertNotEqual(rc, 0)
        self.assertIn("home_protocol: expected ts002 or packet_broker", err)
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
        rc, _, err = self.run_ctl("keys", "create", "--net-id", "000777", "--rights", "read_network")
        ro = err.strip().splitlines()[-1]  # the new key is printed on stderr
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



class CliConventions(unittest.TestCase):
    """Help on stdout without credentials, flags after the command, unknown options named,
    -o json|table, completion generated from the command table, XDG_CONFIG_HOME with checked
    keys, and a TLS-specific message when https:// meets a plain listener."""

    setUpClass = classmethod(Roamctl.setUpClass.__func__)  # a hub of its own, set up alike
    tearDownClass = classmethod(Roamctl.tearDownClass.__func__)

    def ctl(self, *args, env=None):
        e = {"PATH": os.environ.get("PATH", ""), "HOME": self.home}
        e.update(env or {})
        p = subprocess.run([ROAMCTL] + list(args), env=e, capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def test_help_without_credentials(self):
        rc, out, err = self.ctl("--help")
        self.assertEqual((rc, err), (0, ""))
        self.assertIn("Usage: roamctl", out)
        for cmd in ("networks", "policy", "stats", "keys"):
            rc, out, err = self.ctl(cmd, "--help")
            self.assertEqual((rc, err), (0, ""), cmd)
            self.assertIn("roamctl " + cmd, out)
        rc, out, _ = self.ctl("networks", "list", "-h")
        self.assertEqual(rc, 0)
        self.assertIn("networks list", out)

    def test_flags_after_the_command_and_output_formats(self):
        rc, out, err = self.ctl("networks", "list", "--url", self.url, "--key-file", self.keyfile,
                                "-o", "json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["items"][0]["net_id"], A)
        rc, out2, err = self.ctl("--url", self.url, "networks", "list", "--json",
                                 "--key-file", self.keyfile)
        self.assertEqual(json.loads(out2), json.loads(out))
        rc, out, err = self.ctl("networks", "list", "--url", self.url, "--key-file", self.keyfile,
                                "--output", "table")
        self.assertEqual(rc, 0, err)
        self.assertIn("NET_ID", out.splitlines()[0])

    def test_unknown_option_named(self):
        rc, out, err = self.ctl("networks", "list", "--colour")
        self.assertEqual(rc, 2)
        self.assertIn("--colour", err)
        self.assertEqual(out, "")
        rc, _, err = self.ctl("--frobnicate", "networks", "list")
        self.assertEqual(rc, 2)
        self.assertIn("--frobnicate", err)
        rc, _, err = self.ctl("networks", "list", "--url")
        self.assertEqual(rc, 2)
        self.assertIn("--url", err)

    def test_completion_from_the_command_table(self):
        rc, script, err = self.ctl("completion", "bash")
        self.assertEqual(rc, 0, err)
        help_text = self.ctl("--help")[1]

        def complete(*words):
            prog = ("source /dev/stdin; COMP_WORDS=(%s); COMP_CWORD=%d; _roamctl; "
                    "printf '%%s\\n' \"${COMPREPLY[@]}\"" % (" ".join(words), len(words) - 1))
            r = subprocess.run(["bash", "-c", prog], input=script, capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout.split()
        got = complete("roamctl", "")
        for cmd in ("networks", "devaddr-blocks", "policy", "stats", "capture", "completion"):
            self.assertIn(cmd, got)
            self.assertIn(cmd, help_text)
        self.assertEqual(complete("roamctl", "st"), ["stats"])
        self.assertIn("--forwarder", complete("roamctl", "stats", "--"))
        self.assertIn("--forwarder-protocol", complete("roamctl", "stats", "--"))
        self.assertIn("--page-token", complete("roamctl", "networks", "list", "--p"))
        rc, zsh, _ = self.ctl("completion", "zsh")
        self.assertEqual(rc, 0)
        self.assertTrue(zsh.startswith("#compdef roamctl"))
        self.assertIn("complete -F _roamctl roamctl", zsh)
        rc, _, err = self.ctl("completion", "fish")
        self.assertEqual(rc, 2)
        self.assertIn("fish", err)

    def test_xdg_config_home_and_checked_keys(self):
        xdg = tempfile.mkdtemp(prefix="roamctl-xdg-")
        path = os.path.join(xdg, "roamctl.json")
        with open(path, "w") as f:
            json.dump({"url": self.url, "key_file": self.keyfile, "output": "json"}, f)
        rc, out, err = self.ctl("whoami", env={"XDG_CONFIG_HOME": xdg})
        self.assertEqual(rc, 0, err)
        self.assertTrue(json.loads(out)["operator"])
        for bad, word in (({"url": self.url, "colour": "red"}, "colour"),
                          ({"url": 4271}, "url"),
                          ({"output": "yaml"}, "output")):
            with open(path, "w") as f:
                json.dump(bad, f)
            rc, out, err = self.ctl("whoami", env={"XDG_CONFIG_HOME": xdg})
            self.assertEqual(rc, 2, bad)
            self.assertIn(word, err)
            self.assertIn(path, err)
        with open(path, "w") as f:
            f.write('{"url": "x",\n "key": }')
        rc, _, err = self.ctl("whoami", env={"XDG_CONFIG_HOME": xdg})
        self.assertEqual(rc, 2)
        self.assertIn("line 2", err)

    def test_tls_message_on_a_plain_listener(self):
        https = self.url.replace("http://", "https://")
        rc, out, err = self.ctl("whoami", "--url", https, "--key-file", self.keyfile)
        self.assertEqual(rc, 3, err)
        self.assertIn("does not speak TLS", err)
        self.assertIn("http://", err)


if __name__ == "__main__":
    unittest.main()
