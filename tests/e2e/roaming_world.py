"""A roaming world for end-to-end tests and the demo: roamhubd, and one roamns per member network
(all real processes on 127.0.0.1 with ephemeral ports), plus roamsim runs against a network's
gateways. Network B's devices are heard only by network A's gateways, so everything they send
crosses the hub: gateway -> roamns A (fNS) -> roamhubd -> roamns B (sNS/hNS) -> back.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from roamhub_harness import (ALL_DOWN, ALL_UP, BUILD, Daemon, Hub, assert_no_sanitizer_report,  # noqa: E402,F401
                             free_port, sha256_hex)

ROAMNS = os.path.join(BUILD, "tools", "roamns")
ROAMSIM = os.path.join(BUILD, "tools", "roamsim")
ROAMCTL = os.path.join(BUILD, "tools", "roamctl")


B_DEVICES = [
    {"name": "b-abp-1", "dev_eui": "0505050505050501", "dev_addr": "0a000101",
     "nwk_s_key": "000102030405060708090a0b0c0d0e0f", "app_s_key": "0f0e0d0c0b0a09080706050403020100"},
    {"name": "b-abp-2", "dev_eui": "0505050505050502", "dev_addr": "0a000102",
     "nwk_s_key": "101112131415161718191a1b1c1d1e1f", "app_s_key": "1f1e1d1c1b1a19181716151413121110"},
    {"name": "b-otaa-1", "dev_eui": "0505050505050511", "join_eui": "70b3d57ed0000505",
     "app_key": "00112233445566778899aabbccddeeff"},
    {"name": "b-otaa-2", "dev_eui": "0505050505050512", "join_eui": "70b3d57ed0000505",
     "app_key": "ffeeddccbbaa99887766554433221100"},
]
A_DEVICES = [   # homed in A itself: the no-hub reference for round-trip measurements
    {"name": "a-abp-1", "dev_eui": "1313131313131301", "dev_addr": "26000101",
     "nwk_s_key": "303132333435363738393a3b3c3d3e3f", "app_s_key": "3f3e3d3c3b3a39383736353433323130"},
]
C_DEVICES = [
    {"name": "c-abp-1", "dev_eui": "0707070707070701", "dev_addr": "0e000101",
     "nwk_s_key": "202122232425262728292a2b2c2d2e2f", "app_s_key": "2f2e2d2c2b2a29282726252423222120"},
]


class Network:
    """One member network: its NetID, hub key, roamns process and configuration."""

    def __init__(self, world, name, net_id, block, join_eui, devices, hub_async, dedup_ms=20,
                 dialect=""):
        self.world, self.name, self.net_id, self.block = world, name, net_id, block
        self.dialect = dialect  # roamns config.hub.dialect: "", "chirpstack", "helium"
        self.join_eui, self.devices, self.hub_async = join_eui, devices, hub_async
        self.key = "demo-key-%s-%s" % (name, os.urandom(6).hex())
        self.ts002_port = free_port()
        self.dir = os.path.join(world.dir, name)
        os.makedirs(self.dir)
        self.output = os.path.join(self.dir, "uplinks.jsonl")
        self.config_path = os.path.join(self.dir, "roamns.json")
        self.ports_path = os.path.join(self.dir, "ports.json")
        self.log_path = os.path.join(self.dir, "roamns.log")
        self.config = {
            "net_id": net_id, "dev_addr_blocks": [block], "region": "EU868",
            "gwmp": {"address": "127.0.0.1", "port": 0},
            "ts002": {"address": "127.0.0.1", "port": self.ts002_port},
            "hub": {"url": "http://127.0.0.1:%d/" % world.hub_port, "api_key": self.key,
                    "timeout_ms": 2500, "async": hub_async, "receiver_id": world.home_hint,
                    "dialect": dialect},
            "devices": devices, "output": self.output, "dedup_window_ms": dedup_ms,
            "log_level": "info",
        }
        if join_eui:
            self.config["join_euis"] = [join_eui + "/64"]
        self.proc = None

    def records(self):
        """roamdb/admin JSON records of this member (network, member, endpoint, block, join route)."""
        recs = {
            "networks": [{"net_id": self.net_id, "name": "Network " + self.name, "listed": True}],
            "members": [{"id": "net" + self.name, "net_ids": [self.net_id],
                         "api_key_hashes": [sha256_hex(self.key)]}],
            "endpoints": [{"id": "net" + self.name, "net_id": self.net_id,
                           "url": "http://127.0.0.1:%d/" % self.ts002_port,
                           "protocol_version": "PROTOCOL_VERSION_1_0",
                           "async_answers": self.hub_async, "timeout_ms": 1500}],
            "devaddr_blocks": [{"prefix": self.block, "net_id": self.net_id}],
            "join_routes": [],
        }
        ep = recs["endpoints"][0]
        if self.dialect == "chirpstack":
            ep["strict_enums"] = True
            ep["js_answer_mode"] = "ANSWER_MODE_SYNC"  # ChirpStack's Join Server client is sync
        elif self.dialect == "helium":
            ep["upper_case_hex"] = True
        if self.join_eui:
            recs["join_routes"].append({"join_eui": self.join_eui + "/64", "home_net_id": self.net_id})
        return recs

    def start(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=1)
        if os.path.exists(self.ports_path):
            os.unlink(self.ports_path)
        self.daemon = Daemon("roamns " + self.name, [ROAMNS, "-c", self.config_path, "--ports-file",
                                                     self.ports_path], self.log_path)
        self.proc = self.daemon.proc
        deadline = time.time() + 10
        while not os.path.exists(self.ports_path):
            if self.proc.poll() is not None or time.time() > deadline:
                self.daemon.stop()   # raises with the exit status and the log
                raise RuntimeError("roamns %s did not start:\n%s" % (self.name, self.logs()))
            time.sleep(0.02)
        with open(self.ports_path) as f:
            self.gwmp_port = json.load(f)["gwmp"]

    def stop(self):
        """SIGTERM and wait; raises DaemonExitError unless roamns exited cleanly (see Daemon.stop)."""
        if self.proc:
            return self.daemon.stop()

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def uplinks(self):
        """Application uplinks this network's roamns wrote (parsed JSON lines)."""
        if not os.path.exists(self.output):
            return []
        with open(self.output) as f:
            return [json.loads(l) for l in f if l.strip()]

    def stats(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % self.ts002_port, timeout=5) as r:
            return json.loads(r.read())


class World:
    """roamhubd + networks A (forwarder with gateways, sync), B (home, async), optional C."""

    def __init__(self, with_c=False, policy_up=None, policy_down=None, hub_config=None,
                 a_devices=None, dedup_ms=20, dialects=None, extra_records=None):
        """dialects: {"A": "helium", "B": "chirpstack", ...}: how each roamns behaves;
        extra_records: more roamdb records for the hub's table (e.g. a Join Server)."""
        dialects = dialects or {}
        self.dir = tempfile.mkdtemp(prefix="roamhub-e2e-")
        self.hub_port = free_port()
        self.home_hint = "000505"
        self.a = Network(self, "A", "000013", "26000000/7", None, a_devices or [], hub_async=False,
                         dedup_ms=dedup_ms, dialect=dialects.get("A", ""))
        self.b = Network(self, "B", "000505", "0A000000/7", "70b3d57ed0000505", B_DEVICES,
                         hub_async=True, dedup_ms=dedup_ms, dialect=dialects.get("B", ""))
        self.c = Network(self, "C", "000707", "0E000000/7", None, C_DEVICES, hub_async=False,
                         dedup_ms=dedup_ms, dialect=dialects.get("C", "")) if with_c else None
        table = {}
        for n in self.networks():
            for k, v in n.records().items():
                table.setdefault(k, []).extend(v)
        table["policies"] = [self.policy(self.a.net_id, n.net_id, policy_up, policy_down)
                             for n in self.networks() if n is not self.a]
        for k, v in (extra_records or {}).items():
            table.setdefault(k, []).extend(v)
        cfg = {"ts002": {"port": self.hub_port}, "relay": {"stats_flush_ms": 200}}
        for k, v in (hub_config or {}).items():
            cfg.setdefault(k, {}).update(v)
        self.hub = Hub(table, config=cfg)
        for n in self.networks():
            n.start()

    @staticmethod
    def policy(fwd, home, up=None, down=None):
        return {"forwarder_net_id": fwd, "home_net_id": home,
                "uplink": dict(up if up is not None else ALL_UP),
                "downlink": dict(down if down is not None else ALL_DOWN)}

    def networks(self):
        return [n for n in (self.a, self.b, self.c) if n]

    def roamsim(self, devices, uplinks=2, interval_ms=1200, confirmed_ratio=0.0, extra=(), timeout=90):
        """Runs roamsim with `devices` against A's gateways; returns (exit code, summary, events)."""
        dev_path = os.path.join(self.dir, "sim-devices-%d.json" % time.monotonic_ns())
        with open(dev_path, "w") as f:
            json.dump(devices, f)
        summary = dev_path + ".summary.json"
        events = dev_path + ".events.jsonl"
        cmd = [ROAMSIM, "--ns", "127.0.0.1:%d" % self.a.gwmp_port, "--devices", dev_path,
               "--uplinks", str(uplinks), "--interval", str(interval_ms),
               "--confirmed-ratio", str(confirmed_ratio), "--gateways", "2",
               "--lat", "52.37", "--lon", "4.89", "--json", summary, "--log", events,
               "--quiet"] + list(extra)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert_no_sanitizer_report("roamsim", r.stderr)
        with open(summary) as f:
            s = json.load(f)
        with open(events) as f:
            ev = [json.loads(l) for l in f if l.strip()]
        return r.returncode, s, ev

    def roamctl(self, *args):
        """Runs the real roamctl against the hub's admin API with the operator key."""
        env = dict(os.environ, ROAMCTL_URL="http://127.0.0.1:%d" % self.hub.admin_port,
                   ROAMCTL_KEY_FILE=self.hub.config["admin"]["operator_key_file"])
        env.pop("ROAMCTL_CONFIG", None)
        r = subprocess.run([ROAMCTL] + list(args), env=env, capture_output=True, text=True, timeout=30)
        assert_no_sanitizer_report("roamctl", r.stderr)
        if r.returncode != 0:
            raise RuntimeError("roamctl %s: %s" % (" ".join(args), r.stderr or r.stdout))
        return r.stdout

    def set_policies(self, *policies):
        """Sets forwarder policies through the admin API with roamctl, while everything runs."""
        for p in policies:
            up = ",".join(k for k, v in sorted(p["uplink"].items()) if v)
            down = ",".join(k for k, v in sorted(p["downlink"].items()) if v)
            args = ["policy", "set", p["forwarder_net_id"], p.get("home_net_id", "default"),
                    "--allow", up]
            if down:
                args += ["--down", down]
            self.roamctl(*args)

    def close(self):
        """Stops every process, then raises the first unclean exit (all are stopped first)."""
        close_world(self.networks(), self.hub, self.dir)


def close_world(networks, hub, directory):
    """Stops the networks' roamns and the hub, removes the world's directory, then raises the
    first unclean exit (every process is stopped first)."""
    errors = []
    for stop in [n.stop for n in networks] + [hub.cleanup]:
        try:
            stop()
        except AssertionError as e:
            errors.append(e)
    shutil.rmtree(directory, ignore_errors=True)
    if errors:
        raise errors[0]
