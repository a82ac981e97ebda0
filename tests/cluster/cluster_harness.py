"""Cluster test harness: a NATS cluster of real nats-server processes with JetStream (routes and
client ports on 127.0.0.1, store directories in a temporary directory) for roamhubd nodes started
with tests/integration/roamhub_harness.Hub and a `cluster` configuration section.

Ports come from free_port() (the routes of a JetStream cluster must be configured before the
servers start, so port 0 cannot be used): racy by nature, as free_port.py says.
"""
import json
import os
import socket
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from roamhub_harness import free_port  # noqa: E402

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


class NatsCluster:
    """n nats-server processes forming one JetStream cluster named "rh" (n=1: one JetStream
    server, not clustered). client_ports: fixed client ports (default: free ones)."""

    def __init__(self, n=3, client_ports=None):
        self.dir = tempfile.mkdtemp(prefix="roamhub-nats-")
        self.n = n
        self.fixed_client_ports = client_ports
        self.procs = [None] * n
        self.logs = [None] * n
        self.fresh = True  # no server has been healthy yet: ports may still be chosen again
        self.configure()
        for i in range(n):
            self.start(i)

    def configure(self):
        """Chooses the ports (free ones, but racy: see free_port) and writes the configurations;
        the store directories are emptied."""
        n = self.n
        self.client_ports = list(self.fixed_client_ports or [free_port() for _ in range(n)])
        self.route_ports = [free_port() for _ in range(n)]
        self.http_ports = [free_port() for _ in range(n)]  # monitoring (/jsz), read by tests
        routes = ", ".join("nats-route://127.0.0.1:%d" % p for p in self.route_ports)
        for i in range(n):
            store = os.path.join(self.dir, "store%d" % i)
            shutil.rmtree(store, ignore_errors=True)
            if os.path.exists(os.path.join(self.dir, "rh%d.log" % i)):
                os.unlink(os.path.join(self.dir, "rh%d.log" % i))
            os.makedirs(store)
            with open(self.conf(i), "w") as f:
                f.write('server_name: "rh%d"\nhost: "127.0.0.1"\nport: %d\n'
                        'http: "127.0.0.1:%d"\n'
                        'jetstream { store_dir: "%s", max_mem: 64MB, max_file: 256MB }\n'
                        % (i, self.client_ports[i], self.http_ports[i], store))
                if n > 1:
                    f.write('cluster { name: "rh", host: "127.0.0.1", port: %d, routes: [%s] }\n'
                            % (self.route_ports[i], routes))

    def restart_on_other_ports(self):
        """A port chosen by free_port was taken before the server bound it (another process on
        the machine): every server again, on new ports (only before first healthy)."""
        for i in range(self.n):
            self.kill(i)
        self.configure()
        for i in range(self.n):
            self.start(i)

    def conf(self, i):
        return os.path.join(self.dir, "rh%d.conf" % i)

    def urls(self):
        return ["nats://127.0.0.1:%d" % p for p in self.client_ports]

    def start(self, i):
        log = open(os.path.join(self.dir, "rh%d.log" % i), "ab")
        self.logs[i] = log
        self.procs[i] = subprocess.Popen([NATS_SERVER, "-c", self.conf(i)], stdout=log,
                                         stderr=subprocess.STDOUT)

    def log_text(self, i):
        with open(os.path.join(self.dir, "rh%d.log" % i), "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self, i, sig=signal.SIGKILL):
        p = self.procs[i]
        if p and p.poll() is None:
            p.send_signal(sig)
            p.wait(timeout=10)
        self.logs[i].close()

    def healthz(self, i):
        """(HTTP status, body) of server i's /healthz: 200 once its JetStream is in contact with
        the meta leader (clustered) or running (single server); None when it does not answer."""
        url = "http://127.0.0.1:%d/healthz" % self.http_ports[i]
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return None

    def wait_jetstream(self, timeout=30.0):
        """Waits until every running server's /healthz says its JetStream is current with a meta
        leader (the cluster can take writes); raises with the server logs otherwise. (Asked of
        the servers, not read from their logs: a server that joins after the leader was elected
        does not always log the leader.)"""
        deadline = time.time() + timeout
        last = None
        retries = 3
        while time.time() < deadline:
            for i, p in enumerate(self.procs):
                if p.poll() is not None:
                    if (self.fresh and not self.fixed_client_ports and retries > 0
                            and "address already in use" in self.log_text(i)):
                        retries -= 1
                        self.restart_on_other_ports()
                        break
                    raise RuntimeError("nats-server %d exited:\n%s" % (i, self.log_text(i)))
            last = [self.healthz(i) for i in range(len(self.procs))]
            if all(h and h[0] == 200 for h in last):
                self.fresh = False
                return
            time.sleep(0.1)
        raise RuntimeError("JetStream not healthy: %r\n%s" % (last, "\n".join(
            self.log_text(i) for i in range(len(self.procs)))))

    def streams(self, i):
        """{stream name: config} as server i's monitoring endpoint (/jsz) reports them."""
        url = "http://127.0.0.1:%d/jsz?accounts=true&streams=true&config=true" % self.http_ports[i]
        with urllib.request.urlopen(url, timeout=5) as r:
            jsz = json.load(r)
        out = {}
        for acc in jsz.get("account_details") or []:
            for st in acc.get("stream_detail") or []:
                out[st["name"]] = st.get("config") or {}
        return out

    def cleanup(self):
        for i in range(len(self.procs)):
            if self.procs[i]:
                self.kill(i, signal.SIGTERM)
        if os.environ.get("ROAMHUB_KEEP_NATS_DIR"):  # debugging: the servers' logs and stores
            print("nats-server directory kept: %s" % self.dir, file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def cluster_section(node_id, urls, **extra):
    sec = {"node_id": node_id, "nats_urls": list(urls), "stream": "RH_TEST",
           "subject_prefix": "roamhub.test", "replicas": 3, "write_timeout_ms": 5000}
    sec.update(extra)
    return sec


def readyz(hub):
    """(HTTP status, body) of the node's /readyz."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % hub.admin_port, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_readyz(hub, status, contains="", timeout=20.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = readyz(hub)
        if last[0] == status and contains in last[1]:
            return last
        time.sleep(0.1)
    raise AssertionError("readyz never %d/%r; last %r\n%s" % (status, contains, last, hub.logs()))


# ---- a large table written straight into the stream (catch-up tests and benchmarks) ----------
# TableChange messages as cluster_write publishes them, packed here by hand (proto/roamhub.proto
# TableChange, Network, DevAddrBlock): building a 100,000-block table through the admin API
# would take minutes; publishing it takes seconds.

KIND_NETWORK, KIND_BLOCK, MODE_CREATE = 0, 2, 1
FILL_NET = 0x000505  # NetID 000505: DevAddr prefix 0A000000/7


def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _field_varint(no, v):
    return _varint(no << 3) + _varint(v) if v else b""


def _field_bytes(no, b):
    return _varint((no << 3) | 2) + _varint(len(b)) + b


def table_change(kind, record, actor=b"bench"):
    return (_field_varint(1, 1) + _field_varint(2, kind) + _field_varint(3, MODE_CREATE) +
            _field_bytes(4, actor) + _field_bytes(5, record) + _field_varint(6, 1))


def fill_changes(n, network=True):
    """The network FILL_NET (unless network=False) and n /32 DevAddr blocks of it from 0A000000:
    never overlapping each other."""
    if network:
        yield table_change(KIND_NETWORK, _field_varint(1, FILL_NET) + _field_bytes(2, b"home"))
    for i in range(n):
        yield table_change(KIND_BLOCK, _field_varint(1, 0x0A000000 + i) + _field_varint(2, 32) +
                           _field_varint(3, FILL_NET))


def fill_table_stream(port, subject, n, network=True, window=1000):
    """Publishes fill_changes(n, network) to `subject` through the NATS server on 127.0.0.1:port
    with JetStream acks, at most `window` unacknowledged; returns how many were sent."""
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    f.readline()  # INFO
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.fill 1\r\n')
    sent = acked = 0

    def read_ack():
        line = f.readline()
        if line.startswith(b"MSG"):
            body = f.read(int(line.split()[-1]) + 2)
            if b'"error"' in body:
                raise RuntimeError("JetStream refused a publish: %r" % body)
            return 1
        if line.startswith(b"PING"):
            s.sendall(b"PONG\r\n")
        elif line.startswith(b"-ERR"):
            raise RuntimeError(line)
        return 0
    buf = []
    for data in fill_changes(n, network):
        buf.append(b"PUB %s _INBOX.fill %d\r\n%s\r\n" % (subject.encode(), len(data), data))
        sent += 1
        if len(buf) >= 200:
            s.sendall(b"".join(buf))
            buf = []
        while sent - acked >= window:
            acked += read_ack()
    s.sendall(b"".join(buf))
    while acked < sent:
        acked += read_ack()
    s.close()
    return sent
