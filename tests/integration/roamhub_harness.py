"""Test harness for integration and e2e tests: starts the real roamhubd on 127.0.0.1 with
ephemeral ports and scripted TS002 member endpoints, and talks to it as members do.

Nothing here decides a test's outcome: tests assert on what the hub and the members saw.
"""
import hashlib
import http.client
import http.server
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "common"))
from free_port import free_port  # noqa: E402,F401  (the tools' copy; tests/e2e imports it from here)

BUILD = os.environ.get("ROAMHUB_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
ROAMHUBD = os.path.join(BUILD, "broker", "roamhubd")


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


class Member:
    """A scripted TS002 peer (an HTTP server on 127.0.0.1): a member network's endpoint in front
    of the hub, or the hub itself in front of a network server (tests/integration/test_roamns.py).

    mode: "sync"  - answers in the HTTP response with answer_fn(request) (or a Success answer);
          "async" - acknowledges with an empty 200, then POSTs the answer to the hub;
          "hang"  - accepts the request and never answers (until stopped).
    answer_all: False - only requests (*Req) are answered, answers and notifications are
                acknowledged with an empty 200; True - answer_fn sees every message, and without
                answer_fn nothing is answered (an empty 200 each).
    own_sender_id: True - an answer's SenderID is set to net_id (a network server answers with
                its own NetID); False - answer_fn's SenderID is sent as it is.
    Every message received is put on self.received (parsed JSON), with the request's
    Authorization header as "_authorization" and its path as "_path".
    """

    def __init__(self, name, net_id, key, mode="sync", answer_fn=None, tls=None, answer_all=False,
                 own_sender_id=True):
        self.name = name
        self.net_id = net_id
        self.key = key  # Bearer API key this member uses towards the hub
        self.mode = mode
        self.answer_fn = answer_fn
        self.answer_all = answer_all
        self.own_sender_id = own_sender_id
        self.received = queue.Queue()
        self.hub = None
        self.stopping = threading.Event()
        member = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                try:
                    msg = json.loads(body)
                except ValueError:
                    msg = {"_raw": body.decode(errors="replace")}
                msg["_authorization"] = self.headers.get("Authorization")
                msg["_path"] = self.path
                member.received.put(msg)
                if member.mode == "hang":
                    member.stopping.wait(60)
                    return
                answer = member.answer_for(msg)
                if member.mode == "async" or answer is None:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    if answer is not None:
                        threading.Thread(target=member.post_async, args=(answer,), daemon=True).start()
                    return
                out = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.port

    def answer_for(self, msg):
        if self.answer_all:
            a = self.answer_fn(msg) if self.answer_fn else None
        elif not msg.get("MessageType", "").endswith("Req"):
            return None  # answers and notifications: acknowledge only
        else:
            a = self.answer_fn(msg) if self.answer_fn else answer(msg, "Success")
        if a is not None and self.own_sender_id:
            a["SenderID"] = self.net_id  # a network server answers with its own NetID
        return a

    def post_async(self, ans):
        time.sleep(0.02)
        self.hub.post(ans, self.key)

    def get(self, timeout=3.0, mtype=None):
        """The next message received (of MessageType mtype: others are dropped); queue.Empty
        after timeout seconds."""
        deadline = time.time() + timeout
        while True:
            m = self.received.get(timeout=max(0.01, deadline - time.time()))
            if mtype is None or m.get("MessageType") == mtype:
                return m

    def assert_nothing(self, wait=0.3):
        try:
            m = self.received.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError("%s unexpectedly received %s" % (self.name, m.get("MessageType")))

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def answer(req, code, description=None, **fields):
    """The TS002 answer to req: swapped IDs, same TransactionID, Ans type, Result."""
    a = {
        "ProtocolVersion": req.get("ProtocolVersion", "1.0"),
        "SenderID": req["ReceiverID"],
        "ReceiverID": req["SenderID"],
        "TransactionID": req["TransactionID"],
        "MessageType": req["MessageType"][:-3] + "Ans",
        "Result": {"ResultCode": code},
    }
    if description:
        a["Result"]["Description"] = description
    a.update(fields)
    return a


ALL_UP = {"join_request": True, "mac_data": True, "application_data": True,
          "signal_quality": True, "localization": True}
ALL_DOWN = {"join_accept": True, "mac_data": True, "application_data": True}


def member_records(m, endpoint=True, protocol="PROTOCOL_VERSION_1_0", timeout_ms=1500):
    recs = {
        "networks": [{"net_id": m.net_id, "name": m.name, "listed": True}],
        "members": [{"id": m.name, "net_ids": [m.net_id], "api_key_hashes": [sha256_hex(m.key)]}],
        "endpoints": [],
    }
    if endpoint:
        recs["endpoints"].append({
            "id": m.name, "net_id": m.net_id, "url": m.url, "protocol_version": protocol,
            "async_answers": m.mode == "async", "timeout_ms": timeout_ms})
    return recs


def merge(*docs):
    out = {}
    for d in docs:
        for k, v in d.items():
            out.setdefault(k, []).extend(v)
    return out


class Hub:
    """A real roamhubd on 127.0.0.1 with ephemeral ports, its own LMDB directory."""

    def __init__(self, table, config=None, workers=2, tls=None):
        self.dir = tempfile.mkdtemp(prefix="roamhub-it-")
        self.table_path = os.path.join(self.dir, "table.json")
        with open(self.table_path, "w") as f:
            json.dump(table, f)
        cfg = {
            "workers": workers,
            "log_level": "info",
            "import": self.table_path,
            "database": {"path": os.path.join(self.dir, "db"), "map_size_mb": 32},
            "ts002": {"address": "127.0.0.1", "port": 0},
            "admin": {"address": "127.0.0.1", "port": 0,
                      "operator_key_file": os.path.join(self.dir, "operator.key")},
            # member endpoints in tests are scripted servers on loopback: allowed explicitly
            # (the hub refuses loopback/private endpoint addresses by default, issue 16 item 7)
            "relay": {"stats_flush_ms": 200, "drain_ms": 2000,
                      "endpoint_allow_ranges": ["127.0.0.0/8"]},
        }
        for section, values in (config or {}).items():
            if isinstance(values, dict):
                cfg.setdefault(section, {}).update(values)
            else:
                cfg[section] = values
        self.config = cfg
        self.config_path = os.path.join(self.dir, "roamhub.json")
        self.ports_path = os.path.join(self.dir, "ports.json")
        self.log_path = os.path.join(self.dir, "roamhubd.log")
        self.tls = tls
        self.proc = None
        self.start()

    def write_config(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)

    def start(self):
        self.write_config()
        if os.path.exists(self.ports_path):
            os.unlink(self.ports_path)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([ROAMHUBD, "-c", self.config_path, "--ports-file", self.ports_path],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("roamhubd exited %s:\n%s" % (self.proc.returncode, self.logs()))
            if os.path.exists(self.ports_path):
                with open(self.ports_path) as f:
                    ports = json.load(f)
                self.port, self.admin_port = ports["ts002"], ports["admin"]
                self.grpc_port = ports.get("grpc", 0)  # 0: the gRPC listener is off
                return
            time.sleep(0.02)
        raise RuntimeError("roamhubd did not start:\n" + self.logs())

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def post(self, msg, key=None, path="/", raw=None, headers=None, timeout=5.0, tls_context=None):
        """POSTs a TS002 message; returns (HTTP status, parsed JSON or None, elapsed s)."""
        body = raw if raw is not None else json.dumps(msg).encode()
        h = {"Content-Type": "application/json"}
        if key:
            h["Authorization"] = "Bearer " + key
        h.update(headers or {})
        if tls_context is not None:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=tls_context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        t0 = time.time()
        try:
            conn.request("POST", path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        el = time.time() - t0
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = {"_raw": data.decode(errors="replace")}
        return r.status, parsed, el

    def get_admin(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.admin_port, path), timeout=5) as r:
            return r.status, r.read().decode()

    def metric(self, name_prefix):
        """Sum of the /metrics samples whose line starts with name_prefix."""
        _, text = self.get_admin("/metrics")
        total = 0
        for line in text.splitlines():
            if line.startswith(name_prefix):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def roamdb(self, *args, stdin=None):
        exe = os.path.join(BUILD, "tools", "roamdb")
        return subprocess.run([exe, "--db", self.config["database"]["path"]] + list(args),
                              input=stdin, capture_output=True, text=True, timeout=30)

    def sighup(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


_txid = [1000]


def next_txid():
    _txid[0] += 1
    return _txid[0]


def pr_start_req(sender, receiver, phy_hex, **ul):
    meta = {
        "DataRate": 5, "ULFreq": 868.1, "RecvTime": "2026-11-21T12:00:00.123Z", "RFRegion": "EU868",
        "GWCnt": 1,
        "GWInfo": [{"ID": "05060708", "RFRegion": "EU868", "RSSI": -80, "SNR": 7.5, "Lat": 52.1,
                    "Lon": 4.3, "FineRecvTime": 12345, "ULToken": "0a0b0c0d", "DLAllowed": True}],
    }
    meta.update(ul)
    return {
        "ProtocolVersion": "1.0", "SenderID": sender, "ReceiverID": receiver,
        "TransactionID": next_txid(), "MessageType": "PRStartReq",
        "PHYPayload": phy_hex, "ULMetaData": meta,
    }


# ---------------------------------------------------------------------------------------------
# Admin API helpers (additive): a small HTTP client for /api/v1/ with token handling.

import base64  # noqa: E402
import gzip  # noqa: E402
import urllib.parse  # noqa: E402


def admin_config(hub_dir=None, **admin):
    """The "admin" config section for a Hub with a bootstrap operator key file and a fixed HS256
    secret (written into hub_dir, or a new temp dir)."""
    d = hub_dir or tempfile.mkdtemp(prefix="roamhub-adm-")
    secret_path = os.path.join(d, "jwt.secret")
    if not os.path.exists(secret_path):
        with open(secret_path, "w") as f:
            f.write("s" * 16 + os.urandom(24).hex())
    cfg = {"operator_key_file": os.path.join(d, "operator.key"), "jwt_secret_file": secret_path,
           "jwt_ttl_s": 300}
    cfg.update(admin)
    return cfg


class AdminClient:
    """Talks to the admin listener of a Hub. Responses: (status, parsed JSON | bytes, headers)."""

    def __init__(self, hub):
        self.hub = hub

    def operator_key(self):
        with open(self.hub.config["admin"]["operator_key_file"]) as f:
            return f.read().strip()

    def raw(self, method, path, body=None, headers=None, timeout=10.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.admin_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, data, {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()

    def token(self, key):
        """Exchanges "id:secret" for a JWT (client-credentials form). Returns the token."""
        kid, secret = key.split(":", 1)
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": kid,
                                       "client_secret": secret})
        st, data, _ = self.raw("POST", "/api/v1/oauth/token", form,
                               {"Content-Type": "application/x-www-form-urlencoded"})
        if st != 200:
            raise AssertionError("token exchange failed: %d %s" % (st, data[:200]))
        return json.loads(data)["access_token"]

    def call(self, method, path, body=None, token=None, headers=None, timeout=10.0):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        st, data, hd = self.raw(method, "/api/v1" + path, body, h, timeout=timeout)
        if hd.get("content-encoding") == "gzip":
            data = gzip.decompress(data)
        if hd.get("content-type", "").startswith("application/json") and data:
            try:
                return st, json.loads(data), hd
            except ValueError:
                pass
        return st, data, hd

    def create_key(self, token, net_id=None, rights=("RIGHT_ADMIN",), operator=False, tenant=None,
                   name="test"):
        body = {"rights": list(rights), "name": name}
        if operator:
            body["operator"] = True
        if net_id:
            body["net_id"] = net_id
        if tenant:
            body["tenant_id"] = tenant
        st, data, _ = self.call("POST", "/keys", body, token)
        if st != 201:
            raise AssertionError("key creation failed: %d %s" % (st, data))
        return data["api_key"], data["key"]["id"]


def hs256_token(secret, claims, header=None):
    """A compact HS256 JWS (for tests that forge tokens)."""
    import hmac

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    h = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    p = b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret if isinstance(secret, bytes) else secret.encode(),
                   (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + b64(sig)
