"""roamhubd's TS002 listener over TLS: members authenticated by client certificate (mapped by
exact SHA-256 fingerprint) or by Bearer key without a certificate; certificates from an unknown
CA refused at the handshake; SIGHUP swaps the server certificate without dropping connections.
The hub's own TLS connection I/O (broker/conn_io.c): pipelined requests in one record, a request
split over many records and over TCP segments that end inside a record, a client that half-closes
after its request, and a large answer to a client that does not read at first (the admin listener
over TLS serving a console file).
Certificates are made at test time with the openssl CLI in a temporary directory."""
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
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
        # a console file larger than a TLS record and than the socket buffers
        cls.console = os.path.join(d, "console")
        os.mkdir(cls.console)
        cls.big = os.urandom(1536 * 1024).hex().encode()[:3 * 1024 * 1024]
        with open(os.path.join(cls.console, "app.js"), "wb") as f:
            f.write(cls.big)
        with open(os.path.join(cls.console, "index.html"), "wb") as f:
            f.write(b"<!doctype html><title>x</title>")
        cls.hub = Hub(table, config={"ts002": {
            "tls_cert": os.path.join(d, "hub.pem"), "tls_key": os.path.join(d, "hub.key"),
            "tls_client_ca": os.path.join(d, "memberca.pem")},
            "admin": {"tls_cert": os.path.join(d, "hub.pem"), "tls_key": os.path.join(d, "hub.key")},
            "console": {"dir": cls.console}})
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

    # ---- the TLS connection's own I/O (broker/conn_io.c) ----

    def raw_request(self, msg):
        body = json.dumps(msg).encode()
        return (b"POST / HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body

    def read_answers(self, sock, n):
        """Reads n HTTP answers from sock; returns [(status, parsed JSON body)]."""
        buf = b""
        out = []
        while len(out) < n:
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                self.assertTrue(chunk, "connection closed after %d of %d answers" % (len(out), n))
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(buf) < length:
                chunk = sock.recv(65536)
                self.assertTrue(chunk, "connection closed inside an answer")
                buf += chunk
            out.append((int(head.split(b" ")[1]), json.loads(buf[:length])))
            buf = buf[length:]
        return out

    def tls_socket(self):
        s = socket.create_connection(("127.0.0.1", self.hub.port), timeout=5)
        return self.ctx("netA").wrap_socket(s, server_hostname="127.0.0.1")

    def assert_relayed_in_order(self, answers, msgs):
        self.assertEqual([st for st, _ in answers], [200] * len(msgs))
        for (_, ans), msg in zip(answers, msgs):
            self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
            self.assertEqual(ans["TransactionID"], msg["TransactionID"])

    def test_pipelined_requests_in_one_record_answered_in_order(self):
        msgs = [pr_start_req(A, B, DATA_APP_B) for _ in range(5)]
        with self.tls_socket() as t:
            t.sendall(b"".join(self.raw_request(m) for m in msgs))  # one TLS record
            self.assert_relayed_in_order(self.read_answers(t, 5), msgs)
            # the connection stays usable
            m = pr_start_req(A, B, DATA_APP_B)
            t.sendall(self.raw_request(m))
            self.assert_relayed_in_order(self.read_answers(t, 1), [m])

    def test_request_split_over_many_records(self):
        msgs = [pr_start_req(A, B, DATA_APP_B) for _ in range(2)]
        data = b"".join(self.raw_request(m) for m in msgs)
        with self.tls_socket() as t:
            for i in range(0, len(data), 7):  # a record every 7 bytes, most in one TCP segment
                t.sendall(data[i:i + 7])
                if i % 140 == 0:
                    time.sleep(0.005)
            self.assert_relayed_in_order(self.read_answers(t, 2), msgs)

    def test_tcp_segments_ending_inside_a_record(self):
        # TLS records made in memory (ssl.MemoryBIO) and written over plain TCP cut inside
        # records, with pauses: the hub must wait for the rest of a record it has begun
        s = socket.create_connection(("127.0.0.1", self.hub.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.ctx("netA").wrap_bio(inc, outg, server_hostname="127.0.0.1")

        def pump_until(cond):
            while not cond():
                try:
                    obj.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                if outg.pending:
                    s.sendall(outg.read())
                if cond():
                    break
                chunk = s.recv(65536)
                self.assertTrue(chunk, "hub closed during the handshake")
                inc.write(chunk)

        try:
            pump_until(lambda: obj.version() is not None and not outg.pending and
                       self._handshake_done(obj))
            msgs = [pr_start_req(A, B, DATA_APP_B) for _ in range(3)]
            for m in msgs:
                obj.write(self.raw_request(m))   # one record per request
            wire = outg.read()
            cuts = [3, 40, len(wire) // 2, len(wire) - 5]   # inside header, inside records
            prev = 0
            for c in cuts + [len(wire)]:
                s.sendall(wire[prev:c])
                prev = c
                time.sleep(0.05)

            class R:   # read_answers over the memory BIO
                def recv(_, n):
                    while True:
                        try:
                            return obj.read(n)
                        except ssl.SSLWantReadError:
                            chunk = s.recv(65536)
                            if not chunk:
                                return b""
                            inc.write(chunk)
            answers = self.read_answers(R(), 3)
            self.assert_relayed_in_order(answers, msgs)
        finally:
            s.close()

    @staticmethod
    def _handshake_done(obj):
        try:
            obj.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    def test_half_close_after_request_still_answered(self):
        m = pr_start_req(A, B, DATA_APP_B)
        with self.tls_socket() as t:
            t.sendall(self.raw_request(m))
            socket.socket.shutdown(t, socket.SHUT_WR)   # TCP FIN without close_notify
            self.assert_relayed_in_order(self.read_answers(t, 1), [m])

    def test_large_answer_to_a_client_that_reads_late(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.d, "hubca.pem"))
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", self.hub.admin_port))
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            get = b"GET /console/app.js HTTP/1.1\r\nHost: hub\r\n\r\n"
            t.sendall(get)
            time.sleep(0.5)   # the hub's socket fills up: its writes must wait and resume
            # meanwhile another connection is served
            st, _ = self._get_admin_tls(ctx, "/console/index.html")
            self.assertEqual(st, 200)
            for i in range(2):   # and a second answer on the same connection after the first
                buf = b""
                while b"\r\n\r\n" not in buf:
                    buf += t.recv(65536)
                head, body = buf.split(b"\r\n\r\n", 1)
                self.assertIn(b" 200 ", head.split(b"\r\n")[0])
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                self.assertEqual(length, len(self.big))
                while len(body) < length:
                    chunk = t.recv(1 << 20)
                    self.assertTrue(chunk, "closed inside the answer")
                    body += chunk
                self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(self.big).hexdigest())
                if i == 0:
                    t.sendall(get)

    def _get_admin_tls(self, ctx, path):
        conn = http.client.HTTPSConnection("127.0.0.1", self.hub.admin_port, timeout=5, context=ctx)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
