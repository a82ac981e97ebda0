"""Runs deploy/cluster/ (the 3-node example) as a user would, on one machine: its own NATS,
roamhubd and HAProxy configuration files, templated only where one machine must differ from three
hosts — every ADDRESS:PORT of the example (10.0.0.10..13) becomes 127.0.0.1 with an ephemeral
port, state directories go to a temporary directory, and the roamhubd nodes allow member
endpoints on loopback (the test's members). Anything of the example left untemplated (an address
of the example still in a generated file) is an error, so the example and this runner cannot
drift apart silently.

Every process goes through roamhub_harness.Daemon: stopping checks a clean exit (nats-server on
SIGINT, HAProxy on SIGUSR1, roamhubd on SIGTERM: status 0, no sanitizer report).
Used by tests/cluster/test_deploy_example.py and tools/bench/cluster_*.py.
"""
import csv
import io
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from roamhub_harness import ROAMHUBD, Daemon, Hub, free_port  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EXAMPLE = os.path.join(ROOT, "deploy", "cluster")
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
HOSTS = ("10.0.0.11", "10.0.0.12", "10.0.0.13")  # rh1..rh3 in the example
LB = "10.0.0.10"


def example(*parts):
    return os.path.join(EXAMPLE, *parts)


def read(path):
    with open(path) as f:
        return f.read()


def env_file(path):
    """KEY=VALUE lines of a systemd EnvironmentFile (comments skipped)."""
    out = {}
    for line in read(path).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v
    return out


class Node:
    """One roamhubd of the example: the attributes tests use on a harness Hub (port, admin_port,
    config, logs(), post(), get_admin(), metric())."""
    post = Hub.post
    get_admin = Hub.get_admin
    metric = Hub.metric

    def __init__(self, index, port, admin_port, config, config_path, log_path):
        self.index, self.port, self.admin_port = index, port, admin_port
        self.config, self.config_path, self.log_path = config, config_path, log_path
        self.daemon = None

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class ExampleCluster:
    """deploy/cluster/ on 127.0.0.1. start() brings up 3 nats-server (JetStream), 3 roamhubd and
    HAProxy, in that order, each waited for; stop() stops them all and checks their exits."""

    def __init__(self, log_level="info"):
        self.dir = tempfile.mkdtemp(prefix="roamhub-example-")
        self.log_level = log_level
        p = lambda: [free_port() for _ in HOSTS]  # noqa: E731
        self.nats_client, self.nats_route, self.nats_http = p(), p(), p()
        # the nodes' listeners: ephemeral ports bound by roamhubd itself (--ports-file) at their
        # first start, kept for restarts (HAProxy's configuration names them)
        self.ts002, self.admin = [0, 0, 0], [0, 0, 0]
        self.lb_ts002, self.lb_admin, self.lb_stats = free_port(), free_port(), free_port()
        self.jwt_secret = os.path.join(self.dir, "jwt.secret")
        with open(self.jwt_secret, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        self.nats = [None] * 3
        self.nodes = [self._node(i) for i in range(3)]
        self.lb = None

    # -- templating -------------------------------------------------------------------------

    def _map_hosts(self, text, port_maps):
        """ADDR:PORT of the example hosts -> 127.0.0.1:ephemeral; port_maps: {example port: [3
        ephemeral ports]}."""
        def sub(m):
            host, port = m.group(1), int(m.group(2))
            if host not in HOSTS or port not in port_maps:
                return m.group(0)
            return "127.0.0.1:%d" % port_maps[port][HOSTS.index(host)]
        return re.sub(r"(\d+\.\d+\.\d+\.\d+):(\d+)", sub, text)

    def _untemplated(self, name, text):
        left = [a for a in HOSTS + (LB,) if a in text]
        if left:
            raise AssertionError("%s: example address %s not templated:\n%s" % (name, left, text))

    def nats_conf(self, i):
        """deploy/cluster/nats/nats.conf for server i (its own copy: one machine, three ports)."""
        text = read(example("nats", "nats.conf"))
        text = self._map_hosts(text, {6222: self.nats_route})
        text = text.replace("port: 4222", "port: %d" % self.nats_client[i])
        text = text.replace("port: 6222", "port: %d" % self.nats_route[i])
        text = text.replace("http: 127.0.0.1:8222", "http: 127.0.0.1:%d" % self.nats_http[i])
        store = os.path.join(self.dir, "nats%d" % (i + 1))
        text = text.replace('"/var/lib/roamhub-nats"', '"%s"' % store)
        self._untemplated("nats.conf", text)
        path = os.path.join(self.dir, "nats%d.conf" % (i + 1))
        with open(path, "w") as f:
            f.write(text)
        env = env_file(example("nats", "rh%d.env" % (i + 1)))
        if env.get("NATS_ADDRESS") != HOSTS[i]:
            raise AssertionError("rh%d.env: NATS_ADDRESS %r" % (i + 1, env.get("NATS_ADDRESS")))
        env["NATS_ADDRESS"] = "127.0.0.1"
        return path, env

    def node_config(self, i, top=None, **cluster):
        """deploy/cluster/roamhubd/rhN.json for node i; cluster: keys of its cluster section
        replaced, top: top-level keys set (tests and benchmarks only)."""
        cfg = json.loads(read(example("roamhubd", "rh%d.json" % (i + 1))))
        cfg.update(top or {})
        d = os.path.join(self.dir, "rh%d" % (i + 1))
        os.makedirs(d, exist_ok=True)
        cfg["log_level"] = self.log_level
        for sec, port, ports in (("ts002", 4270, self.ts002), ("admin", 4271, self.admin)):
            if (cfg[sec]["address"], cfg[sec]["port"]) != (HOSTS[i], port):
                raise AssertionError("rh%d.json %s: %r" % (i + 1, sec, cfg[sec]))
            cfg[sec]["address"], cfg[sec]["port"] = "127.0.0.1", ports[i]
        cfg["database"]["path"] = os.path.join(d, "db")
        cfg["database"]["map_size_mb"] = 64
        cfg["admin"]["operator_key_file"] = os.path.join(d, "operator.key")
        cfg["admin"]["jwt_secret_file"] = self.jwt_secret
        # the test's members listen on loopback, which the hub refuses by default
        cfg["relay"]["endpoint_allow_ranges"] = ["127.0.0.0/8"]
        cfg["cluster"]["nats_urls"] = [self._map_hosts(u, {4222: self.nats_client})
                                       for u in cfg["cluster"]["nats_urls"]]
        cfg["cluster"].update(cluster)
        text = json.dumps(cfg, indent=1)
        self._untemplated("rh%d.json" % (i + 1), text)
        return cfg

    def haproxy_conf(self):
        text = read(example("haproxy", "haproxy.cfg"))
        text = text.replace("bind %s:4270" % LB, "bind 127.0.0.1:%d" % self.lb_ts002)
        text = text.replace("bind %s:4271" % LB, "bind 127.0.0.1:%d" % self.lb_admin)
        text = text.replace("bind 127.0.0.1:8404", "bind 127.0.0.1:%d" % self.lb_stats)

        def server(m):  # a server line: its address and its check port
            i = HOSTS.index(m.group(2))
            port = {4270: self.ts002, 4271: self.admin}[int(m.group(3))][i]
            rest = re.sub(r"check port 4271", "check port %d" % self.admin[i], m.group(4))
            return "%s127.0.0.1:%d%s" % (m.group(1), port, rest)
        text = re.sub(r"^(\s*server rh\d )(\S+):(\d+)(.*)$", server, text, flags=re.M)
        self._untemplated("haproxy.cfg", text)
        if re.search(r"check port 4271\b", text):
            raise AssertionError("haproxy.cfg: a check port not templated:\n" + text)
        path = os.path.join(self.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(text)
        return path

    # -- processes -------------------------------------------------------------------------

    def _node(self, i):
        d = os.path.join(self.dir, "rh%d" % (i + 1))
        return Node(i, self.ts002[i], self.admin[i], None, os.path.join(d, "roamhub.json"),
                    os.path.join(self.dir, "roamhubd%d.log" % (i + 1)))

    def start_nats(self, i):
        path, env = self.nats_conf(i)
        self.nats[i] = Daemon("nats-server", [NATS_SERVER, "-c", path],
                              os.path.join(self.dir, "nats%d.log" % (i + 1)),
                              stop_signal=signal.SIGINT, env=dict(os.environ, **env))

    def wait_jetstream(self, timeout=30.0):
        """Until every server's /jsz names a JetStream meta leader (the cluster takes writes)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            leaders = []
            for i, d in enumerate(self.nats):
                if d.poll() is not None:
                    raise AssertionError("nats-server %d exited:\n%s" % (i + 1, d.output()))
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/jsz" % self.nats_http[i],
                                                timeout=2) as r:
                        leaders.append((json.load(r).get("meta_cluster") or {}).get("leader"))
                except OSError:
                    leaders.append(None)
            if all(leaders):
                return
            time.sleep(0.1)
        raise AssertionError("no JetStream meta leader:\n" + "\n".join(d.output() for d in self.nats))

    def start_node(self, i, top=None, **cluster):
        """Starts roamhubd node i (0-based) with its example configuration (node_config's
        arguments); returns the Node."""
        n = self.nodes[i]
        n.config = self.node_config(i, top, **cluster)
        with open(n.config_path, "w") as f:
            json.dump(n.config, f)
        ports = os.path.join(self.dir, "rh%d" % (i + 1), "ports.json")
        if os.path.exists(ports):
            os.unlink(ports)
        n.daemon = Daemon("roamhubd", [ROAMHUBD, "-c", n.config_path, "--ports-file", ports],
                          n.log_path)
        deadline = time.time() + 15
        while time.time() < deadline:
            if n.daemon.poll() is not None:
                n.daemon.stop(check=False)
                raise AssertionError("roamhubd %d exited:\n%s" % (i + 1, n.logs()))
            if os.path.exists(ports):
                with open(ports) as f:
                    bound = json.load(f)
                self.ts002[i] = n.port = bound["ts002"]
                self.admin[i] = n.admin_port = bound["admin"]
                try:
                    if n.get_admin("/healthz")[0] == 200:
                        return n
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError("roamhubd %d did not answer /healthz:\n%s" % (i + 1, n.logs()))

    def start_lb(self, attempts=3):
        """HAProxy's frontends need their ports in the file: free ports, chosen again when one
        was taken meanwhile (free_port is racy by nature)."""
        for attempt in range(attempts):
            if attempt:
                self.lb_ts002, self.lb_admin, self.lb_stats = free_port(), free_port(), free_port()
            path = self.haproxy_conf()
            self.lb = Daemon("haproxy", [HAPROXY, "-db", "-f", path],
                             os.path.join(self.dir, "haproxy.log"), stop_signal=signal.SIGUSR1)
            deadline = time.time() + 10
            while time.time() < deadline:
                if self.lb.poll() is not None:
                    out = self.lb.output()
                    self.lb.stop(check=False)
                    if "cannot bind socket" in out and attempt + 1 < attempts:
                        break
                    raise AssertionError("haproxy exited:\n" + out)
                try:
                    self.lb_status()
                    return
                except OSError:
                    time.sleep(0.05)
            else:
                raise AssertionError("haproxy stats never answered:\n" + self.lb.output())

    def lb_status(self):
        """{(backend, server): status} from HAProxy's stats (UP, DOWN, "DOWN 1/2", ...)."""
        with urllib.request.urlopen("http://127.0.0.1:%d/stats;csv" % self.lb_stats,
                                    timeout=2) as r:
            text = r.read().decode().lstrip("# ")
        return {(row["pxname"], row["svname"]): row["status"]
                for row in csv.DictReader(io.StringIO(text))
                if row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_lb(self, server, status, timeout=15.0):
        """Until HAProxy reports `server` (rh1..rh3) with `status` in both backends."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.lb_status()
            if all(last.get((b, server)) == status
                   for b in ("roamhubd_ts002", "roamhubd_admin")):
                return time.time()
            time.sleep(0.05)
        raise AssertionError("haproxy never saw %s %s; last %r\n%s" % (
            server, status, last, self.lb.output()[-3000:]))

    def start(self, top=None):
        for i in range(3):
            self.start_nats(i)
        self.wait_jetstream()
        for i in range(3):
            self.start_node(i, top)
        self.start_lb()

    def stop(self):
        """Stops everything started (HAProxy, nodes, NATS) and raises the first unclean exit."""
        errors = []
        for d in [self.lb] + [n.daemon for n in self.nodes] + self.nats:
            if d is None or d.checked:
                continue
            try:
                d.stop()
            except AssertionError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
