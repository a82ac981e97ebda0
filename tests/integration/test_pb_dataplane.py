"""roamhubd serving Packet Broker's data plane to The Things Stack's agent (issue 12): a client
written independently of the server — Python grpcio with classes generated at test time from the
project's proto/packetbroker/*.proto — plays a TTS forwarder (NetID 000014, tenant "tenant-a",
cluster "eu1") and a TTS home network (NetID 000013, the DevAddr block 26000000/7 and a join
route), with the messages of shared/vectors/pb_messages.json.

Covered: the token from the agent's OAuth2 form carries the identity claim; publish ->
RoutedUplinkMessage with router-assigned ID, hops and the forwarder's IDs; 4 streams in one group
get one copy per group, balanced; filters (FPort range, gateway metadata off, join-request
prefixes); a home network gets only its own blocks whatever its filter; downlink routed back to
the forwarder's stream with its IDs and gateway_uplink_token byte for byte; delivery reports;
refusal of foreign identities (PERMISSION_DENIED) and of missing, bad, expired, admin-only and
foreign-key tokens (UNAUTHENTICATED), logged as security events; a Subscribe deadline; a
subscriber that never reads (bounded memory, messages fail after the hold time); Mapper
UpdateGateway into /gateways; TLS with ALPN h2 and h2c."""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (ALL_DOWN, ALL_UP, BUILD, AdminClient, Hub, admin_config,  # noqa: E402
                             hs256_token)
from test_grpc_listener import PREFACE, make_cert  # noqa: E402

try:
    import grpc
    from grpc_tools import protoc
except ImportError:  # a Python other than Debian's first on PATH: use Debian's packages
    sys.path.append("/usr/lib/python3/dist-packages")
    import grpc
    from grpc_tools import protoc

SOURCE = os.environ.get("ROAMHUB_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
VECTORS = os.environ.get("ROAMHUB_VECTORS", os.path.join(SOURCE, "..", "shared", "vectors"))
FWD, HOME, OTHER = "000014", "000013", "000099"
GEN = tempfile.mkdtemp(prefix="roamhub-pbdp-")


def generate_stubs():
    proto_dir = os.path.join(SOURCE, "proto")
    wkt = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    files = ["packetbroker/v3.proto", "packetbroker/routing_v1.proto",
             "packetbroker/mapping_v2.proto"]
    rc = protoc.main(["protoc", "-I" + proto_dir, "-I" + wkt, "--python_out=" + GEN,
                      "--grpc_python_out=" + GEN] + files)
    if rc != 0:
        raise RuntimeError("protoc failed on the project's .proto files")
    sys.path.insert(0, GEN)


generate_stubs()
from packetbroker import mapping_v2_pb2 as mp  # noqa: E402
from packetbroker import mapping_v2_pb2_grpc as mpg  # noqa: E402
from packetbroker import routing_v1_pb2 as rt  # noqa: E402
from packetbroker import routing_v1_pb2_grpc as rtg  # noqa: E402
from packetbroker import v3_pb2 as v3  # noqa: E402


def vector(name):
    with open(os.path.join(VECTORS, "pb_messages.json")) as f:
        for v in json.load(f)["vectors"]:
            if v["name"] == name:
                return bytes.fromhex(v["hex"])
    raise KeyError(name)


def uplink_request(phy=None, fport_data=True):
    """The vector's data uplink (DevAddr 26011234 FPort 1), optionally with another PHYPayload."""
    req = rt.PublishUplinkMessageRequest.FromString(vector("PublishUplinkMessageRequest: data uplink"))
    if phy is not None:
        req.message.phy_payload.plain = phy
    return req


def data_up(devaddr, fport=1, confirmed=False, fcnt=7):
    """An uplink data frame (MIC not checked by the hub)."""
    mhdr = 0x80 if confirmed else 0x40
    return (bytes([mhdr]) + struct.pack("<I", devaddr) + b"\x00" + struct.pack("<H", fcnt) +
            bytes([fport]) + b"\xaa\xbb" + b"\x01\x02\x03\x04")


def jwt_claims(token):
    p = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


class Collector:
    """Reads one Subscribe stream on a thread; keeps what arrives and how it ended."""

    def __init__(self, call, parse):
        self.call, self.parse = call, parse
        self.msgs, self.code, self.details = [], None, None
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        try:
            for m in self.call:
                self.msgs.append(m)
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()

    def cancel(self):
        self.call.cancel()
        self.t.join(5)


class PBWorld(unittest.TestCase):
    TLS = False
    MEMBERS = []  # member records (rate limits) of the world

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="roamhub-pbw-")
        table = {
            "networks": [{"net_id": n, "name": "net" + n, "listed": True} for n in (FWD, HOME, OTHER)],
            "tenants": [{"net_id": FWD, "tenant_id": "tenant-a", "name": "A"}],
            "members": list(cls.MEMBERS), "endpoints": [],
            "devaddr_blocks": [{"prefix": "26000000/7", "net_id": HOME},
                               {"prefix": "32000000/7", "net_id": OTHER}],
            "join_routes": [{"join_eui": "70B3D57ED0000000/64", "home_net_id": HOME}],
            "policies": [{"forwarder_net_id": FWD, "home_net_id": HOME, "uplink": dict(ALL_UP),
                          "downlink": dict(ALL_DOWN)},
                         {"forwarder_net_id": FWD, "home_net_id": OTHER, "uplink": dict(ALL_UP),
                          "downlink": dict(ALL_DOWN)}]}
        grpc_cfg = {"address": "127.0.0.1", "port": 0, "hold_ms": 1000, "queue_max": 40}
        if cls.TLS:
            make_cert(cls.dir)
            grpc_cfg.update({"tls_cert": os.path.join(cls.dir, "hub.pem"),
                             "tls_key": os.path.join(cls.dir, "hub.key")})
        cls.admin_cfg = admin_config(cls.dir)
        cls.hub = Hub(table, workers=2, config={"admin": cls.admin_cfg, "grpc": grpc_cfg})
        cls.target = "127.0.0.1:%d" % cls.hub.grpc_port
        adm = AdminClient(cls.hub)
        op = adm.token(adm.operator_key())
        cls.operator_token = op
        cls.fwd_key, _ = adm.create_key(op, net_id=FWD, tenant="tenant-a", rights=["RIGHT_DATA_PLANE"])
        cls.home_key, _ = adm.create_key(op, net_id=HOME, rights=["RIGHT_DATA_PLANE"])
        cls.other_key, _ = adm.create_key(op, net_id=OTHER, rights=["RIGHT_DATA_PLANE"])
        cls.fwd_tok = cls.agent_token(cls.fwd_key)
        cls.home_tok = cls.agent_token(cls.home_key)
        cls.other_tok = cls.agent_token(cls.other_key)
        cls.channels = []

    @classmethod
    def agent_token(cls, key):
        """The token request exactly as the agent sends it (x/oauth2 AuthStyleInParams)."""
        kid, secret = key.split(":", 1)
        body = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": kid, "client_secret": secret,
            "scope": "networks", "audience": "localhost 127.0.0.1"}).encode()
        st, data, _ = AdminClient(cls.hub).raw(
            "POST", "/api/v1/oauth/token", body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert st == 200, data
        doc = json.loads(data)
        assert doc["token_type"].lower() == "bearer" and doc["expires_in"] > 10, doc
        return doc["access_token"]

    @classmethod
    def tearDownClass(cls):
        for ch in cls.channels:
            ch.close()
        rc = cls.hub.stop()
        logs = cls.hub.logs()
        cls.hub.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert rc == 0, "roamhubd exit %s:\n%s" % (rc, logs)

    def channel(self):
        if self.TLS:
            with open(os.path.join(self.dir, "hub.pem"), "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            ch = grpc.secure_channel(self.target, creds)
        else:
            ch = grpc.insecure_channel(self.target)  # h2c with prior knowledge
        self.channels.append(ch)
        return ch

    @staticmethod
    def md(token):
        return (("authorization", "Bearer " + token),)

    def subscribe_home(self, group, filters=(), n=1, token=None, net_id=0x13):
        stub = rtg.HomeNetworkDataStub(self.channel())
        cols = []
        for _ in range(n):
            req = rt.SubscribeHomeNetworkRequest(home_network_net_id=net_id,
                                                 home_network_cluster_id="nam1",
                                                 group=group, filters=list(filters))
            cols.append(Collector(stub.Subscribe(req, metadata=self.md(token or self.home_tok)),
                                  v3.RoutedUplinkMessage))
        time.sleep(0.3)  # the Subscribe reached the hub
        return cols

    def subscribe_fwd(self, group="eu1", token=None):
        stub = rtg.ForwarderDataStub(self.channel())
        req = rt.SubscribeForwarderRequest(forwarder_net_id=0x14, forwarder_tenant_id="tenant-a",
                                           forwarder_cluster_id="eu1", group=group)
        col = Collector(stub.Subscribe(req, metadata=self.md(token or self.fwd_tok)),
                        v3.RoutedDownlinkMessage)
        time.sleep(0.3)
        return col

    def publish(self, req, token=None):
        stub = rtg.ForwarderDataStub(self.channel())
        return stub.Publish(req, metadata=self.md(token or self.fwd_tok), timeout=3)

    @staticmethod
    def wait(cond, timeout=3.0):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if cond():
                return True
            time.sleep(0.02)
        return cond()

    # ------------------------------------------------------------------ tests

    def test_token_carries_the_identity_claim(self):
        c = jwt_claims(self.fwd_tok)
        ns = c["https://iam.packetbroker.net/claims"]["ns"]
        self.assertEqual(ns[0], {"nid": 0x14, "tid": "tenant-a"})
        self.assertIn(11, c["https://iam.packetbroker.net/claims"]["rights"])
        self.assertIn("roamhub-packetbroker", c["aud"])
        self.assertGreater(c["exp"], time.time())

    def test_publish_one_copy_per_group_balanced(self):
        g4 = self.subscribe_home("bal4", n=4)
        g1 = self.subscribe_home("bal1", n=1)
        ids = [self.publish(uplink_request(data_up(0x26011234, fcnt=i))).id for i in range(12)]
        self.assertEqual(len(set(ids)), 12)
        self.assertTrue(all(len(i) >= 16 for i in ids))
        self.assertTrue(self.wait(lambda: sum(len(c.msgs) for c in g4) >= 12 and len(g1[0].msgs) >= 12))
        time.sleep(0.3)
        got4 = [m for c in g4 for m in c.msgs]
        self.assertEqual(len(got4), 12, "one copy per group, not one per stream")
        self.assertEqual(sorted(m.id for m in got4), sorted(ids))
        self.assertEqual(len(g1[0].msgs), 12)
        per_stream = [len(c.msgs) for c in g4]
        self.assertEqual(per_stream, [3, 3, 3, 3], "balanced over the group's streams")
        m = got4[0]
        self.assertEqual((m.forwarder_net_id, m.forwarder_tenant_id, m.forwarder_cluster_id),
                         (0x14, "tenant-a", "eu1"))
        self.assertEqual(m.home_network_net_id, 0x13)
        self.assertEqual(len(m.hops), 1)
        self.assertEqual(m.hops[0].protocol, v3.GRPC)
        self.assertEqual(m.hops[0].receiver_name, "roamhub")
        self.assertTrue(m.hops[0].HasField("received_at"))
        self.assertTrue(m.HasField("time"))
        # the uplink as published (gateway token, data rate, metadata) reaches the home network
        sent = uplink_request()
        self.assertEqual(m.message.gateway_uplink_token, sent.message.gateway_uplink_token)
        self.assertEqual(m.message.data_rate, sent.message.data_rate)
        self.assertTrue(m.message.HasField("gateway_metadata"))
        for c in g4 + g1:
            c.cancel()

    def test_statistics_and_capture(self):
        """gRPC traffic lands in the same statistics rows and capture as TS002 traffic."""
        import gzip
        t0 = int(time.time()) - 60
        home = self.subscribe_home("stats")[0]
        got = {}

        def cap():
            got["r"] = AdminClient(self.hub).raw(
                "GET", "/api/v1/capture?seconds=2&download=true",
                headers={"Authorization": "Bearer " + self.operator_token})
        t = threading.Thread(target=cap)
        t.start()
        time.sleep(0.5)
        self.publish(uplink_request(data_up(0x26000077, fport=9)))   # forwarded to 000013
        self.publish(uplink_request(data_up(0x70000077, fport=9)))   # in no block: no_route
        t.join(10)
        st, data, hd = got["r"]
        self.assertEqual(st, 200)
        events = [json.loads(x) for x in gzip.decompress(data).decode().splitlines()][:-1]
        mine = [(e["forwarder"], e.get("home"), e["outcome"]) for e in events if e["forwarder"] == FWD]
        self.assertIn((FWD, HOME, "forwarded"), mine)
        self.assertIn("no_route", [m[2] for m in mine])
        self.assertEqual(len(home.msgs), 1)
        deadline = time.time() + 8
        while True:
            st, body, _ = AdminClient(self.hub).call("GET", "/stats?from=%d" % t0, token=self.operator_token)
            self.assertEqual(st, 200, body)
            rows = {(it["forwarder"], it.get("home"), it["class"], it["outcome"]) for it in body["items"]}
            if (FWD, HOME, "uplink_app", "forwarded") in rows or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertIn((FWD, HOME, "uplink_app", "forwarded"), rows)
        self.assertIn("no_route", {r[3] for r in rows if r[0] == FWD})
        # gRPC to gRPC: Packet Broker on both sides, also for the refusal (no TS002 side reached)
        protos = {(it["outcome"], it["forwarder_protocol"], it["home_protocol"])
                  for it in body["items"] if it["forwarder"] == FWD}
        self.assertIn(("forwarded", "packet_broker", "packet_broker"), protos)
        self.assertIn(("no_route", "packet_broker", "packet_broker"), protos)
        st, ts, _ = AdminClient(self.hub).call(
            "GET", "/stats?from=%d&protocol=ts002&forwarder=%s" % (t0, FWD), token=self.operator_token)
        self.assertEqual((st, ts["items"]), (200, []))
        home.cancel()

    def test_filters(self):
        fport = v3.RoutingFilter(mac=v3.RoutingFilter.MACPayload(
            f_port_ranges=[v3.RoutingFilter.MACPayload.FPortRange(low=2, high=5)]))
        nometa = v3.RoutingFilter(gateway_metadata={"value": False},
                                  mac=v3.RoutingFilter.MACPayload(confirmed={"value": True}))
        joins = v3.RoutingFilter(join_request=v3.RoutingFilter.JoinRequest(eui_prefixes=[
            v3.RoutingFilter.JoinRequest.EUIPrefixes(join_eui=0x70B3D57ED0000000, join_eui_length=32)]))
        other_joins = v3.RoutingFilter(join_request=v3.RoutingFilter.JoinRequest(eui_prefixes=[
            v3.RoutingFilter.JoinRequest.EUIPrefixes(join_eui=0x1111111100000000, join_eui_length=32)]))
        a = self.subscribe_home("f-port", [fport])[0]
        b = self.subscribe_home("f-conf-nometa", [nometa])[0]
        c = self.subscribe_home("f-join", [joins])[0]
        d = self.subscribe_home("f-otherjoin", [other_joins])[0]
        self.publish(uplink_request(data_up(0x26000001, fport=1)))
        self.publish(uplink_request(data_up(0x26000002, fport=3)))
        self.publish(uplink_request(data_up(0x26000003, fport=9, confirmed=True)))
        join = rt.PublishUplinkMessageRequest.FromString(vector("PublishUplinkMessageRequest: join-request"))
        self.publish(join)
        self.assertTrue(self.wait(lambda: a.msgs and b.msgs and c.msgs))
        time.sleep(0.3)
        self.assertEqual([m.message.phy_payload.plain[1] for m in a.msgs], [0x02])
        self.assertEqual(len(b.msgs), 1)
        self.assertEqual(b.msgs[0].message.phy_payload.plain[1], 0x03)
        self.assertFalse(b.msgs[0].message.HasField("gateway_metadata"), "metadata off")
        self.assertEqual(len(c.msgs), 1)
        self.assertEqual(c.msgs[0].message.phy_payload.plain, join.message.phy_payload.plain)
        self.assertTrue(c.msgs[0].message.HasField("gateway_metadata"))
        self.assertEqual(d.msgs, [])
        for x in (a, b, c, d):
            x.cancel()

    def test_home_gets_only_its_own_blocks(self):
        mine = self.subscribe_home("scope", [v3.RoutingFilter(mac=v3.RoutingFilter.MACPayload(
            dev_addr_prefixes=[v3.DevAddrPrefix(value=0, length=0)]))])[0]
        r = self.publish(uplink_request(data_up(0x32000001)))  # OTHER's block: routed, not to us
        self.assertTrue(r.id)
        r = self.publish(uplink_request(data_up(0x70000001)))  # in no block: accepted, counted
        self.assertTrue(r.id)
        self.publish(uplink_request(data_up(0x26000009)))
        self.assertTrue(self.wait(lambda: mine.msgs))
        time.sleep(0.3)
        self.assertEqual([m.message.phy_payload.plain[1:5] for m in mine.msgs],
                         [struct.pack("<I", 0x26000009)])
        mine.cancel()

    def test_downlink_routed_back_with_identical_forwarder_identity(self):
        fwd = self.subscribe_fwd()
        home = rtg.HomeNetworkDataStub(self.channel())
        req = rt.PublishDownlinkMessageRequest.FromString(
            vector("PublishDownlinkMessageRequest: class A data downlink"))
        resp = home.Publish(req, metadata=self.md(self.home_tok), timeout=3)
        self.assertTrue(resp.id)
        self.assertTrue(self.wait(lambda: fwd.msgs))
        m = fwd.msgs[0]
        self.assertEqual(m.id, resp.id)
        self.assertEqual((m.forwarder_net_id, m.forwarder_tenant_id, m.forwarder_cluster_id),
                         (req.forwarder_net_id, req.forwarder_tenant_id, req.forwarder_cluster_id))
        self.assertEqual((m.home_network_net_id, m.home_network_cluster_id), (0x13, "nam1"))
        self.assertEqual(m.message.gateway_uplink_token, req.message.gateway_uplink_token)
        self.assertEqual(len(m.message.downlink_token), 8, "the router's downlink_token")
        passed = v3.DownlinkMessage()
        passed.CopyFrom(m.message)
        passed.ClearField("downlink_token")
        self.assertEqual(passed.SerializeToString(), req.message.SerializeToString())
        self.assertEqual(m.hops[0].protocol, v3.GRPC)
        # another cluster of the same forwarder has no subscription: refused at once
        req.forwarder_cluster_id = "eu2"
        with self.assertRaises(grpc.RpcError) as cm:
            home.Publish(req, metadata=self.md(self.home_tok), timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn("no downlink subscription", cm.exception.details())
        fwd.cancel()

    def test_delivery_reports(self):
        home = rtg.HomeNetworkDataStub(self.channel())
        fwd = rtg.ForwarderDataStub(self.channel())
        for name in ("UplinkMessageDeliveryStateChangeRequest: processed",
                     "UplinkMessageDeliveryStateChangeRequest: error NOT_FOUND",
                     "UplinkMessageDeliveryStateChangeRequest: error UPLINK_UNKNOWN_ERROR (0)"):
            req = rt.UplinkMessageDeliveryStateChangeRequest.FromString(vector(name))
            home.ReportUplinkMessageDeliveryState(req, metadata=self.md(self.home_tok), timeout=3)
        for name in ("DownlinkMessageDeliveryStateChangeRequest: success rx1",
                     "DownlinkMessageDeliveryStateChangeRequest: error DOWNLINK_UNKNOWN_ERROR (0)"):
            req = rt.DownlinkMessageDeliveryStateChangeRequest.FromString(vector(name))
            fwd.ReportDownlinkMessageDeliveryState(req, metadata=self.md(self.fwd_tok), timeout=3)
        # a report for someone else's traffic is refused
        req = rt.UplinkMessageDeliveryStateChangeRequest.FromString(
            vector("UplinkMessageDeliveryStateChangeRequest: processed"))
        with self.assertRaises(grpc.RpcError) as cm:
            home.ReportUplinkMessageDeliveryState(req, metadata=self.md(self.fwd_tok), timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        metrics = self.hub.get_admin("/metrics")[1]
        if isinstance(metrics, bytes):
            metrics = metrics.decode()
        self.assertIn("pb_uplink_report_error", metrics)
        self.assertIn("pb_downlink_report_ok", metrics)

    def test_foreign_identities_refused(self):
        fwd = rtg.ForwarderDataStub(self.channel())
        req = uplink_request()
        req.forwarder_net_id = 0x13  # the home network's NetID with the forwarder's token
        with self.assertRaises(grpc.RpcError) as cm:
            fwd.Publish(req, metadata=self.md(self.fwd_tok), timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("forwarder_net_id/forwarder_tenant_id: NetID 000013", cm.exception.details())
        req = uplink_request()
        req.forwarder_tenant_id = "tenant-b"  # another tenant of its own NetID
        with self.assertRaises(grpc.RpcError) as cm:
            fwd.Publish(req, metadata=self.md(self.fwd_tok), timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        # subscribing to another network's uplinks
        col = self.subscribe_home("thief", token=self.other_tok)[0]
        self.assertTrue(self.wait(lambda: col.code is not None))
        self.assertEqual(col.code, grpc.StatusCode.PERMISSION_DENIED)
        # publishing a downlink as someone else's home network
        home = rtg.HomeNetworkDataStub(self.channel())
        dl = rt.PublishDownlinkMessageRequest.FromString(
            vector("PublishDownlinkMessageRequest: class A data downlink"))
        with self.assertRaises(grpc.RpcError) as cm:
            home.Publish(dl, metadata=self.md(self.other_tok), timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertTrue(self.wait(lambda: "msg=\"grpc call refused\" status=PERMISSION_DENIED" in self.hub.logs()))
        self.assertIn("sub=security", self.hub.logs())

    def test_key_created_with_roamctl(self):
        """docs/PEERING.md: the operator creates the agent's client ID and secret with roamctl."""
        p = subprocess.run(
            [os.path.join(BUILD, "tools", "roamctl"), "--url", "http://127.0.0.1:%d" % self.hub.admin_port,
             "--key", AdminClient(self.hub).operator_key(), "keys", "create", "--net-id", FWD,
             "--tenant", "tenant-a", "--rights", "data_plane", "--name", "tts-eu1"],
            capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        key = [w for w in p.stderr.split() if w.startswith("k-") and ":" in w]
        self.assertEqual(len(key), 1, p.stderr)
        tok = self.agent_token(key[0])
        self.assertTrue(self.publish(uplink_request(), token=tok).id)
        # a key without the right gets an admin-only token: the data plane refuses it
        p = subprocess.run(
            [os.path.join(BUILD, "tools", "roamctl"), "--url", "http://127.0.0.1:%d" % self.hub.admin_port,
             "--key", AdminClient(self.hub).operator_key(), "keys", "create", "--net-id", FWD,
             "--rights", "read_traffic", "--name", "stats-only"],
            capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        key = [w for w in p.stderr.split() if w.startswith("k-") and ":" in w]
        with self.assertRaises(grpc.RpcError) as cm:
            self.publish(uplink_request(), token=self.agent_token(key[0]))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_bad_and_expired_tokens_refused(self):
        with open(self.admin_cfg["jwt_secret_file"]) as f:
            secret = f.read().strip()
        now = int(time.time())
        claim = {"https://iam.packetbroker.net/claims": {"ns": [{"nid": 0x14, "tid": "tenant-a"}],
                                                        "rights": [10, 11]}}
        base = {"iss": "roamhub", "aud": ["roamhub-admin", "roamhub-packetbroker"], "sub": "x",
                "iat": now - 4000, "exp": now - 3600}
        base.update(claim)
        expired = hs256_token(secret, base)
        good_shape = dict(base, iat=now, exp=now + 300)
        foreign_key = hs256_token("another hub's secret, 32+ bytes long!!", good_shape)
        forged_claim = hs256_token(secret, dict(good_shape, aud="roamhub-admin"))  # admin-only
        cases = [
            (None, "missing authorization"),
            ("Bearer not.a.token", "invalid token"),
            ("Basic " + base64.b64encode(b"a:b").decode(), "Bearer"),
            ("Bearer " + expired, "expired"),
            ("Bearer " + foreign_key, "does not verify"),
            ("Bearer " + forged_claim, "aud"),
            ("Bearer " + self.operator_token, "aud"),  # an admin token is not a data-plane token
        ]
        stub = rtg.ForwarderDataStub(self.channel())
        for header, want in cases:
            md = (("authorization", header),) if header else ()
            with self.assertRaises(grpc.RpcError, msg=want) as cm:
                stub.Publish(uplink_request(), metadata=md, timeout=3)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED, want)
            self.assertIn(want, cm.exception.details())
        # the good token still works (nothing above broke the connection or the hub)
        self.assertTrue(self.publish(uplink_request()).id)
        self.assertIn("msg=\"grpc call refused\" status=UNAUTHENTICATED", self.hub.logs())
        self.assertNotIn(expired, self.hub.logs(), "tokens are never logged")

    def test_refusal_log_is_rate_limited(self):
        """A caller repeating a refused call cannot grow the log without bound."""
        stub = rtg.ForwarderDataStub(self.channel())
        before = self.hub.logs().count('msg="grpc call refused"')
        for _ in range(120):
            with self.assertRaises(grpc.RpcError):
                stub.Publish(uplink_request(), metadata=(("authorization", "Bearer x.y.z"),), timeout=3)
        self.assertTrue(self.wait(lambda: "log lines suppressed" in self.hub.logs(), timeout=5))
        self.assertLess(self.hub.logs().count('msg="grpc call refused"') - before, 60)
        self.assertIn('event="pb_unauthenticated"', self.hub.get_admin("/metrics")[1])

    def test_subscribe_deadline_exceeded(self):
        stub = rtg.HomeNetworkDataStub(self.channel())
        req = rt.SubscribeHomeNetworkRequest(home_network_net_id=0x13, group="deadline")
        col = Collector(stub.Subscribe(req, metadata=self.md(self.home_tok), timeout=0.5),
                        v3.RoutedUplinkMessage)
        col.t.join(5)
        self.assertEqual(col.code, grpc.StatusCode.DEADLINE_EXCEEDED)
        # the hub dropped the stream: traffic afterwards is fine
        self.assertTrue(self.publish(uplink_request()).id)

    def test_invalid_requests(self):
        stub = rtg.ForwarderDataStub(self.channel())
        req = uplink_request(phy=b"\x40\x01")  # too short to be a frame
        with self.assertRaises(grpc.RpcError) as cm:
            stub.Publish(req, metadata=self.md(self.fwd_tok), timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("message.phy_payload.plain", cm.exception.details())
        call = self.channel().unary_unary("/org.packetbroker.routing.v1.ForwarderData/Publish")
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"\xff\xff\xff", metadata=self.md(self.fwd_tok), timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("PublishUplinkMessageRequest: does not decode", cm.exception.details())
        hs = rtg.HomeNetworkDataStub(self.channel())
        bad = v3.RoutingFilter(mac=v3.RoutingFilter.MACPayload(
            f_port_ranges=[v3.RoutingFilter.MACPayload.FPortRange(low=9, high=2)]))
        col = Collector(hs.Subscribe(rt.SubscribeHomeNetworkRequest(
            home_network_net_id=0x13, filters=[bad]), metadata=self.md(self.home_tok)), None)
        col.t.join(5)
        self.assertEqual(col.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("f_port_ranges[0]", col.details)

    def test_control_plane_unimplemented(self):
        call = self.channel().unary_unary("/org.packetbroker.routing.v1.PolicyManager/ListDefaultPolicies")
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"", metadata=self.md(self.fwd_tok), timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_mapper_update_gateway(self):
        stub = mpg.MapperStub(self.channel())
        req = mp.UpdateGatewayRequest(
            forwarder_net_id=0x14, forwarder_tenant_id="tenant-a", forwarder_cluster_id="eu1",
            forwarder_gateway_id=v3.GatewayIdentifier(eui={"value": 0xB827EBFFFE123456},
                                                      plain="my-gateway"),
            gateway_location=v3.GatewayLocationValue(location=v3.GatewayLocation(
                terrestrial=v3.GatewayLocation.Terrestrial(
                    location=v3.Location(latitude=52.37, longitude=4.89)))),
            online={"value": True}, online_ttl={"seconds": 600})
        stub.UpdateGateway(req, metadata=self.md(self.fwd_tok), timeout=3)
        st, doc, _ = AdminClient(self.hub).call("GET", "/gateways?net_id=" + FWD, token=self.operator_token)
        self.assertEqual(st, 200, doc)
        gws = [g for g in doc["gateways"] if g.get("id") == "b827ebfffe123456"]
        self.assertEqual(len(gws), 1, doc)
        self.assertAlmostEqual(gws[0]["lat"], 52.37)
        self.assertAlmostEqual(gws[0]["lon"], 4.89)
        self.assertTrue(gws[0]["online"])
        # offline, and a gateway of someone else refused
        req.online.value = False
        req.ClearField("gateway_location")
        stub.UpdateGateway(req, metadata=self.md(self.fwd_tok), timeout=3)
        st, doc, _ = AdminClient(self.hub).call("GET", "/gateways?net_id=" + FWD, token=self.operator_token)
        self.assertFalse([g for g in doc["gateways"] if g.get("id") == "b827ebfffe123456"][0]["online"])
        with self.assertRaises(grpc.RpcError) as cm:
            stub.UpdateGateway(req, metadata=self.md(self.home_tok), timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        req.online.value = True
        req.ClearField("online_ttl")
        with self.assertRaises(grpc.RpcError) as cm:
            stub.UpdateGateway(req, metadata=self.md(self.fwd_tok), timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("online_ttl", cm.exception.details())


def hpack_literal(name, value):
    """HPACK literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    def integer(n, prefix_bits, first=0):
        limit = (1 << prefix_bits) - 1
        if n < limit:
            return bytes([first | n])
        out = [first | limit]
        n -= limit
        while n >= 128:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)
    name, value = name.encode(), value.encode()
    return b"\x00" + integer(len(name), 7) + name + integer(len(value), 7) + value


def frame(ftype, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


class PBStalledSubscriber(PBWorld):
    """A subscriber that never reads (flow-control window 0, nothing read from the socket): the
    hub's memory stays bounded, its messages fail after the hold time, and the other stream of
    the same group keeps receiving."""

    def sanitized(self):
        with open("/proc/%d/maps" % self.hub.proc.pid) as f:
            return "libasan" in f.read()  # freed memory sits in ASan's quarantine: RSS says little

    def gauge(self, name):
        for line in self.hub.get_admin("/metrics")[1].splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError("no gauge " + name)

    def rss_kb(self):
        with open("/proc/%d/status" % self.hub.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def test_subscriber_that_never_reads(self):
        live = self.subscribe_home("stall")[0]
        s = socket.create_connection(("127.0.0.1", self.hub.grpc_port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        settings = struct.pack(">HI", 0x4, 0)  # SETTINGS_INITIAL_WINDOW_SIZE = 0
        hdrs = b"".join(hpack_literal(k, v) for k, v in (
            (":method", "POST"), (":scheme", "http"),
            (":path", "/org.packetbroker.routing.v1.HomeNetworkData/Subscribe"),
            (":authority", "hub"), ("content-type", "application/grpc"), ("te", "trailers"),
            ("authorization", "Bearer " + self.home_tok)))
        body = rt.SubscribeHomeNetworkRequest(home_network_net_id=0x13, home_network_cluster_id="nam1",
                                              group="stall").SerializeToString()
        s.sendall(PREFACE + frame(4, 0, 0, settings) + frame(1, 4, 1, hdrs) +
                  frame(0, 1, 1, b"\x00" + len(body).to_bytes(4, "big") + body))
        time.sleep(0.5)
        big = uplink_request(data_up(0x26000005))
        ant = big.message.gateway_metadata.plain_signal_quality.terrestrial.antennas
        for i in range(800):  # ~10 KB of gateway metadata per message
            a = ant.add()
            a.index = i + 1
            a.value.channel_rssi = -100.0
        self.assertGreater(big.ByteSize(), 8000)
        rss0 = self.rss_kb()
        # 1. the stalled stream takes its share until its unread output passes the high-water
        # mark, then the group's other stream gets everything
        for _ in range(150):
            self.publish(big)
        self.assertTrue(self.wait(lambda: len(live.msgs) >= 100, timeout=10),
                        "the reading stream keeps receiving: got %d" % len(live.msgs))
        time.sleep(0.3)
        self.assertLess(len(live.msgs), 150, "the stalled stream took its share before stalling")
        # 2. only the stalled stream left: the group's queue fills (queue_max 40), the rest
        # fails at once, and what was queued fails after the hold time (1 s)
        live.cancel()
        time.sleep(0.2)
        peak = 0
        for _ in range(150):
            self.publish(big)
            peak = max(peak, self.gauge("roamhub_pb_queued_messages"))
        self.assertGreater(peak, 0)
        self.assertLessEqual(peak, 40, "a group holds at most queue_max messages")
        self.assertEqual(self.gauge("roamhub_pb_subscription_streams"), 1)
        time.sleep(2.0)
        self.assertEqual(self.gauge("roamhub_pb_queued_messages"), 0, "failed after hold_ms")
        self.assertEqual(self.gauge("roamhub_pb_queued_bytes"), 0)
        grown = self.rss_kb() - rss0
        metrics = self.hub.get_admin("/metrics")[1]
        # bounded: the stalled call's output cap (1 MiB) + at most queue_max (40) messages of
        # 10 KB, not 300 x 10 KB held; allow for allocator slack
        if not self.sanitized():
            self.assertLess(grown, 12 * 1024, "RSS grew by %d KiB" % grown)
        self.assertIn("pb_queue_full", metrics)
        self.assertIn("pb_hold_expired", metrics)
        self.assertIn('msg="message failed"', self.hub.logs())
        s.close()


class PBShutdown(PBWorld):
    """SIGTERM ends every Subscribe stream with UNAVAILABLE (the agent re-subscribes elsewhere
    or later) and the hub exits 0 with subscriptions and queued messages open."""

    def test_sigterm_ends_streams_with_unavailable(self):
        home = self.subscribe_home("bye", n=2)
        fwd = self.subscribe_fwd()
        self.subscribe_home("queued-then-gone")[0].cancel()  # a group left with a queue
        self.publish(uplink_request())
        self.assertTrue(self.wait(lambda: sum(len(c.msgs) for c in home) == 1))
        rc = self.hub.stop()
        self.assertEqual(rc, 0)
        for c in home + [fwd]:
            c.t.join(5)
            self.assertEqual(c.code, grpc.StatusCode.UNAVAILABLE, c.details)


class PBRateLimit(PBWorld):
    """The rate limit of the member record owning the caller's NetID applies to gRPC calls as to
    TS002 requests."""
    MEMBERS = [{"id": "tts-fwd", "net_ids": [FWD], "rate_limit_per_s": 2}]

    def test_member_rate_limit(self):
        codes = []
        for _ in range(12):
            try:
                self.publish(uplink_request())
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as e:
                codes.append(e.code())
                self.assertIn("rate limit exceeded", e.details())
        self.assertIn(grpc.StatusCode.OK, codes)
        self.assertIn(grpc.StatusCode.RESOURCE_EXHAUSTED, codes)
        self.assertIn('event="rate_limited"', self.hub.get_admin("/metrics")[1])


class PBWorldTLS(PBWorld):
    """The same data plane over TLS (ALPN h2), as the agent dials it without pba.insecure."""
    TLS = True


def load_tests(loader, tests, pattern):
    suite = unittest.TestSuite()
    suite.addTests(loader.loadTestsFromTestCase(PBWorld))
    suite.addTest(PBStalledSubscriber("test_subscriber_that_never_reads"))
    suite.addTest(PBShutdown("test_sigterm_ends_streams_with_unavailable"))
    suite.addTest(PBRateLimit("test_member_rate_limit"))
    for name in ("test_publish_one_copy_per_group_balanced",
                 "test_downlink_routed_back_with_identical_forwarder_identity",
                 "test_bad_and_expired_tokens_refused"):
        suite.addTest(PBWorldTLS(name))
    return suite


if __name__ == "__main__":
    unittest.main()
