"""`cmake --install` into a temporary prefix, then the installed files checked with the tools an
operator uses: every installed binary answers --version (the one project version) and --help
(on stdout), has a man page generated from that help, the installed roamhubd starts from the
installed prefix and serves /healthz, the installed unit passes `systemd-analyze verify` and is
rated OK or better by `systemd-analyze security --offline`, and `systemd-sysusers` creates the
unit's user from the installed sysusers.d file.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

import roamhub_harness as h

BUILD = h.BUILD
SOURCE = os.environ.get("ROAMHUB_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARIES = {"sbin": ["roamhubd"], "bin": ["roamctl", "roamdb", "roamns", "roamsim", "roamcheck"]}
MAN_SECTION = {"roamhubd": 8}


def project_version():
    with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
        return re.search(r"project\(roamhub VERSION (\d+\.\d+\.\d+)", f.read()).group(1)


def run(args, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run(args, capture_output=True, text=True, **kw)


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = tempfile.mkdtemp(prefix="roamhub-install-")
        cls.cwd = tempfile.mkdtemp(prefix="roamhub-install-cwd-")
        r = run(["cmake", "--install", BUILD, "--prefix", cls.prefix], timeout=300, cwd=cls.cwd)
        if r.returncode != 0:
            raise AssertionError("cmake --install failed:\n" + r.stdout + r.stderr)
        cls.cwd_after = os.listdir(cls.cwd)
        os.rmdir(cls.cwd) if not cls.cwd_after else shutil.rmtree(cls.cwd)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.prefix, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.prefix, *parts)

    def binaries(self):
        for d, names in BINARIES.items():
            for n in names:
                yield n, self.path(d, n)

    def test_version_of_the_benchmarks(self):
        """The benchmark programs are not installed; they answer --version alike."""
        built = run([os.path.join(BUILD, "broker", "roamhubd"), "--version"]).stdout.split()[-1]
        names = ["bench-admin", "bench-bi", "bench-lorawan", "bench-peers", "bench-rp"]
        for n in names:
            r = run([os.path.join(BUILD, "tools", n), "--version"])
            self.assertEqual((r.returncode, r.stdout), (0, "%s (roamhub) %s\n" % (n, built)), n)

    def test_install_writes_only_the_prefix(self):
        self.assertEqual(self.cwd_after, [], "cmake --install wrote into its working directory")

    def test_files_installed(self):
        expected = [
            "lib/systemd/system/roamhubd.service", "lib/sysusers.d/roamhub.conf",
            "lib/tmpfiles.d/roamhub.conf", "etc/roamhub/roamhub.json",
            "share/doc/roamhub/README.md", "share/doc/roamhub/CONFIG.md",
            "share/doc/roamhub/openapi.yaml", "share/doc/roamhub/LICENSE",
            "share/doc/roamhub/examples/roamhub.json",
        ]
        for rel in expected:
            self.assertTrue(os.path.isfile(self.path(rel)), rel + " not installed")
        for name, exe in self.binaries():
            self.assertTrue(os.access(exe, os.X_OK), exe + " not installed executable")

    def test_version_of_every_binary(self):
        version = project_version()
        seen = set()
        for name, exe in self.binaries():
            r = run([exe, "--version"])
            self.assertEqual(r.returncode, 0, name + ": " + r.stderr)
            m = re.fullmatch(r"(\S+) \(roamhub\) (\S+)\n", r.stdout)
            self.assertIsNotNone(m, "%s --version printed %r" % (name, r.stdout))
            self.assertEqual(m.group(1), name)
            self.assertTrue(m.group(2).startswith(version), m.group(2))
            seen.add(m.group(2))
        self.assertEqual(len(seen), 1, "binaries of one build disagree on the version: %s" % seen)

    def test_help_on_stdout_and_man_page_from_it(self):
        for name, exe in self.binaries():
            r = run([exe, "--help"])
            self.assertEqual(r.returncode, 0, name)
            self.assertEqual(r.stderr, "", name + " --help wrote to stderr")
            self.assertIn("--version", r.stdout, name)
            sec = MAN_SECTION.get(name, 1)
            page = self.path("share/man/man%d" % sec, "%s.%d" % (name, sec))
            self.assertTrue(os.path.isfile(page), page)
            with open(page) as f:
                text = f.read()
            self.assertRegex(text, r'\.TH %s "%d"' % (name.upper(), sec))
            ver = run([exe, "--version"]).stdout.split()[-1]
            self.assertIn(ver, text, name + ": man page of another build")
            # every option the help lists is in the page (help2man wrote the page from it)
            plain = re.sub(r"\\f[BIRP]|\\[,/]", "", text).replace("\\-", "-")
            for opt in set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", r.stdout)):
                self.assertIn(opt, plain, "%s(%d) lacks %s" % (name, sec, opt))
            rr = run(["man", "-l", "-P", "cat", page], env=dict(os.environ, MANWIDTH="100"))
            self.assertEqual(rr.returncode, 0, rr.stderr)
            self.assertIn("NAME", rr.stdout)

    def test_installed_roamhubd_runs(self):
        r = run([self.path("sbin", "roamhubd"), "--check", "-c", self.path("etc/roamhub/roamhub.json")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)
        # the installed daemon on loopback, ephemeral ports
        old = h.ROAMHUBD
        h.ROAMHUBD = self.path("sbin", "roamhubd")
        try:
            hub = h.Hub({"networks": [{"net_id": "000013", "name": "A"}]}, workers=1)
        finally:
            h.ROAMHUBD = old
        try:
            st, body = hub.get_admin("/healthz")
            self.assertEqual(st, 200)
            logs = hub.logs()
            self.assertRegex(logs, r'starting\W.{0,40}version="?%s' % re.escape(project_version()))
            self.assertEqual(hub.stop(), 0, hub.logs())
        finally:
            hub.cleanup()

    def test_installed_roamdb_takes_options_after_the_command(self):
        db = tempfile.mkdtemp(prefix="roamhub-db-")
        try:
            exe = self.path("bin", "roamdb")
            r = run([exe, "count", "--db", db])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("network 0", r.stdout)
            self.assertEqual(run([exe, "--db", db, "count"]).stdout, r.stdout)
            r = run([exe, "count", "--db", db, "--colour"])
            self.assertEqual(r.returncode, 2)
            r = run([exe, "--colour", "count"])
            self.assertEqual(r.returncode, 2)
            self.assertIn("--colour", r.stderr)
        finally:
            shutil.rmtree(db, ignore_errors=True)

    def test_unit_verifies_and_is_hardened(self):
        unit = self.path("lib/systemd/system/roamhubd.service")
        with open(unit) as f:
            text = f.read()
        self.assertIn("ExecStart=%s -c" % self.path("sbin", "roamhubd"), text)
        self.assertIn("Type=notify", text)
        self.assertIn("file://%s" % self.path("share/doc/roamhub/CONFIG.md"), text)
        env = dict(os.environ, MANPATH=self.path("share/man"))
        r = run(["systemd-analyze", "verify", unit], env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "", r.stderr)
        r = run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"Overall exposure level for roamhubd.service: ([0-9.]+) (\w+)", r.stdout)
        self.assertIsNotNone(m, r.stdout[-500:])
        self.assertIn(m.group(2), ("OK", "SAFE", "PERFECT"), m.group(0))
        self.assertLess(float(m.group(1)), 2.0, m.group(0))
        # the checks the issue names are each passed
        for check in ("CapabilityBoundingSet=~CAP_SYS_ADMIN", "PrivateDevices=",
                      "ProtectKernelTunables=", "ProtectKernelModules=", "RestrictNamespaces=~",
                      "SystemCallFilter=~@", "MemoryDenyWriteExecute=", "UMask="):
            lines = [l for l in r.stdout.splitlines() if check in l]
            self.assertTrue(lines, check)
            for l in lines:
                self.assertFalse(l.lstrip().startswith("✗"), l)

    def test_sysusers_creates_the_user(self):
        root = tempfile.mkdtemp(prefix="roamhub-sysroot-")
        try:
            os.makedirs(os.path.join(root, "etc"))
            r = run(["systemd-sysusers", "--root=" + root, self.path("lib/sysusers.d/roamhub.conf")])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(root, "etc", "passwd")) as f:
                users = [l.split(":") for l in f.read().splitlines()]
            ours = [u for u in users if u[0] == "roamhub"]
            self.assertEqual(len(ours), 1, users)
            self.assertEqual(ours[0][5], "/var/lib/roamhub")
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
