"""Test harness for integration and e2e tests: starts the real roamhubd on 127.0.0.1 with
ephemeral ports and scripted TS002 member endpoints, and talks to it as members do.

Nothing here decides a test's outcome: tests assert on what the hub and the members saw.

Every daemon a test starts (roamhubd here, roamns in the e2e world and test_roamns) goes through
start_daemon()/stop_daemon(): stopping it asserts a clean exit (status 0 after SIGTERM, no
AddressSanitizer/LeakSanitizer/UBSan report in what it wrote), and a daemon a test forgot to stop is
stopped and checked when the test process exits, which then fails.
"""
import atexit
import hashlib
import http.client
import http.server
import json
import os
import queue
import re
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


# ---------------------------------------------------------------------------------------------
# Peer behaviours (issue #11): what ChirpStack v4, Helium's packet router and The Things Stack's
# Join Server do, from their source (../shared/reference/ts002-passive-roaming.md §2, §4).

# ChirpStack backend/src/lib.rs: ResultCode is a closed serde enum (TS002 1.0 Table 24, both
# spellings of UnknownReceiver); a body with any other value does not deserialise.
CHIRPSTACK_RESULT_CODES = {
    "Success", "MICFailed", "JoinReqFailed", "NoRoamingAgreement", "DevRoamingDisallowed",
    "RoamingActDisallowed", "ActivationDisallowed", "UnknownDevEUI", "UnknownDevAddr",
    "UnknownSender", "UnkownReceiver", "UnknownReceiver", "Deferred", "XmitFailed",
    "InvalidFPort", "InvalidProtocolVersion", "StaleDeviceProfile", "MalformedRequest",
    "FrameSizeError", "Other"}
# lrwn/src/region/mod.rs (input upper-cased first): RP002 common names only.
CHIRPSTACK_REGIONS = {"EU868", "US915", "CN779", "EU433", "AU915", "CN470", "AS923", "AS923-2",
                      "AS923_2", "AS923-3", "AS923_3", "AS923-4", "AS923_4", "KR920", "IN865",
                      "RU864", "ISM2400"}
# chirpstack/src/api/backend/mod.rs: handled requests; any other known type is HTTP 500.
CHIRPSTACK_HANDLED = {"PRStartReq", "PRStopReq", "XmitDataReq", "HomeNSReq"}
# pkg/interop: the TTS interop server takes only Join Server messages.
TTS_HANDLED = {"JoinReq", "RejoinReq", "AppSKeyReq", "HomeNSReq"}
HEX_KEYS = ("SenderID", "ReceiverID", "DevEUI", "DevAddr", "PHYPayload", "FNSULToken", "HNetID",
            "ID", "ULToken")


def chirpstack_violations(msg):
    """What ChirpStack's serde types would refuse in msg (empty list: it deserialises)."""
    bad = []
    res = msg.get("Result")
    if isinstance(res, dict) and res.get("ResultCode") not in CHIRPSTACK_RESULT_CODES:
        bad.append("ResultCode %r not in ChirpStack's enum" % res.get("ResultCode"))
    for meta in ("ULMetaData", "DLMetaData"):
        m = msg.get(meta)
        if not isinstance(m, dict):
            continue
        regions = [m.get("RFRegion")] + [g.get("RFRegion") for g in m.get("GWInfo") or []]
        for r in regions:
            if r is not None and str(r).upper() not in CHIRPSTACK_REGIONS:
                bad.append("%s region %r not accepted" % (meta, r))
        if meta == "ULMetaData" and ("RecvTime" not in m or "GWInfo" not in m):
            bad.append("ULMetaData without RecvTime or GWInfo")
        if meta == "DLMetaData" and "GWInfo" not in m:
            bad.append("DLMetaData without GWInfo")
        for k in ("DataRate", "GWCnt", "FPort"):
            if k in m and not isinstance(m[k], int):
                bad.append("%s.%s not an integer" % (meta, k))
        for g in m.get("GWInfo") or []:
            if "RSSI" in g and not isinstance(g["RSSI"], int):
                bad.append("GWInfo.RSSI not an integer")
    for k in ("Lifetime", "FCntUp"):
        if k in msg and not isinstance(msg[k], int):
            bad.append("%s not an integer" % k)
    tx = msg.get("TransactionID")
    if not isinstance(tx, int) or not 0 <= tx < 2 ** 32:
        bad.append("TransactionID %r not a u32" % tx)
    for k in ("SenderID", "ReceiverID"):
        v = str(msg.get(k, "")).lower().removeprefix("0x")
        if len(v) not in (6, 16):
            bad.append("%s %r neither a NetID nor an EUI" % (k, msg.get(k)))
    return bad


def helium_spell(msg):
    """Helium's spelling: "0x" + upper-case hex for every hex field, seconds-only RecvTime."""
    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in HEX_KEYS and isinstance(v, str):
                    o[k] = "0x" + v.lower().removeprefix("0x").upper()
                elif k == "RecvTime" and isinstance(v, str):
                    o[k] = v.split(".")[0].rstrip("Z") + "Z"
                else:
                    walk(v)
        elif isinstance(o, list):
            for e in o:
                walk(e)
    walk(msg)
    return msg


# Daemon exit checks: every daemon started by a test must exit cleanly.

# What the sanitizers print when they report (ASan/LSan/UBSan, also TSan/MSan for other builds).
_SANITIZER_RE = re.compile(r"^(?:==\d+==)?(?:ERROR|WARNING): (?:Address|Leak|Thread|Memory|"
                           r"UndefinedBehavior)Sanitizer|: runtime error: |^SUMMARY: \w+Sanitizer",
                           re.M)


def sanitizer_report(text):
    """The sanitizer report in a daemon's output (from its first line, at most 4000 characters), or
    None when there is none."""
    m = _SANITIZER_RE.search(text)
    if not m:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    return text[start:start + 4000]


class DaemonExitError(AssertionError):
    """A daemon started by a test did not exit cleanly (status or sanitizer report)."""


_daemons = []   # every Daemon started in this process, checked or not


class Daemon:
    """A daemon process started by a test, its output (stdout and stderr) appended to log_path."""

    def __init__(self, name, argv, log_path, stop_signal=signal.SIGTERM, **popen):
        """stop_signal: what stop() sends for a clean stop (SIGTERM for our daemons; nats-server
        exits 0 on SIGINT, HAProxy on SIGUSR1)."""
        self.name, self.argv, self.log_path = name, list(argv), log_path
        self.stop_signal = stop_signal
        self.log = open(log_path, "ab")
        self.log_offset = self.log.tell()   # this run's output starts here (logs survive restarts)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, **popen)
        self.checked = False
        self.expect_killed = False
        _daemons.append(self)

    def output(self):
        """What this run of the daemon wrote so far."""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode(errors="replace")

    def poll(self):
        return self.proc.poll()

    def kill(self):
        """SIGKILL on purpose (crash tests): the exit status is not held against it."""
        self.expect_killed = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.checked = True

    def stop(self, timeout=10, check=True):
        """stop_signal (SIGTERM), wait (SIGKILL after timeout s) and, with check, raise
        DaemonExitError unless the daemon exited with status 0 and printed no sanitizer report.
        Returns the exit status."""
        hung = False
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                hung = True
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        if check and not self.checked:
            self.checked = True
            self.check(hung)
        self.checked = True
        return self.proc.returncode

    def check(self, hung=False):
        out = self.output()
        report = sanitizer_report(out)
        rc = self.proc.returncode
        if hung or rc != 0 or report:
            why = ("did not stop within the timeout after signal %d" % self.stop_signal if hung else
                   "exited with status %s" % rc if rc != 0 else "printed a sanitizer report")
            raise DaemonExitError("%s %s (log %s):\n%s" % (
                self.name, why, self.log_path, report or out[-3000:]))


def assert_no_sanitizer_report(name, text):
    """For a daemon run to completion by subprocess.run (e.g. a refused configuration)."""
    report = sanitizer_report(text or "")
    if report:
        raise DaemonExitError("%s printed a sanitizer report:\n%s" % (name, report))


@atexit.register
def _check_forgotten_daemons():
    """A daemon a test did not stop is stopped and checked here; a failure fails the process."""
    failed = False
    for d in _daemons:
        if d.checked:
            continue
        try:
            d.stop()
        except DaemonExitError as e:
            print("FAIL (daemon left running by a test): %s" % e, file=sys.stderr, flush=True)
            failed = True
    if failed:
        os._exit(1)


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
    behaviour: None - the above only;
          "chirpstack" - ChirpStack v4: answers with SenderID = the ReceiverID it received (never
                its own NetID), acknowledges with an empty 200 when async, posts its async answers
                to the hub at "//fns" / "//sns" (use_target_role_suffix with a trailing slash),
                answers HTTP 500 to request types it does not handle, 400 to what it cannot
                parse, and REFUSES (HTTP 400, recorded in self.violations) any message its serde
                types would reject: ResultCode outside its enum, regions outside its list,
                non-integer counters, missing RecvTime/GWInfo;
          "helium" - Helium's packet router as forwarder: "0x"+upper-case hex, DedupWindowSize,
                seconds-only RecvTime (helium_spell), listens on a route path, acknowledges an
                XmitDataReq with HTTP ack_status (200/202) and the text "Downlink Accepted",
                and sends an XmitDataAns (DLFreq1) only when async;
          "tts-js" - The Things Stack's interop server (a Join Server): HTTPS with a required
                client certificate (tls=(cert, key, client_ca)), HTTP 400 unless Content-Type
                is exactly application/json (recorded in self.violations), only JoinReq,
                RejoinReq, AppSKeyReq and HomeNSReq (else 400), upper-case hex, sync answers.
    Every message received is put on self.received (parsed JSON), with the request's
    Authorization header as "_authorization", its path as "_path" and its Content-Type as
    "_content_type".
    """

    def __init__(self, name, net_id, key, mode="sync", answer_fn=None, tls=None, answer_all=False,
                 own_sender_id=True, behaviour=None, path="/", ack_status=202):
        if behaviour not in (None, "chirpstack", "helium", "tts-js"):
            raise ValueError("unknown behaviour %r" % behaviour)
        self.behaviour = behaviour
        self.violations = []
        self.path = "/helium/route/1" if behaviour == "helium" and path == "/" else path
        self.ack_status = ack_status
        self.tls = tls
        if behaviour == "chirpstack":
            own_sender_id = False  # SenderID = the ReceiverID it was sent
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

            def reply(self, status, body=b"", ctype="text/plain"):
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                try:
                    msg = json.loads(body)
                    parsed = isinstance(msg, dict)
                except ValueError:
                    parsed = False
                if not parsed:
                    msg = {"_raw": body.decode(errors="replace")}
                msg["_authorization"] = self.headers.get("Authorization")
                msg["_path"] = self.path
                msg["_content_type"] = self.headers.get("Content-Type")
                member.received.put(msg)
                if member.mode == "hang":
                    member.stopping.wait(60)
                    return
                if member.behaviour_reply(self, msg, parsed):
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
        if tls:
            import ssl
            cert, key, client_ca = tls
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            if client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED  # mTLS: TTS authenticates the SenderID so
                ctx.load_verify_locations(client_ca)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "%s://127.0.0.1:%d%s" % ("https" if self.tls else "http", self.port, self.path)

    def behaviour_reply(self, h, msg, parsed):
        """The behaviour's own reply to a request, when it decides one (True: replied)."""
        mt = msg.get("MessageType", "")
        if self.behaviour == "tts-js":
            if h.headers.get("Content-Type") != "application/json":
                self.violations.append("Content-Type %r" % h.headers.get("Content-Type"))
                h.reply(400, b"Content-Type must be application/json")
                return True
            if not parsed or mt not in TTS_HANDLED:
                h.reply(400, b"unsupported message")
                return True
            return False
        if self.behaviour == "chirpstack":
            if not parsed:
                self.violations.append("unparseable body %r" % msg["_raw"][:80])
                h.reply(400, b"parse error")
                return True
            bad = chirpstack_violations(msg)
            if bad:
                self.violations.extend("%s: %s" % (mt, b) for b in bad)
                h.reply(400, ("; ".join(bad)).encode())
                return True
            if mt.endswith("Req") and mt not in CHIRPSTACK_HANDLED:
                h.reply(500, b"unexpected message-type")
                return True
            return False
        if self.behaviour == "helium" and mt == "XmitDataReq":
            h.reply(self.ack_status, b"Downlink Accepted")
            if self.mode == "async":
                ans = answer(msg, "Success", DLFreq1=msg.get("DLMetaData", {}).get("DLFreq1", 868.1))
                ans["SenderID"] = self.net_id
                threading.Thread(target=self.post_async, args=(helium_spell(ans),), daemon=True).start()
            return True
        return False

    def answer_path(self, ans):
        """ChirpStack posts with its role suffix after the configured URL's trailing slash."""
        if self.behaviour != "chirpstack":
            return "/"
        down = ans.get("MessageType") in ("PRStartAns", "XmitDataAns", "HomeNSAns")
        return "//fns" if down else "//sns"

    def answer_for(self, msg):
        if self.answer_all:
            a = self.answer_fn(msg) if self.answer_fn else None
        elif not msg.get("MessageType", "").endswith("Req"):
            return None  # answers and notifications: acknowledge only
        else:
            a = self.answer_fn(msg) if self.answer_fn else answer(msg, "Success")
        if a is not None and self.own_sender_id:
            a["SenderID"] = self.net_id  # a network server answers with its own NetID
        if a is not None and self.behaviour == "helium":
            helium_spell(a)
        if a is not None and self.behaviour == "tts-js":
            for k in HEX_KEYS:
                if isinstance(a.get(k), str):
                    a[k] = a[k].upper()
        return a

    def post_async(self, ans):
        time.sleep(0.02)
        self.hub.post(ans, self.key, path=self.answer_path(ans))

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
    """The network, member and endpoint records of member m, with the endpoint settings its
    behaviour needs (docs/PEERING.md): ChirpStack strict enums and a sync Join Server client,
    Helium upper-case hex."""
    recs = {
        "networks": [{"net_id": m.net_id, "name": m.name, "listed": True}],
        "members": [{"id": m.name, "net_ids": [m.net_id], "api_key_hashes": [sha256_hex(m.key)]}],
        "endpoints": [],
    }
    if endpoint:
        recs["endpoints"].append({
            "id": m.name, "net_id": m.net_id, "url": m.url, "protocol_version": protocol,
            "async_answers": m.mode == "async", "timeout_ms": timeout_ms})
        ep = recs["endpoints"][0]
        if getattr(m, "behaviour", None) == "chirpstack":
            ep["strict_enums"] = True
            ep["js_answer_mode"] = "ANSWER_MODE_SYNC"  # its [join_server] client is sync
        elif getattr(m, "behaviour", None) in ("helium", "tts-js"):
            ep["upper_case_hex"] = True
    return recs


def merge(*docs):
    out = {}
    for d in docs:
        for k, v in d.items():
            out.setdefault(k, []).extend(v)
    return out


class Hub:
    """A real roamhubd on 127.0.0.1 with ephemeral ports, its own LMDB directory."""

    def __init__(self, table, config=None, workers=2, tls=None, popen=None):
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
        self.popen = popen or {}   # extra subprocess.Popen arguments (e.g. preexec_fn)
        self.proc = None
        self.start()

    def write_config(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)

    def start(self):
        self.write_config()
        if os.path.exists(self.ports_path):
            os.unlink(self.ports_path)
        self.daemon = Daemon("roamhubd", [ROAMHUBD, "-c", self.config_path, "--ports-file",
                                          self.ports_path], self.log_path, **self.popen)
        self.proc = self.daemon.proc
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:   # a refused start: its status is what tests check
                self.daemon.stop(check=False)
                assert_no_sanitizer_report("roamhubd", self.daemon.output())
                raise RuntimeError("roamhubd exited %s:\n%s" % (self.proc.returncode, self.logs()))
            if os.path.exists(self.ports_path):
                with open(self.ports_path) as f:
                    ports = json.load(f)
                self.port, self.admin_port = ports["ts002"], ports["admin"]
                self.grpc_port = ports.get("grpc", 0)  # 0: the gRPC listener is off
                return
            time.sleep(0.02)
        self.daemon.stop(check=False)
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

    def stop(self, check=True):
        """SIGTERM and wait; raises DaemonExitError (see Daemon.stop) unless roamhubd exited cleanly."""
        return self.daemon.stop(check=check)

    def kill(self):
        """SIGKILL on purpose (crash tests): the exit is not checked."""
        self.daemon.kill()

    def cleanup(self):
        try:
            self.stop()
        finally:
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
