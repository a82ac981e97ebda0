"""roamhubd's gRPC listener for Packet Broker Agents (issue 12), driven by a client written
independently of the server: Python grpcio (Debian python3-grpcio / python3-grpc-tools) with
classes generated from the project's proto/packetbroker/*.proto at test time, plus raw HTTP/2
bytes where grpcio hides the transport.

Covered here (the transport; the data-plane RPCs are tested with their own issue steps):
h2c with prior knowledge; TLS that selects ALPN h2 and refuses a client without h2; unknown
services answer UNIMPLEMENTED naming the method, unary and server-streaming alike; 150
concurrent calls on one connection (advertised SETTINGS_MAX_CONCURRENT_STREAMS >= 100);
an HTTP/1.1 request, a silent client and an idle connection are closed in time; the listener
is off unless configured; SIGTERM exits cleanly; SIGHUP swaps the TLS certificate; the agent's
OAuth2 token request form."""
import concurrent.futures
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import AdminClient, Hub, admin_config  # noqa: E402
import json  # noqa: E402
import urllib.parse  # noqa: E402

try:
    import grpc
    from grpc_tools import protoc
except ImportError:  # a Python other than Debian's first on PATH (pyenv): use Debian's packages
    sys.path.append("/usr/lib/python3/dist-packages")
    import grpc
    from grpc_tools import protoc

SOURCE = os.environ.get("ROAMHUB_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
TABLE = {"networks": [], "members": [], "endpoints": []}
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def generate_stubs(out):
    """protoc (grpc_tools) on the project's schema: the client never shares code with the server."""
    proto_dir = os.path.join(SOURCE, "proto")
    wkt = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    files = ["packetbroker/v3.proto", "packetbroker/routing_v1.proto"]
    rc = protoc.main(["protoc", "-I" + proto_dir, "-I" + wkt, "--python_out=" + out,
                      "--grpc_python_out=" + out] + files)
    if rc != 0:
        raise RuntimeError("protoc failed on the project's .proto files")
    sys.path.insert(0, out)


def read_frames(sock, until_eof=True, timeout=5.0):
    """Reads HTTP/2 frames (type, flags, stream, payload) until EOF or the timeout."""
    sock.settimeout(timeout)
    data = b""
    t0 = time.time()
    eof = False
    while time.time() - t0 < timeout:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            eof = True
            break
        if not chunk:
            eof = True
            break
        data += chunk
        if not until_eof:
            break
    frames = []
    while len(data) >= 9:
        length = int.from_bytes(data[0:3], "big")
        if len(data) < 9 + length:
            break
        ftype, flags = data[3], data[4]
        stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        frames.append((ftype, flags, stream, data[9:9 + length]))
        data = data[9 + length:]
    return frames, eof, time.time() - t0


def make_cert(d, cn="hub"):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", "hub.key", "-out", "hub.pem", "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   cwd=d, check=True, capture_output=True)


class GrpcListenerH2c(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gen = tempfile.mkdtemp(prefix="roamhub-pbgen-")
        generate_stubs(cls.gen)
        cls.hub = Hub(TABLE, workers=2, config={"grpc": {
            "address": "127.0.0.1", "port": 0, "handshake_timeout_ms": 500,
            "idle_timeout_ms": 1000, "max_streams": 100}})
        cls.target = "127.0.0.1:%d" % cls.hub.grpc_port

    @classmethod
    def tearDownClass(cls):
        rc = cls.hub.stop()
        logs = cls.hub.logs()
        cls.hub.cleanup()
        shutil.rmtree(cls.gen, ignore_errors=True)
        assert rc == 0, "roamhubd exit %s:\n%s" % (rc, logs)
        assert "ERROR: AddressSanitizer" not in logs and "runtime error" not in logs, logs

    def test_listener_is_on(self):
        self.assertGreater(self.hub.grpc_port, 0)
        self.assertNotEqual(self.hub.grpc_port, self.hub.port)

    def test_unknown_service_is_unimplemented(self):
        with grpc.insecure_channel(self.target) as ch:
            call = ch.unary_unary("/org.packetbroker.iam.v1.NetworkRegistry/GetNetwork",
                                  request_serializer=None, response_deserializer=None)
            with self.assertRaises(grpc.RpcError) as cm:
                call(b"\x08\x13", timeout=5)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
            self.assertIn("unknown method /org.packetbroker.iam.v1.NetworkRegistry/GetNetwork",
                          cm.exception.details())

    def test_generated_stub_call_and_stream_get_a_status(self):
        """The project's schema generates a working client; a method the hub does not serve
        yet ends with a clean status, unary and server-streaming alike."""
        from packetbroker import routing_v1_pb2 as r
        from packetbroker import routing_v1_pb2_grpc as rg
        with grpc.insecure_channel(self.target) as ch:
            stub = rg.ForwarderDataStub(ch)
            req = r.PublishUplinkMessageRequest(forwarder_net_id=0x14, forwarder_tenant_id="tenant-a",
                                                forwarder_cluster_id="eu1")
            with self.assertRaises(grpc.RpcError) as cm:
                stub.Publish(req, timeout=5)
            self.assertIn(cm.exception.code(), (grpc.StatusCode.UNIMPLEMENTED,
                                                grpc.StatusCode.UNAUTHENTICATED))
            stream = stub.Subscribe(r.SubscribeForwarderRequest(forwarder_net_id=0x14, group="eu1"),
                                    timeout=5)
            with self.assertRaises(grpc.RpcError) as cm:
                list(stream)
            self.assertIn(cm.exception.code(), (grpc.StatusCode.UNIMPLEMENTED,
                                                grpc.StatusCode.UNAUTHENTICATED))

    def test_150_concurrent_calls_on_one_connection(self):
        with grpc.insecure_channel(self.target) as ch:
            call = ch.unary_unary("/x.Y/Z", request_serializer=None, response_deserializer=None)

            def one(i):
                try:
                    call(b"", timeout=10)
                    return "OK"
                except grpc.RpcError as e:
                    return e.code()
            with concurrent.futures.ThreadPoolExecutor(max_workers=150) as ex:
                codes = list(ex.map(one, range(150)))
        self.assertEqual(codes, [grpc.StatusCode.UNIMPLEMENTED] * 150)

    def test_settings_advertise_at_least_100_streams(self):
        with socket.create_connection(("127.0.0.1", self.hub.grpc_port), timeout=5) as s:
            s.sendall(PREFACE + EMPTY_SETTINGS)
            frames, _, _ = read_frames(s, until_eof=False)
        settings = [f for f in frames if f[0] == 4 and not f[1] & 1]
        self.assertTrue(settings, frames)
        payload = settings[0][3]
        values = {int.from_bytes(payload[i:i + 2], "big"): int.from_bytes(payload[i + 2:i + 6], "big")
                  for i in range(0, len(payload), 6)}
        self.assertGreaterEqual(values.get(3, 0), 100)  # SETTINGS_MAX_CONCURRENT_STREAMS

    def test_ping_is_answered(self):
        with socket.create_connection(("127.0.0.1", self.hub.grpc_port), timeout=5) as s:
            s.sendall(PREFACE + EMPTY_SETTINGS + b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"pingpong")
            frames, _, _ = read_frames(s, until_eof=False, timeout=0.5)
            more, _, _ = read_frames(s, until_eof=False, timeout=0.5)
        acks = [f for f in frames + more if f[0] == 6 and f[1] & 1]
        self.assertEqual([f[3] for f in acks], [b"pingpong"])

    def test_http1_request_is_closed(self):
        with socket.create_connection(("127.0.0.1", self.hub.grpc_port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            frames, eof, el = read_frames(s, timeout=3)
        self.assertTrue(eof, "connection left open after an HTTP/1.1 request")
        self.assertIn(7, [f[0] for f in frames])  # GOAWAY

    def test_silent_client_is_closed_after_the_handshake_deadline(self):
        with socket.create_connection(("127.0.0.1", self.hub.grpc_port), timeout=5) as s:
            frames, eof, el = read_frames(s, timeout=4)
        self.assertTrue(eof, "silent connection not closed")
        self.assertLess(el, 3.0)

    def test_idle_connection_gets_goaway_and_is_closed(self):
        with socket.create_connection(("127.0.0.1", self.hub.grpc_port), timeout=5) as s:
            s.sendall(PREFACE + EMPTY_SETTINGS)
            frames, eof, el = read_frames(s, timeout=5)
        self.assertTrue(eof, "idle connection not closed")
        self.assertGreater(el, 0.8)  # idle_timeout_ms 1000, not the handshake deadline
        self.assertIn(7, [f[0] for f in frames])


class GrpcListenerTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="roamhub-pbtls-")
        make_cert(cls.d)
        cls.hub = Hub(TABLE, workers=1, config={"grpc": {
            "address": "127.0.0.1", "port": 0, "tls_cert": os.path.join(cls.d, "hub.pem"),
            "tls_key": os.path.join(cls.d, "hub.key")}})

    @classmethod
    def tearDownClass(cls):
        rc = cls.hub.stop()
        logs = cls.hub.logs()
        cls.hub.cleanup()
        shutil.rmtree(cls.d, ignore_errors=True)
        assert rc == 0, "roamhubd exit %s:\n%s" % (rc, logs)

    def ssl_ctx(self, alpn):
        c = ssl.create_default_context(cafile=os.path.join(self.d, "hub.pem"))
        c.set_alpn_protocols(alpn)
        return c

    def test_alpn_h2_selected(self):
        with socket.create_connection(("127.0.0.1", self.hub.grpc_port), timeout=5) as raw:
            with self.ssl_ctx(["h2", "http/1.1"]).wrap_socket(raw, server_hostname="127.0.0.1") as s:
                self.assertEqual(s.selected_alpn_protocol(), "h2")

    def test_client_without_h2_is_refused(self):
        with socket.create_connection(("127.0.0.1", self.hub.grpc_port), timeout=5) as raw:
            with self.assertRaises(ssl.SSLError):
                with self.ssl_ctx(["http/1.1"]).wrap_socket(raw, server_hostname="127.0.0.1") as s:
                    s.recv(1)

    def test_grpc_over_tls(self):
        with open(os.path.join(self.d, "hub.pem"), "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        target = "127.0.0.1:%d" % self.hub.grpc_port
        with grpc.secure_channel(target, creds) as ch:
            call = ch.unary_unary("/org.packetbroker.iam.v1.NetworkRegistry/GetNetwork",
                                  request_serializer=None, response_deserializer=None)
            with self.assertRaises(grpc.RpcError) as cm:
                call(b"", timeout=5)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


class GrpcTlsReload(unittest.TestCase):
    def test_sighup_swaps_the_certificate(self):
        d = tempfile.mkdtemp(prefix="roamhub-pbtls2-")
        make_cert(d, cn="first")
        hub = Hub(TABLE, workers=1, config={"grpc": {
            "address": "127.0.0.1", "port": 0, "tls_cert": os.path.join(d, "hub.pem"),
            "tls_key": os.path.join(d, "hub.key")}})
        try:
            def served_cn():
                c = ssl.create_default_context()
                c.check_hostname = False
                c.verify_mode = ssl.CERT_NONE
                c.set_alpn_protocols(["h2"])
                with socket.create_connection(("127.0.0.1", hub.grpc_port), timeout=5) as raw:
                    with c.wrap_socket(raw) as s:
                        der = s.getpeercert(binary_form=True)
                out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                                     input=der, capture_output=True, check=True).stdout.decode()
                return out.strip()
            self.assertIn("first", served_cn())
            make_cert(d, cn="second")
            hub.sighup()
            deadline = time.time() + 5
            while time.time() < deadline and "second" not in served_cn():
                time.sleep(0.1)
            self.assertIn("second", served_cn())
        finally:
            rc = hub.stop()
            hub.cleanup()
            shutil.rmtree(d, ignore_errors=True)
        self.assertEqual(rc, 0)


class AgentTokenRequest(unittest.TestCase):
    """The token request exactly as The Things Stack's agent sends it (x/oauth2 AuthStyleInParams:
    credentials, scope and a space-separated audience as form fields; packet-broker-api.md
    section 5) is answered with what x/oauth2 needs. The Packet Broker identity claim inside the
    token is not issued yet (issue 12 step 3)."""

    def test_form_with_scope_and_audience(self):
        hub = Hub(TABLE, workers=1, config={"admin": admin_config()})
        try:
            key_id, secret = AdminClient(hub).operator_key().split(":", 1)
            body = urllib.parse.urlencode({
                "grant_type": "client_credentials", "client_id": key_id, "client_secret": secret,
                "scope": "networks", "audience": "hub.example.net localhost"}).encode()
            st, doc, _ = AdminClient(hub).raw(
                "POST", "/api/v1/oauth/token", body=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"})
            self.assertEqual(st, 200, doc)
            if isinstance(doc, (bytes, str)):
                doc = json.loads(doc)
            self.assertEqual(doc["token_type"].lower(), "bearer")
            self.assertEqual(len(doc["access_token"].split(".")), 3)
            self.assertIsInstance(doc["expires_in"], int)
            self.assertGreater(doc["expires_in"], 10)  # x/oauth2 refreshes ~10 s before expiry
            # wrong secret: refused, nothing issued
            bad = body.replace(urllib.parse.quote_plus(secret).encode(), b"wrong")
            st, doc, _ = AdminClient(hub).raw("POST", "/api/v1/oauth/token", body=bad, headers={
                "Content-Type": "application/x-www-form-urlencoded"})
            self.assertEqual(st, 401)
        finally:
            rc = hub.stop()
            hub.cleanup()
        self.assertEqual(rc, 0)


class GrpcListenerOffByDefault(unittest.TestCase):
    def test_no_grpc_section_no_listener(self):
        hub = Hub(TABLE, workers=1)
        try:
            self.assertEqual(hub.grpc_port, 0)
        finally:
            rc = hub.stop()
            hub.cleanup()
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()
