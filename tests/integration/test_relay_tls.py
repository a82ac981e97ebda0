"""roamhubd's TS002 listener over TLS: members authenticated by client certificate (mapped by
exact SHA-256 fingerprint) or by Bearer key without a certificate; certificates from an unknown
CA refused at the handshake; SIGHUP swaps the server certificate without dropping connections.
Certificates are made at test time with the openssl CLI in a temporary directory."""
import http.client
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import ALL_DOWN, ALL_UP, Hub, Member, member_records, merge, pr_start_req  # noqa: E402

A, B = "000202", "000505"
DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"


def run(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", name + ".key", "-out", name + ".pem", "-days", "2", "-subj", "/CN=" + name, cwd=d)


def make_cert(d, name, ca, san=None):
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n" if san else "extendedKeyUsage=clientAuth\n")
    run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
        "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", ext, cwd=d)


def fingerprint(d, name):
    out = subprocess.run(["openssl", "x509", "-in", name + ".pem", "-noout", "-fingerprint", "-sha256"],
                         cwd=d, check=True, capture_output=True, text=True).stdout
    return out.strip().split("=", 1)[1].replace(":", "").lower()


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="roamhub-tls-")
        d = cls.d
        make_ca(d, "hubca")
        make_cert(d, "hub", "hubca", san=True)
        make_cert(d, "hub2", "hubca", san=True)
        make_ca(d, "memberca")
        make_cert(d, "netA", "memberca")
        make_ca(d, "rogueca")
        make_cert(d, "rogue", "rogueca")
        cls.a = Member("netA", A, "key-A-unused-by-A", mode="sync")
        cls.b = Member("netB", B, "key-B-0123456789", mode="sync")
        recs_a = member_records(cls.a)
        recs_a["members"][0]["api_key_hashes"] = []
        recs_a["members"][0]["cert_fingerprints"] = [fingerprint(d, "netA")]
        table = merge(recs_a, member_records(cls.b), {
            "devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B}],
            "policies": [{"forwarder_net_id": A, "home_net_id": B, "uplink": ALL_UP, "downlink": ALL_DOWN}]})
        cls.hub = Hub(table, config={"ts002": {
            "tls_cert": os.path.join(d, "hub.pem"), "tls_key": os.path.join(d, "hub.key"),
            "tls_client_ca": os.path.join(d, "memberca.pem")}})
        for m in (cls.a, cls.b):
            m.hub = cls.hub

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()
        cls.a.stop()
        cls.b.stop()
        shutil.rmtree(cls.d, ignore_errors=True)

    def ctx(self, cert=None):
        c = ssl.create_default_context(cafile=os.path.join(self.d, "hubca.pem"))
        if cert:
            c.load_cert_chain(os.path.join(self.d, cert + ".pem"), os.path.join(self.d, cert + ".key"))
        return c

    def test_client_certificate_authenticates_member(self):
        st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), tls_context=self.ctx("netA"))
        self.assertEqual(st, 200)
        self.assertEqual(ans["Result"]["ResultCode"], "Success")
        self.assertEqual(self.b.get()["SenderID"], A)

    def test_certificate_does_not_let_member_speak_for_another(self):
        st, ans, _ = self.hub.post(pr_start_req(B, A, DATA_APP_B), tls_context=self.ctx("netA"))
        self.assertEqual(ans["Result"]["ResultCode"], "UnknownSender")

    def test_bearer_key_without_client_certificate(self):
        req = pr_start_req(B, A, DATA_APP_B)
        st, ans, _ = self.hub.post(req, self.b.key, tls_context=self.ctx())
        self.assertEqual(st, 200)
        # authenticated as B; the DevAddr belongs to B itself, so it is not routed back
        self.assertEqual(ans["Result"]["ResultCode"], "UnknownDevAddr")

    def test_no_credentials_refused(self):
        st, _, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), tls_context=self.ctx())
        self.assertEqual(st, 401)

    def test_certificate_from_unknown_ca_refused_at_handshake(self):
        with self.assertRaises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            self.hub.post(pr_start_req(A, B, DATA_APP_B), tls_context=self.ctx("rogue"))

    def test_plain_http_refused_on_tls_listener(self):
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
            self.hub.post(pr_start_req(A, B, DATA_APP_B), "key-B-0123456789")

    def test_sighup_reloads_certificate_without_dropping_connections(self):
        conn = http.client.HTTPSConnection("127.0.0.1", self.hub.port, timeout=5, context=self.ctx("netA"))
        body = __import__("json").dumps(pr_start_req(A, B, DATA_APP_B))
        conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        serial_before = conn.sock.getpeercert()["serialNumber"]
        # swap the certificate files and reload
        cfg = self.hub.config
        cfg["ts002"]["tls_cert"] = os.path.join(self.d, "hub2.pem")
        cfg["ts002"]["tls_key"] = os.path.join(self.d, "hub2.key")
        self.hub.write_config()
        self.hub.sighup()
        deadline = time.time() + 5
        while not re.search(r'tls_renewed="?ts002', self.hub.logs()) and time.time() < deadline:
            time.sleep(0.05)
        self.assertRegex(self.hub.logs(), r'tls_renewed="?ts002')
        # the existing connection keeps working
        conn.request("POST", "/", body=__import__("json").dumps(pr_start_req(A, B, DATA_APP_B)),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        conn.close()
        # a new connection gets the new certificate
        conn2 = http.client.HTTPSConnection("127.0.0.1", self.hub.port, timeout=5, context=self.ctx("netA"))
        conn2.request("POST", "/", body=__import__("json").dumps(pr_start_req(A, B, DATA_APP_B)),
                      headers={"Content-Type": "application/json"})
        r = conn2.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        self.assertNotEqual(conn2.sock.getpeercert()["serialNumber"], serial_before)
        conn2.close()


if __name__ == "__main__":
    unittest.main()
