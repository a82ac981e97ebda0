"""Packet Broker members for end-to-end tests and the demo (issue 12): roamns in Packet Broker
mode (config.packet_broker, docs/roamns.md) connects to roamhubd's gRPC listener as The Things
Stack's Packet Broker Agent would — OAuth2 token from the admin listener, then Publish/Subscribe/
Report over h2c. All processes are real and on 127.0.0.1 with ephemeral ports.
"""
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request

from roaming_world import B_DEVICES, ROAMSIM, Hub, Network, World, close_world, free_port
from roamhub_harness import AdminClient, admin_config, assert_no_sanitizer_report
from test_grpc_listener import make_cert

# Network C: a The Things Stack-like member (Packet Broker API), devices of its own.
C_NET, C_BLOCK, C_JOIN_EUI = "000707", "0E000000/7", "70b3d57ed0000707"
PB_C_DEVICES = [
    {"name": "c-otaa-1", "dev_eui": "0707070707070711", "join_eui": C_JOIN_EUI,
     "app_key": "707172737475767778797a7b7c7d7e7f"},
    {"name": "c-otaa-2", "dev_eui": "0707070707070712", "join_eui": C_JOIN_EUI,
     "app_key": "7f7e7d7c7b7a79787776757473727170"},
    {"name": "c-abp-1", "dev_eui": "0707070707070701", "dev_addr": "0e000101",
     "nwk_s_key": "202122232425262728292a2b2c2d2e2f", "app_s_key": "2f2e2d2c2b2a29282726252423222120"},
]
# Network D: a second Packet Broker member (another TTS deployment), gateways and devices.
D_NET, D_BLOCK, D_JOIN_EUI = "000909", "12000000/7", "70b3d57ed0000909"
PB_D_DEVICES = [
    {"name": "d-otaa-1", "dev_eui": "0909090909090911", "join_eui": D_JOIN_EUI,
     "app_key": "909192939495969798999a9b9c9d9e9f"},
    {"name": "d-abp-1", "dev_eui": "0909090909090901", "dev_addr": "12000101",
     "nwk_s_key": "404142434445464748494a4b4c4d4e4f", "app_s_key": "4f4e4d4c4b4a49484746454443424140"},
]


def pb_member_config(net, hub_admin_port, hub_grpc_port, api_key, cluster, tenant="",
                     token_key=None, ca_file=None):
    """roamns's packet_broker section: the pba.* settings of a TTS deployment pointed at the hub
    (h2c as pba.insecure, or TLS trusting ca_file)."""
    kid, secret = api_key.split(":", 1)
    cfg = {"data_plane_address": "127.0.0.1:%d" % hub_grpc_port,
           "token_url": "http://127.0.0.1:%d/api/v1/oauth/token" % hub_admin_port,
           "client_id": kid, "client_secret": secret, "tenant_id": tenant, "cluster_id": cluster,
           "forwarder": True, "home_network": True, "insecure": ca_file is None}
    if ca_file:
        cfg["tls_ca_file"] = ca_file
    if token_key:
        cfg["token_key"] = token_key
    return cfg


class PBNetwork(Network):
    """A roamns in Packet Broker mode; no TS002 hub section (it roams only over gRPC)."""

    def __init__(self, world, name, net_id, block, join_eui, devices, cluster):
        super().__init__(world, name, net_id, block, join_eui, devices, hub_async=False)
        del self.config["hub"]
        self.cluster = cluster

    def attach(self, hub, api_key, ca_file=None):
        """Points the member at a running hub with its data-plane key ("id:secret")."""
        self.config["packet_broker"] = pb_member_config(
            self.net_id, hub.admin_port, hub.grpc_port, api_key, self.cluster,
            token_key=os.urandom(32).hex(), ca_file=ca_file)

    def records(self):
        recs = {"networks": [{"net_id": self.net_id, "name": "Network " + self.name, "listed": True}],
                "members": [{"id": "net" + self.name, "net_ids": [self.net_id]}],
                "devaddr_blocks": [{"prefix": self.block, "net_id": self.net_id}],
                "join_routes": []}
        if self.join_eui:
            recs["join_routes"].append({"join_eui": self.join_eui + "/64", "home_net_id": self.net_id})
        return recs


def hub_metric(hub, name, labels=None):
    """Sum of a /metrics series of the hub (all label sets, or those containing `labels`)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % hub.admin_port, timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = re.match(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), line)
        if not m:
            continue
        if labels and not all('%s="%s"' % kv in (m.group(1) or "") for kv in labels.items()):
            continue
        total += float(m.group(2))
    return total


def wait_subscribed(hub, streams, timeout=15):
    """Waits until the hub counts `streams` open subscription streams (4 per role per member)."""
    deadline = time.time() + timeout
    n = 0
    while time.time() < deadline:
        n = hub_metric(hub, "roamhub_pb_subscription_streams")
        if n >= streams:
            return
        time.sleep(0.1)
    raise AssertionError("the hub has %d subscription streams, expected %d" % (n, streams))


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


class PBWorld:
    """roamhubd with its gRPC listener + two Packet Broker members C and D (roamns in PB mode),
    each with gateways and devices, and with ts002=True also the TS002 networks A (forwarder,
    gateways, sync) and B (home, devices, async) of roaming_world; policies between every pair
    allow everything. Keys with RIGHT_DATA_PLANE are created by the operator through the admin
    API, as docs/PEERING.md says. C and D have member records (no TS002 key): a bridged
    transaction needs its sender's record. tls=True: the gRPC listener speaks TLS (ALPN h2) and
    the members verify its certificate, as a production agent does."""

    def __init__(self, ts002=False, hub_config=None, tls=False):
        self.dir = tempfile.mkdtemp(prefix="roamhub-pbe2e-")
        self.hub_port, self.home_hint = free_port(), "000505"
        self.c = PBNetwork(self, "C", C_NET, C_BLOCK, C_JOIN_EUI, PB_C_DEVICES, "c-eu1")
        self.d = PBNetwork(self, "D", D_NET, D_BLOCK, D_JOIN_EUI, PB_D_DEVICES, "d-eu1")
        self.a = self.b = None
        if ts002:
            self.a = Network(self, "A", "000013", "26000000/7", None, [], hub_async=False)
            # A's PRStartReqs name no ReceiverID (joins 000000, data the DevAddr's NetID, which
            # is unknown here): the hub routes by join route / DevAddr block, to B or to C
            del self.a.config["hub"]["receiver_id"]
            self.b = Network(self, "B", "000505", "0A000000/7", "70b3d57ed0000505", B_DEVICES,
                             hub_async=True)
        table = {}
        for n in self.networks():
            for k, v in n.records().items():
                table.setdefault(k, []).extend(v)
        table["policies"] = [World.policy(f.net_id, h.net_id)
                             for f in self.networks() for h in self.networks() if f is not h]
        hub_dir = os.path.join(self.dir, "hub")
        os.makedirs(hub_dir)
        cfg = {"admin": admin_config(hub_dir), "ts002": {"port": self.hub_port},
               "grpc": {"address": "127.0.0.1", "port": 0}}
        ca = None
        if tls:   # the hub's gRPC listener with TLS (ALPN h2), the members trusting its certificate
            make_cert(hub_dir)
            ca = os.path.join(hub_dir, "hub.pem")
            cfg["grpc"].update({"tls_cert": ca, "tls_key": os.path.join(hub_dir, "hub.key")})
        for k, v in (hub_config or {}).items():
            cfg.setdefault(k, {}).update(v)
        self.hub = Hub(table, config=cfg)
        adm = AdminClient(self.hub)
        op = adm.token(adm.operator_key())
        for n in (self.c, self.d):
            key, _ = adm.create_key(op, net_id=n.net_id, rights=["RIGHT_DATA_PLANE"],
                                    name="tts " + n.name)
            n.attach(self.hub, key, ca_file=ca)
        for n in self.networks():
            n.start()
        wait_subscribed(self.hub, 16)

    def networks(self):
        return [n for n in (self.a, self.b, self.c, self.d) if n]

    def roamsim(self, net, devices, uplinks=3, confirmed_ratio=1.0, timeout=90):
        """roamsim with `devices` heard only by 2 gateways of `net`; (exit code, summary)."""
        dev_path = os.path.join(self.dir, "sim-%s-%d.json" % (net.name, time.monotonic_ns()))
        write_json(dev_path, devices)
        summary = dev_path + ".summary.json"
        r = subprocess.run([ROAMSIM, "--ns", "127.0.0.1:%d" % net.gwmp_port, "--devices", dev_path,
                            "--uplinks", str(uplinks), "--interval", "1200",
                            "--confirmed-ratio", str(confirmed_ratio), "--gateways", "2",
                            "--lat", "52.37", "--lon", "4.89", "--json", summary, "--quiet"],
                           capture_output=True, text=True, timeout=timeout)
        assert_no_sanitizer_report("roamsim", r.stderr)
        with open(summary) as f:
            return r.returncode, json.load(f)

    def close(self):
        """Stops everything; raises the first unclean exit."""
        close_world(self.networks(), self.hub, self.dir)
