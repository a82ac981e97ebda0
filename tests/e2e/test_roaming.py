"""End-to-end roaming: simulated gateways and devices (roamsim) -> network A (roamns, forwarder)
-> roamhubd -> network B (roamns, home, async) and back, with real processes on 127.0.0.1.

Each check comes from an independent observer: roamsim verifies every downlink (tmst for RX1,
MIC, decryption, counters) with the device's own keys; B's application output holds what B
decrypted with its keys; the hub's /metrics counts outcomes."""
import base64
import copy
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roaming_world import ALL_DOWN, ALL_UP, B_DEVICES, C_DEVICES, World  # noqa: E402

_run = [0]


def abp(dev):
    """A copy of an ABP device whose frame counter starts past earlier runs (no replays)."""
    _run[0] += 1
    d = copy.deepcopy(dev)
    d["fcnt_up"] = _run[0] * 100
    return d


class RoamingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = World(with_c=True)

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def b_uplinks_for(self, dev_eui):
        return [u for u in self.w.b.uplinks() if u["dev_eui"] == dev_eui]

    def test_abp_uplink_roamed_and_ack_in_rx1(self):
        dev = abp(B_DEVICES[0])
        rc, s, ev = self.w.roamsim([dev], uplinks=2, confirmed_ratio=1.0)
        self.assertEqual(rc, 0, s.get("failures"))
        sent = [e for e in ev if e["event"] == "uplink"]
        self.assertEqual(len(sent), 2)
        time.sleep(0.3)
        got = {u["fcnt"]: u for u in self.b_uplinks_for(dev["dev_eui"])}
        for e in sent:
            u = got.get(e["fcnt"])
            self.assertIsNotNone(u, "B did not output fcnt %d" % e["fcnt"])
            self.assertEqual(u["payload_hex"], e["payload_hex"])   # decrypted by B = sent plaintext
            self.assertEqual(u["via"], "roaming")
            self.assertEqual(u["forwarder_net_id"], self.w.a.net_id)
        # every confirmed uplink was ACKed inside RX1, at exactly uplink tmst + 1 s
        downs = [e for e in ev if e["event"] == "downlink"]
        self.assertEqual(len(downs), 2)
        for d in downs:
            self.assertTrue(d["ack"])
            self.assertEqual((d["window"], d["verdict"]), (1, "on_time"))
        up_tmst = sorted(t for e in sent for t in e["tmst"][:1])
        self.assertEqual(sorted(d["tmst"] for d in downs), [(t + 1000000) % 2**32 for t in up_tmst])

    def test_otaa_join_through_hub(self):
        devs = [copy.deepcopy(d) for d in B_DEVICES if "app_key" in d]
        rc, s, ev = self.w.roamsim(devs, uplinks=2, confirmed_ratio=0.5)
        self.assertEqual(rc, 0, s.get("failures"))
        self.assertEqual(s["joins_accepted"], len(devs))
        accepts = [e for e in ev if e["event"] == "join_accept"]
        self.assertEqual(len(accepts), len(devs))
        # join-accepts arrive in RX1 of the join-request (+5 s): the downlink verdicts say so
        self.assertEqual(s["downlinks"]["late"] + s["downlinks"]["wrong"], 0)
        time.sleep(0.3)
        for d in devs:
            # the device derived its session keys from the join-accept; B accepts its MICs and
            # decrypts its payloads, so both sides derived the same keys
            sent = {e["fcnt"]: e["payload_hex"] for e in ev
                    if e["event"] == "uplink" and e["dev_eui"] == d["dev_eui"]}
            got = {u["fcnt"]: u["payload_hex"] for u in self.b_uplinks_for(d["dev_eui"])}
            for fcnt, payload in sent.items():
                self.assertEqual(got.get(fcnt), payload, d["name"])

    def test_policy_takes_effect_on_next_message(self):
        w = self.w
        try:
            w.set_policies(w.policy(w.a.net_id, w.b.net_id, up=dict(ALL_UP, application_data=False)),
                           w.policy(w.a.net_id, w.c.net_id))
            dev = abp(B_DEVICES[1])
            rc, s, ev = w.roamsim([dev], uplinks=1, extra=["--no-expect"])
            time.sleep(0.3)
            self.assertEqual([u for u in self.b_uplinks_for(dev["dev_eui"]) if u["fcnt"] >= dev["fcnt_up"]], [])
            w.set_policies(w.policy(w.a.net_id, w.b.net_id, up=dict(ALL_UP, join_request=False)),
                           w.policy(w.a.net_id, w.c.net_id))
            devs = [copy.deepcopy(B_DEVICES[2])]
            rc, s, ev = w.roamsim(devs, uplinks=1, extra=["--no-expect", "--join-attempts", "1"])
            self.assertEqual(s["joins_accepted"], 0)
            w.set_policies(w.policy(w.a.net_id, w.b.net_id, down=dict(ALL_DOWN, mac_data=False)),
                           w.policy(w.a.net_id, w.c.net_id))
            dev = abp(B_DEVICES[0])
            rc, s, ev = w.roamsim([dev], uplinks=1, confirmed_ratio=1.0, extra=["--no-expect"])
            self.assertEqual(s["acks"], 0)           # the ACK (a MAC-only downlink) was refused
            time.sleep(0.3)
            self.assertTrue(self.b_uplinks_for(dev["dev_eui"]))  # the uplink itself still flowed
            w.set_policies(w.policy(w.a.net_id, w.b.net_id, up=dict(ALL_UP, signal_quality=False,
                                                                    localization=False)),
                           w.policy(w.a.net_id, w.c.net_id))
            dev = abp(B_DEVICES[1])
            rc, s, ev = w.roamsim([dev], uplinks=1)
            self.assertEqual(rc, 0, s.get("failures"))
            time.sleep(0.3)
            u = [x for x in self.b_uplinks_for(dev["dev_eui"]) if x["fcnt"] >= dev["fcnt_up"]][-1]
            for g in u["gateways"]:
                self.assertIsNone(g["rssi"])
                self.assertIsNone(g["snr"])
                self.assertIsNone(g["lat"])
                self.assertIsNone(g["lon"])
        finally:
            w.set_policies(w.policy(w.a.net_id, w.b.net_id), w.policy(w.a.net_id, w.c.net_id))
        dev = abp(B_DEVICES[1])
        rc, s, ev = w.roamsim([dev], uplinks=1)
        self.assertEqual(rc, 0, s.get("failures"))
        time.sleep(0.3)
        u = [x for x in self.b_uplinks_for(dev["dev_eui"]) if x["fcnt"] >= dev["fcnt_up"]][-1]
        self.assertIsNotNone(u["gateways"][0]["rssi"])
        self.assertEqual(u["gateways"][0]["lat"], 52.37)

    def test_home_network_down_then_back(self):
        w = self.w
        w.b.stop()
        try:
            before = w.hub.metric('roamhub_messages_total{forwarder="000013",home="000505",class="uplink_app",outcome="unreachable"')
            dev = abp(B_DEVICES[0])
            t0 = time.time()
            rc, s, ev = w.roamsim([dev], uplinks=1, extra=["--no-expect"])
            # A got a failure answer within the endpoint timeout (1.5 s) and the hub counted it
            time.sleep(2.0)
            after = w.hub.metric('roamhub_messages_total{forwarder="000013",home="000505",class="uplink_app",outcome="unreachable"')
            self.assertGreaterEqual(after, before + 1)
            self.assertLess(time.time() - t0, 20)
            # A itself was answered with a TS002 failure naming the unreachable home network
            import re
            answers = re.findall(r'msg="PRStartAns" result=(\w+) txid=\d+ desc="([^"]*)"', w.a.logs())
            self.assertTrue(any(code == "Other" and "receiver" in desc and "netB" in desc
                                for code, desc in answers), answers[-3:])
            # meanwhile the hub keeps serving network C
            cdev = abp(C_DEVICES[0])
            rc, s, ev = w.roamsim([cdev], uplinks=2, confirmed_ratio=1.0)
            self.assertEqual(rc, 0, s.get("failures"))
            self.assertEqual(s["acks"], 2)
        finally:
            w.b.start()
        dev = abp(B_DEVICES[0])
        deadline = time.time() + 15
        while True:   # B is back: traffic resumes without restarting the hub
            rc, s, ev = w.roamsim([dev], uplinks=1, confirmed_ratio=1.0, extra=["--no-expect"])
            if s["acks"] == 1 or time.time() > deadline:
                break
            dev = abp(B_DEVICES[0])
        self.assertEqual(s["acks"], 1)


class IndependentImplementationTest(unittest.TestCase):
    """Frames built by lora-packet (npm; written by others) are accepted through the hub, and the
    downlinks the project produces decode and MIC-check in lora-packet."""

    @classmethod
    def setUpClass(cls):
        # lora-packet is locked in tests/npm (package-lock.json), installed by deploy/bootstrap.sh
        cls.node_dir = os.path.join(os.environ.get("ROAMHUB_SOURCE", os.path.join(
            os.path.dirname(__file__), "..", "..")), "tests", "npm")
        if not os.path.isdir(os.path.join(cls.node_dir, "node_modules", "lora-packet")):
            raise RuntimeError("tests/npm/node_modules/lora-packet missing: run deploy/bootstrap.sh")
        cls.w = World()

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def node(self, script, *args):
        r = subprocess.run(["node", "-e", script] + list(args), capture_output=True, text=True,
                           timeout=30, env=dict(os.environ, NODE_PATH=os.path.join(self.node_dir, "node_modules")))
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_lora_packet_uplink_accepted_and_downlink_verified(self):
        dev = B_DEVICES[1]
        fcnt = 4242
        built = self.node("""
const lp = require('lora-packet');
const [devaddr, nwk, app, fcnt] = process.argv.slice(1);
const p = lp.fromFields({MType: 'Confirmed Data Up', DevAddr: Buffer.from(devaddr, 'hex'),
  FCtrl: {ADR: false, ACK: false, ADRACKReq: false}, FCnt: Number(fcnt), FPort: 3,
  payload: Buffer.from('hello from lora-packet')}, Buffer.from(app, 'hex'), Buffer.from(nwk, 'hex'));
console.log(JSON.stringify({phy: p.getPHYPayload().toString('base64')}));
""", dev["dev_addr"], dev["nwk_s_key"], dev["app_s_key"], str(fcnt))
        # a bare-socket GWMP gateway (not roamsim): PULL_DATA, then PUSH_DATA with the frame
        gw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        gw.settimeout(5)
        eui = bytes.fromhex("00800000b0000001")
        addr = ("127.0.0.1", self.w.a.gwmp_port)
        gw.sendto(b"\x02\x00\x01\x02" + eui, addr)
        gw.recvfrom(64)   # PULL_ACK
        tmst = 123456789
        rxpk = {"rxpk": [{"tmst": tmst, "chan": 0, "rfch": 0, "freq": 868.1, "stat": 1,
                          "modu": "LORA", "datr": "SF7BW125", "codr": "4/5", "rssi": -57,
                          "lsnr": 8.0, "size": len(base64.b64decode(built["phy"])),
                          "data": built["phy"]}]}
        gw.sendto(b"\x02\x00\x02\x00" + eui + json.dumps(rxpk).encode(), addr)
        txpk = None
        deadline = time.time() + 5
        while time.time() < deadline and txpk is None:
            pkt, _ = gw.recvfrom(4096)
            if pkt[3] == 0x03:   # PULL_RESP
                txpk = json.loads(pkt[4:])["txpk"]
                gw.sendto(b"\x02" + pkt[1:3] + b"\x05" + eui, addr)   # TX_ACK
        gw.close()
        self.assertIsNotNone(txpk, "no downlink came back")
        self.assertEqual(txpk["tmst"], tmst + 1000000)   # RX1
        time.sleep(0.3)
        got = [u for u in self.w.b.uplinks() if u["dev_eui"] == dev["dev_eui"] and u["fcnt"] == fcnt]
        self.assertEqual(len(got), 1)
        self.assertEqual(bytes.fromhex(got[0]["payload_hex"]), b"hello from lora-packet")
        checked = self.node("""
const lp = require('lora-packet');
const [phy, nwk, app] = process.argv.slice(1);
const p = lp.fromWire(Buffer.from(phy, 'base64'));
console.log(JSON.stringify({mtype: p.getMType(), ack: p.getFCtrlACK(),
  mic: lp.verifyMIC(p, Buffer.from(nwk, 'hex')), devaddr: p.DevAddr.toString('hex')}));
""", txpk["data"], dev["nwk_s_key"], dev["app_s_key"])
        self.assertTrue(checked["mic"])
        self.assertTrue(checked["ack"])
        self.assertEqual(checked["mtype"], "Unconfirmed Data Down")
        self.assertEqual(checked["devaddr"], dev["dev_addr"])


class ProductsWorldTest(RoamingTest):
    """The same roaming world with the forwarder behaving as Helium's packet router (upper-case
    hex; sync downlinks acknowledged with 202 "Downlink Accepted" and no XmitDataAns) and the home
    networks as ChirpStack (role-suffixed paths "//sns", "//fns", strict enums) — issue #11."""

    TTS_JOIN_EUI = "70b3d57ed0000c00"

    @classmethod
    def setUpClass(cls):
        # a The Things Stack Join Server (harness behaviour "tts-js": mTLS, exact Content-Type)
        from roamhub_harness import Member, answer
        from test_relay_tls import make_ca, make_cert
        cls.certs = tempfile.mkdtemp(prefix="roamhub-e2e-tts-")
        d = cls.certs
        make_ca(d, "jsca")
        make_cert(d, "js", "jsca", san=True)
        make_ca(d, "hubca")
        make_cert(d, "hubclient", "hubca")
        cls.tts = Member("tts-js", cls.TTS_JOIN_EUI.upper(), "unused-tts-key", behaviour="tts-js",
                         own_sender_id=False,
                         tls=(os.path.join(d, "js.pem"), os.path.join(d, "js.key"),
                              os.path.join(d, "hubca.pem")),
                         answer_fn=lambda r: answer(r, "UnknownDevEUI", "no such device"))
        extra = {"endpoints": [{"id": "tts-js", "join_eui": cls.TTS_JOIN_EUI, "url": cls.tts.url,
                                "protocol_version": "PROTOCOL_VERSION_1_0", "timeout_ms": 1500,
                                "upper_case_hex": True, "ca_file": os.path.join(d, "jsca.pem"),
                                "client_cert_file": os.path.join(d, "hubclient.pem"),
                                "client_key_file": os.path.join(d, "hubclient.key")}],
                 "join_routes": [{"join_eui": cls.TTS_JOIN_EUI + "/56", "join_server_id": "tts-js"}],
                 "policies": [{"forwarder_net_id": "000505", "uplink": dict(ALL_UP),
                               "downlink": dict(ALL_DOWN)}]}
        cls.w = World(with_c=True, dialects={"A": "helium", "B": "chirpstack", "C": "chirpstack"},
                      extra_records=extra)

    @classmethod
    def tearDownClass(cls):
        cls.w.close()
        cls.tts.stop()
        shutil.rmtree(cls.certs, ignore_errors=True)

    def test_join_req_to_tts_join_server(self):
        """B (ChirpStack) asks the TTS Join Server through the hub; mTLS and Content-Type hold."""
        req = {"ProtocolVersion": "1.0", "SenderID": "000505", "ReceiverID": self.TTS_JOIN_EUI,
               "TransactionID": 4242, "MessageType": "JoinReq", "MACVersion": "1.0.3",
               "PHYPayload": "00" + bytes.fromhex(self.TTS_JOIN_EUI)[::-1].hex()
                             + "0807060504030201" + "0300" + "09b97b32",
               "DevEUI": "0807060504030201", "DevAddr": "0a000001", "DLSettings": "00", "RxDelay": 1}
        st, ans, _ = self.w.hub.post(req, self.w.b.key)
        self.assertEqual(st, 200)
        self.assertEqual((ans["MessageType"], ans["Result"]["ResultCode"]), ("JoinAns", "UnknownDevEUI"))
        self.assertEqual(ans["TransactionID"], 4242)
        got = self.tts.get()
        self.assertEqual(got["_content_type"], "application/json")
        self.assertEqual(self.tts.violations, [])

    def test_every_peer_spoke_its_dialect(self):
        dev = abp(C_DEVICES[0])
        rc, s, ev = self.w.roamsim([dev], uplinks=1, confirmed_ratio=1.0)
        self.assertEqual(rc, 0, s.get("failures"))
        downs = [e for e in ev if e["event"] == "downlink"]
        self.assertEqual(len(downs), 1)  # C's ack went through Helium's 202 acknowledgement
        logs = self.w.hub.logs()
        self.assertNotIn("malformed", logs)
        self.assertNotIn("XmitFailed", logs)


if __name__ == "__main__":
    unittest.main()
