"""The Debian package built from the tree (`cpack -G DEB` with the build's CPackConfig.cmake):
its control fields declare the Debian dependencies (computed by dpkg-shlibdeps), the conffile
and maintainer scripts are in it, its files are where Debian puts them (/usr/sbin, /usr/bin,
/usr/lib/systemd/system, /etc/roamhub), and the binaries unpacked from it run and report the
build's version.
"""
import glob
import os
import shutil
import tempfile
import unittest

from test_install import BUILD, project_version, run  # noqa: E402 (helpers only, no tests)


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="roamhub-pkg-")
        r = run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"),
                 "-B", cls.out], timeout=300)
        if r.returncode != 0:
            raise AssertionError("cpack failed:\n" + r.stdout + r.stderr)
        debs = glob.glob(os.path.join(cls.out, "roamhub_*.deb"))
        if len(debs) != 1:
            raise AssertionError("expected one .deb, got %s" % debs)
        cls.deb = debs[0]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def field(self, name):
        r = run(["dpkg-deb", "-f", self.deb, name])
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def test_control_fields(self):
        version = project_version()
        self.assertEqual(self.field("Package"), "roamhub")
        self.assertEqual(self.field("Version"), version)
        self.assertEqual(self.field("Architecture"), run(["dpkg", "--print-architecture"]).stdout.strip())
        deps = [d.strip().split(" ")[0] for d in self.field("Depends").split(",")]
        for lib in ("libc6", "libssl3", "liblmdb0", "libcjson1", "libjwt0", "libsystemd0",
                    "libprotobuf-c1", "libevent-core-2.1-7", "libhttp-parser2.9", "zlib1g"):
            self.assertIn(lib, deps)
        # each declared dependency is a real Debian package this machine knows
        for d in deps:
            r = run(["apt-cache", "show", "--no-all-versions", d])
            self.assertEqual(r.returncode, 0, "unknown Debian package %s" % d)

    def test_contents_and_scripts(self):
        r = run(["dpkg-deb", "-c", self.deb])
        self.assertEqual(r.returncode, 0, r.stderr)
        files = {line.split()[-1] for line in r.stdout.splitlines()}
        for p in ("./usr/sbin/roamhubd", "./usr/bin/roamctl", "./usr/bin/roamdb",
                  "./usr/lib/systemd/system/roamhubd.service", "./usr/lib/sysusers.d/roamhub.conf",
                  "./usr/lib/tmpfiles.d/roamhub.conf", "./etc/roamhub/roamhub.json",
                  "./usr/share/man/man8/roamhubd.8", "./usr/share/man/man1/roamctl.1",
                  "./usr/share/doc/roamhub/openapi.yaml"):
            self.assertIn(p, files)
        ctrl = tempfile.mkdtemp(prefix="roamhub-ctrl-")
        try:
            r = run(["dpkg-deb", "-e", self.deb, ctrl])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(ctrl, "conffiles")) as f:
                self.assertEqual(f.read().split(), ["/etc/roamhub/roamhub.json"])
            for s in ("postinst", "prerm", "postrm"):
                self.assertTrue(os.access(os.path.join(ctrl, s), os.X_OK), s)
                r = run(["sh", "-n", os.path.join(ctrl, s)])
                self.assertEqual(r.returncode, 0, s + ": " + r.stderr)
        finally:
            shutil.rmtree(ctrl, ignore_errors=True)

    def test_unpacked_binaries_run(self):
        root = tempfile.mkdtemp(prefix="roamhub-deb-")
        try:
            r = run(["dpkg-deb", "-x", self.deb, root])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(root, "usr/lib/systemd/system/roamhubd.service")) as f:
                self.assertIn("ExecStart=/usr/sbin/roamhubd -c", f.read())
            built = run([os.path.join(BUILD, "broker", "roamhubd"), "--version"]).stdout
            r = run([os.path.join(root, "usr/sbin/roamhubd"), "--version"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, built)
            r = run([os.path.join(root, "usr/sbin/roamhubd"), "--check", "-c",
                     os.path.join(root, "etc/roamhub/roamhub.json")])
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
