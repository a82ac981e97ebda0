"""roamhubd as a service: the sd_notify protocol seen on a real notify socket (READY=1 only once
both listeners answer, RELOADING=1 + MONOTONIC_USEC then READY=1 around SIGHUP, WATCHDOG=1 pings,
STOPPING=1 on SIGTERM); SIGHUP applies listener limits of both listeners and the admin
listener's TLS certificate, logs one line naming what changed, and keeps the running
configuration whole when the new file is refused; `--check` refuses what the start would
refuse, JSON syntax errors with line and column."""
import json
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import http.client

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (ALL_DOWN, ALL_UP, ROAMHUBD, Hub, Member, answer,  # noqa: E402
                             member_records, merge, pr_start_req)

TABLE = {"networks": [{"net_id": "000013", "name": "A"}]}


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def post_size(port, path, size, tls_ctx=None):
    """POSTs a JSON body of `size` bytes; returns the HTTP status."""
    body = b'{"x": "' + b"a" * (size - 9) + b'"}'
    if tls_ctx:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=tls_ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


class NotifyTest(unittest.TestCase):
    def test_notify_protocol(self):
        d = tempfile.mkdtemp(prefix="roamhub-notify-")
        path = os.path.join(d, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        env_before = dict(os.environ)
        os.environ.update({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
        hub = None
        # read the socket all the time, as systemd does (a full datagram queue blocks the sender)
        inbox = queue.Queue()

        def reader():
            while True:
                try:
                    m = sock.recv(4096).decode()
                except OSError:
                    return
                inbox.put(dict(l.split("=", 1) for l in m.splitlines() if "=" in l))
        threading.Thread(target=reader, daemon=True).start()
        try:
            hub = Hub(TABLE, workers=1)

            def recv_until(key):
                while True:
                    fields = inbox.get(timeout=10)
                    if key in fields:
                        return fields
            ready = recv_until("READY")
            # ready means serving: both listeners answer right now
            st, _ = hub.get_admin("/healthz")
            self.assertEqual(st, 200)
            conn = socket.create_connection(("127.0.0.1", hub.port), timeout=2)
            conn.close()
            self.assertIn("listening", ready.get("STATUS", ""))
            self.assertEqual(ready["READY"], "1")
            t0 = time.time()
            pings = 0
            while time.time() - t0 < 0.7:
                if "WATCHDOG" in recv_until("WATCHDOG"):
                    pings += 1
            self.assertGreaterEqual(pings, 3, "watchdog at half of 200 ms")
            hub.sighup()
            rel = recv_until("RELOADING")
            self.assertEqual(rel["RELOADING"], "1")
            mono = int(rel["MONOTONIC_USEC"])
            self.assertLess(abs(mono / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)), 5)
            self.assertEqual(recv_until("READY")["READY"], "1")
            hub.proc.send_signal(signal.SIGTERM)
            self.assertEqual(recv_until("STOPPING")["STOPPING"], "1")
            self.assertEqual(hub.proc.wait(timeout=10), 0)
        finally:
            os.environ.clear()
            os.environ.update(env_before)
            if hub:
                hub.cleanup()
            sock.close()
            shutil.rmtree(d, ignore_errors=True)


def make_cert(d, name):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
                    "-subj", "/CN=" + name, "-addext", "subjectAltName=IP:127.0.0.1"],
                   cwd=d, check=True, capture_output=True)


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.hub = None

    def tearDown(self):
        if self.hub:
            self.hub.cleanup()

    def reload(self, marker):
        """SIGHUP and wait for the next reload line; returns it."""
        n = self.hub.logs().count(marker)
        self.hub.sighup()
        wait_for(lambda: self.hub.logs().count(marker) > n, what=marker)
        time.sleep(0.1)  # the workers apply their listener limits through their inbox
        return [l for l in self.hub.logs().splitlines() if marker in l][-1]

    def test_limits_apply_and_refused_file_keeps_running_config(self):
        self.hub = Hub(TABLE, workers=2, config={"ts002": {"max_body_bytes": 65536},
                                                 "admin": {"max_body_bytes": 65536}})
        h = self.hub
        self.assertNotEqual(post_size(h.port, "/", 8192), 413)
        self.assertNotEqual(post_size(h.admin_port, "/api/v1/networks", 8192), 413)
        h.config["ts002"]["max_body_bytes"] = 4096
        h.config["admin"]["max_body_bytes"] = 4096
        h.config["ts002"]["port"] = 1  # restart-only
        h.write_config()
        line = self.reload("configuration reloaded")
        self.assertIn("ts002.max_body_bytes", line)
        self.assertIn("admin.max_body_bytes", line)
        self.assertRegex(line, r'restart_needed="[^"]*ts002\.port')
        for _ in range(4):  # every worker (the kernel spreads connections over SO_REUSEPORT)
            self.assertEqual(post_size(h.port, "/", 8192), 413)
        self.assertEqual(post_size(h.admin_port, "/api/v1/networks", 8192), 413)
        # a refused file: nothing of it applies, not even its valid keys
        h.config["ts002"]["max_body_bytes"] = 65536
        h.config["relay"]["drain_ms"] = "soon"
        h.write_config()
        line = self.reload("reload refused")
        self.assertIn("relay.drain_ms", line)
        for _ in range(4):
            self.assertEqual(post_size(h.port, "/", 8192), 413)
        with open(h.config_path, "w") as f:
            f.write('{\n  "log_level": "info",\n  "relay": {,}\n}\n')
        line = self.reload("reload refused")
        self.assertRegex(line, r"roamhub\.json:3:\d+: JSON syntax error")
        self.assertEqual(post_size(h.port, "/", 8192), 413)
        self.assertIsNone(h.proc.poll())

    def test_sighup_during_the_drain_is_ignored(self):
        a, b = Member("netA", "000202", "key-A-0123456789"), Member("netB", "000505", "key-B-0123456789")

        def slow(req):
            time.sleep(0.8)
            return answer(req, "Success")
        b.answer_fn = slow
        try:
            self.hub = Hub(merge(member_records(a), member_records(b), {
                "devaddr_blocks": [{"prefix": "0A000000/7", "net_id": "000505"}],
                "policies": [{"forwarder_net_id": "000202", "home_net_id": "000505",
                              "uplink": ALL_UP, "downlink": ALL_DOWN}]}), workers=2)
            result = {}
            th = threading.Thread(target=lambda: result.setdefault("r", self.hub.post(
                pr_start_req("000202", "000505", "40" "0100000a" "00" "0100" "01" "aabb" "01020304"),
                a.key)))
            th.start()
            b.get()                              # in flight
            self.hub.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: "draining" in self.hub.logs(), what="drain")
            self.hub.sighup()
            th.join()
            self.assertEqual(result["r"][0], 200)
            self.assertEqual(self.hub.proc.wait(timeout=10), 0, self.hub.logs())
            self.assertIn("reload ignored", self.hub.logs())
        finally:
            a.stop()
            b.stop()

    def test_admin_tls_certificate_reloaded(self):
        d = tempfile.mkdtemp(prefix="roamhub-tls-")
        try:
            make_cert(d, "one")
            make_cert(d, "two")
            shutil.copy(os.path.join(d, "one.pem"), os.path.join(d, "hub.pem"))
            shutil.copy(os.path.join(d, "one.key"), os.path.join(d, "hub.key"))
            self.hub = Hub(TABLE, workers=1, config={"admin": {
                "tls_cert": os.path.join(d, "hub.pem"), "tls_key": os.path.join(d, "hub.key")}})

            def peer_cn():
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                with socket.create_connection(("127.0.0.1", self.hub.admin_port), timeout=5) as s:
                    with ctx.wrap_socket(s) as t:
                        der = t.getpeercert(binary_form=True)
                out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                                     input=der, capture_output=True, check=True).stdout.decode()
                return out.strip().rsplit("=", 1)[1].strip()
            self.assertEqual(peer_cn(), "one")
            shutil.copy(os.path.join(d, "two.pem"), os.path.join(d, "hub.pem"))
            shutil.copy(os.path.join(d, "two.key"), os.path.join(d, "hub.key"))
            line = self.reload("configuration reloaded")
            self.assertRegex(line, r'tls_renewed="?admin')
            self.assertEqual(peer_cn(), "two")
            # a key that does not match: refused, the running certificate stays
            shutil.copy(os.path.join(d, "one.key"), os.path.join(d, "hub.key"))
            line = self.reload("reload refused")
            self.assertIn("admin TLS", line)
            self.assertEqual(peer_cn(), "two")
        finally:
            shutil.rmtree(d, ignore_errors=True)


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="roamhub-check-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def check(self, cfg):
        path = os.path.join(self.dir, "c.json")
        with open(path, "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
        return subprocess.run([ROAMHUBD, "--check", "-c", path], capture_output=True, text=True,
                              timeout=30)

    def refused(self, cfg, *words):
        r = self.check(cfg)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)
        return r.stderr

    def test_good_configuration(self):
        r = self.check({"ts002": {"address": "::1", "port": 0}, "admin": {"port": 0}})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)

    def test_what_the_start_refuses(self):
        self.refused('{\n  "workers": 1,\n  "ts002": {"port": 70000,}\n}', "c.json:3:")
        err = self.refused('{"workers": 1\n\n   "x": 2}', "JSON syntax error")
        self.assertRegex(err, r"c\.json:3:\d+: JSON syntax error")
        self.refused({"ts002": {"address": "localhost"}}, "ts002.address", "localhost")
        self.refused({"admin": {"address": "1.2.3"}}, "admin.address")
        self.refused({"import": os.path.join(self.dir, "missing.json")}, "import", "missing.json")
        self.refused({"ts002": {"tls_client_ca": "/etc/hostname"}}, "ts002.tls_client_ca")
        self.refused({"admin": {"tls_require_client_cert": True}},
                     "admin.tls_require_client_cert")
        self.refused({"ts002": {"tls_cert": os.path.join(self.dir, "no.pem"),
                                "tls_key": os.path.join(self.dir, "no.key")}}, "ts002 TLS", "no.pem")
        self.refused({"admin": {"jwt_secret_file": os.path.join(self.dir, "nosecret")}},
                     "admin.jwt_secret_file")
        key = os.path.join(self.dir, "operator.key")
        with open(key, "w") as f:
            f.write("op-1:" + "s" * 32 + "\n")
        os.chmod(key, 0o644)
        self.refused({"admin": {"operator_key_file": key}}, "admin.operator_key_file", "chmod 600")
        self.refused({"database": {"path": key}}, "database.path", "not a directory")

    def test_start_refuses_the_same(self):
        # what --check names, the start names too (TLS option without its certificate)
        path = os.path.join(self.dir, "s.json")
        with open(path, "w") as f:
            json.dump({"ts002": {"port": 0, "tls_client_ca": "/etc/hostname"}, "admin": {"port": 0},
                       "database": {"path": os.path.join(self.dir, "db")}}, f)
        r = subprocess.run([ROAMHUBD, "-c", path], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("ts002.tls_client_ca", r.stderr)


if __name__ == "__main__":
    unittest.main()
