"""Integration tests for roamns (minimal LoRaWAN network server) and roamsim (gateway/device
simulator), real processes on 127.0.0.1 with ephemeral ports, no hub:

- local: roamsim's gateways and ABP/OTAA devices against roamns: OTAA joins accepted, uplinks
  decrypted into the output JSON lines, confirmed uplinks ACKed on time in RX1 with the right
  tmst, application downlinks (POST /downlink and the downlinks file) delivered, a replayed
  uplink and a corrupted MIC refused;
- home network: this test plays forwarder and hub: it captures roamsim's frames on a fake GWMP
  server, posts them to roamns as PRStartReq, checks the PRStartAns (join-accept with DLMetaData,
  data Success) and the XmitDataReq roamns sends to the (fake) hub for the ACK, and hands the
  downlinks back to roamsim, which checks timing and crypto;
- forwarder: a fake gateway socket sends frames roamns does not serve; the fake hub receives the
  PRStartReq with tokens, and the PRStartAns / XmitDataReq it sends back come out as PULL_RESP
  at the uplink's tmst + RXDelay1;
- async hub mode: answers acknowledged with an empty 200 and POSTed to the hub.
"""
import base64
import http.client
import json
import os
import queue
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roamhub_harness import Daemon, Member, answer, next_txid  # noqa: E402

BUILD = os.environ.get("ROAMHUB_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
ROAMNS = os.path.join(BUILD, "tools", "roamns")
ROAMSIM = os.path.join(BUILD, "tools", "roamsim")

ABP1 = {"name": "abp1", "dev_eui": "0101010101010101", "dev_addr": "26000001",
        "nwk_s_key": "000102030405060708090a0b0c0d0e0f", "app_s_key": "0f0e0d0c0b0a09080706050403020100"}
ABP2 = {"name": "abp2", "dev_eui": "0101010101010102", "dev_addr": "26000002",
        "nwk_s_key": "101112131415161718191a1b1c1d1e1f", "app_s_key": "1f1e1d1c1b1a19181716151413121110"}
OTAA1 = {"name": "otaa1", "dev_eui": "0202020202020201", "join_eui": "70b3d57ed0000001",
         "app_key": "00112233445566778899aabbccddeeff"}
OTAA2 = {"name": "otaa2", "dev_eui": "0202020202020202", "join_eui": "70b3d57ed0000001",
         "app_key": "ffeeddccbbaa99887766554433221100"}


def http_req(port, method, path, body=None, headers=None, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = {"_raw": raw.decode(errors="replace")}
    return r.status, parsed


class RoamNS:
    """A roamns process with its own directory, config, output file and ports file."""

    def __init__(self, cfg, name="roamns"):
        self.dir = tempfile.mkdtemp(prefix="roamns-it-")
        self.cfg = dict(cfg)
        self.cfg.setdefault("gwmp", {"address": "127.0.0.1", "port": 0})
        self.cfg.setdefault("ts002", {"address": "127.0.0.1", "port": 0})
        self.cfg.setdefault("output", os.path.join(self.dir, "uplinks.jsonl"))
        self.cfg.setdefault("log_level", "debug")
        self.output = self.cfg["output"]
        self.cfg_path = os.path.join(self.dir, "roamns.json")
        with open(self.cfg_path, "w") as f:
            json.dump(self.cfg, f)
        ports = os.path.join(self.dir, "ports.json")
        self.log_path = os.path.join(self.dir, name + ".log")
        self.daemon = Daemon(name, [ROAMNS, "-c", self.cfg_path, "--ports-file", ports], self.log_path)
        self.proc = self.daemon.proc
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.daemon.stop()   # raises with the exit status and the log
            if os.path.exists(ports):
                with open(ports) as f:
                    p = json.load(f)
                self.gwmp, self.ts002 = p["gwmp"], p["ts002"]
                return
            time.sleep(0.02)
        self.daemon.stop(check=False)
        raise RuntimeError("roamns did not start:\n" + self.logs())

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def lines(self):
        if not os.path.exists(self.output):
            return []
        with open(self.output) as f:
            return [json.loads(l) for l in f if l.strip()]

    def stats(self):
        st, body = http_req(self.ts002, "GET", "/stats")
        assert st == 200, st
        return body

    def stop(self):
        """SIGTERM and wait; raises DaemonExitError unless roamns exited cleanly (see Daemon.stop)."""
        return self.daemon.stop()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_sim(args, timeout=40):
    d = tempfile.mkdtemp(prefix="roamsim-it-")
    js, log = os.path.join(d, "summary.json"), os.path.join(d, "events.jsonl")
    p = subprocess.run([ROAMSIM, "--json", js, "--log", log] + args, capture_output=True,
                       text=True, timeout=timeout)
    summary, events = None, []
    if os.path.exists(js):
        with open(js) as f:
            summary = json.load(f)
    if os.path.exists(log):
        with open(log) as f:
            events = [json.loads(l) for l in f]
    shutil.rmtree(d, ignore_errors=True)
    return p, summary, events


def fake_hub(answer_fn):
    """The hub as roamns sees it: the harness's scripted TS002 peer, recording every POST (with
    its Authorization header and path), answering each message with answer_fn(msg) (None = an
    empty 200), SenderID as answer_fn wrote it."""
    return Member("hub", None, None, answer_fn=answer_fn, answer_all=True, own_sender_id=False)


# ---------------------------------------------------------------- GWMP in Python

def gwmp(ident, token, eui=None, payload=b""):
    h = struct.pack(">BHB", 2, token, ident)
    if eui is not None:
        h += struct.pack(">Q", eui)
    return h + payload


def rxpk(phy, tmst, freq=868.1, datr="SF7BW125"):
    return {"tmst": tmst, "chan": 0, "rfch": 0, "freq": freq, "stat": 1, "modu": "LORA",
            "datr": datr, "codr": "4/5", "rssi": -57, "lsnr": 8.25, "size": len(phy),
            "data": base64.b64encode(phy).decode()}


class FakeGateway:
    """A GWMP gateway socket in Python: sends PULL_DATA / PUSH_DATA, collects PULL_RESP."""

    def __init__(self, port, eui=0x00800000A00000FF):
        self.eui = eui
        self.addr = ("127.0.0.1", port)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(3)
        self.token = 100
        self.pull()

    def _send(self, ident, payload=b""):
        self.token += 1
        self.s.sendto(gwmp(ident, self.token, self.eui, payload), self.addr)
        return self.token

    def pull(self):
        t = self._send(2)
        while True:
            data, _ = self.s.recvfrom(65535)
            if data[3] == 4 and struct.unpack(">H", data[1:3])[0] == t:
                return

    def push(self, phy, tmst, **kw):
        t = self._send(0, json.dumps({"rxpk": [rxpk(phy, tmst, **kw)]}).encode())
        while True:
            data, _ = self.s.recvfrom(65535)
            if data[3] == 1 and struct.unpack(">H", data[1:3])[0] == t:
                return

    def pull_resp(self, timeout=3.0):
        """The next PULL_RESP's txpk (a TX_ACK is sent back)."""
        self.s.settimeout(timeout)
        while True:
            data, _ = self.s.recvfrom(65535)
            if data[0] == 2 and data[3] == 3:
                token = struct.unpack(">H", data[1:3])[0]
                self.s.sendto(gwmp(5, token, self.eui, b'{"txpk_ack":{"error":"NONE"}}'), self.addr)
                return json.loads(data[4:])["txpk"]

    def expect_nothing(self, wait=0.4):
        self.s.settimeout(wait)
        try:
            data, _ = self.s.recvfrom(65535)
        except socket.timeout:
            return
        raise AssertionError("unexpected GWMP packet %r" % data[:4])

    def close(self):
        self.s.close()


class FakeNS:
    """A GWMP server in Python (the test plays forwarding network): records every rxpk with the
    gateway's address, and can send PULL_RESP to a gateway."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.port = self.s.getsockname()[1]
        self.pull_addr = {}
        self.rx = queue.Queue()
        self.tx_acks = queue.Queue()
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.s.settimeout(0.2)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                data, addr = self.s.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 4:
                continue
            token, ident = struct.unpack(">H", data[1:3])[0], data[3]
            if ident == 2:
                eui = struct.unpack(">Q", data[4:12])[0]
                self.pull_addr[eui] = addr
                self.s.sendto(struct.pack(">BHB", 2, token, 4), addr)
            elif ident == 0:
                eui = struct.unpack(">Q", data[4:12])[0]
                self.s.sendto(struct.pack(">BHB", 2, token, 1), addr)
                for r in json.loads(data[12:]).get("rxpk", []):
                    self.rx.put((eui, r))
            elif ident == 5:
                self.tx_acks.put(json.loads(data[12:]) if len(data) > 12 else {})

    def send_txpk(self, eui, txpk):
        self.s.sendto(struct.pack(">BHB", 2, 7, 3) + json.dumps({"txpk": txpk}).encode(),
                      self.pull_addr[eui])

    def close(self):
        self.stop_ev.set()
        self.t.join()
        self.s.close()


def datr_to_dr(datr):
    return {"SF12BW125": 0, "SF11BW125": 1, "SF10BW125": 2, "SF9BW125": 3, "SF8BW125": 4,
            "SF7BW125": 5}[datr]


def dr_to_datr(dr):
    return "SF%dBW125" % (12 - dr)


class TestLocal(unittest.TestCase):
    """roamns alone with roamsim's gateways and devices."""

    def test_local_network(self):
        d = tempfile.mkdtemp(prefix="roamns-dl-")
        dl_file = os.path.join(d, "downlinks.jsonl")
        with open(dl_file, "w") as f:
            f.write(json.dumps({"dev_eui": ABP2["dev_eui"], "fport": 12, "payload_hex": "c0ffee",
                                "confirmed": False}) + "\n")
        ns = RoamNS({"net_id": "000013", "devices": [ABP1, ABP2, OTAA1, OTAA2],
                     "generate": {"count": 4, "activation": "otaa", "dev_eui_start": "0300000000000000",
                                  "join_eui": "70b3d57ed0000002", "seed": "it"},
                     "downlinks_file": dl_file})
        try:
            st, body = http_req(ns.ts002, "POST", "/downlink",
                                {"dev_eui": ABP1["dev_eui"], "fport": 42, "payload_hex": "0102030405"})
            self.assertEqual(st, 200, body)
            # Bad requests name the field; unknown devices are 404.
            st, body = http_req(ns.ts002, "POST", "/downlink", {"dev_eui": ABP1["dev_eui"], "fport": 0})
            self.assertEqual(st, 400)
            self.assertIn("fport", body["error"])
            st, body = http_req(ns.ts002, "POST", "/downlink", {"dev_eui": "0909090909090909", "fport": 1})
            self.assertEqual(st, 404)

            p, summary, events = run_sim(["--ns", "127.0.0.1:%d" % ns.gwmp, "--devices-from-ns",
                                          ns.cfg_path, "--gateways", "2", "--uplinks", "3",
                                          "--interval", "250", "--confirmed-ratio", "0.5",
                                          "--expect-downlinks", "2", "--lat", "52.1", "--lon", "4.3"])
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr + ns.logs())
            self.assertEqual(summary["joins_accepted"], 6)
            self.assertEqual(summary["uplinks_sent"], 8 * 3)
            self.assertGreater(summary["confirmed_sent"], 0)
            self.assertEqual(summary["acks"], summary["confirmed_sent"])
            self.assertEqual(summary["downlinks"]["late"], 0)
            self.assertEqual(summary["downlinks"]["wrong"], 0)
            self.assertEqual(summary["downlinks"]["rx1"], summary["downlinks"]["on_time"])
            self.assertGreater(summary["rtt_ms"]["count"], 0)
            apps = {(a["dev_eui"], a["fport"], a["payload_hex"]) for a in summary["app_downlinks"]}
            self.assertIn((ABP1["dev_eui"], 42, "0102030405"), apps)
            self.assertIn((ABP2["dev_eui"], 12, "c0ffee"), apps)

            # Every downlink is for RX1 at exactly uplink tmst + 1 s (data) / + 5 s (join-accept)
            # at the gateway that relayed it; roamsim checked, the event log shows it.
            last = {}
            for e in events:
                if e["event"] in ("uplink", "join_request"):
                    last[e["dev_eui"]] = e
                elif e["event"] in ("downlink", "join_accept"):
                    up = last[e["dev_eui"]]
                    delay = 5000000 if e["event"] == "join_accept" else 1000000
                    self.assertEqual(e["verdict"], "on_time")
                    self.assertEqual(e["window"], 1)
                    self.assertEqual(e["tmst"], (up["tmst"][e["gateway"]] + delay) & 0xFFFFFFFF)
                    self.assertGreater(e["lead_ms"], 0)

            # Every uplink is in the output with its decrypted payload and both gateways.
            out = ns.lines()
            ups = [e for e in events if e["event"] == "uplink"]
            self.assertEqual(len(out), len(ups))
            got = {(l["dev_eui"], l["fcnt"]): l for l in out}
            for u in ups:
                l = got[(u["dev_eui"], u["fcnt"])]
                self.assertEqual(l["payload_hex"], u["payload_hex"])
                self.assertEqual(l["confirmed"], u["confirmed"])
                self.assertEqual(l["fport"], 1)
                self.assertEqual(l["via"], "local")
                self.assertIsNone(l["forwarder_net_id"])
                self.assertEqual(len(l["gateways"]), 2)
                self.assertAlmostEqual(l["gateways"][0]["lat"], 52.1, places=3)
            otaa_addrs = {l["dev_addr"] for l in out if l["dev_eui"] not in (ABP1["dev_eui"], ABP2["dev_eui"])}
            self.assertTrue(all(a.startswith(("26", "27")) for a in otaa_addrs), otaa_addrs)

            # Replay: the first uplink again (its deduplication hold is over) is refused; so is a
            # corrupted MIC. Nothing new reaches the output.
            first = ups[0]
            time.sleep(max(0.0, 2.2 - summary["elapsed_s"]))  # past the deduplication hold
            before = ns.stats()
            gw = FakeGateway(ns.gwmp)
            gw.push(bytes.fromhex(first["phy_hex"]), 123456)
            bad = bytearray(bytes.fromhex(ups[-1]["phy_hex"]))
            bad[-1] ^= 0xFF
            gw.push(bytes(bad), 123457)
            deadline = time.time() + 5.0  # the loaded CI machine: poll, do not guess a delay
            after = ns.stats()
            while (after["replays"] == before["replays"] or
                   after["mic_failures"] == before["mic_failures"]) and time.time() < deadline:
                time.sleep(0.05)
                after = ns.stats()
            time.sleep(0.2)  # anything more would show in the counters and the output below
            after = ns.stats()
            self.assertEqual(after["replays"], before["replays"] + 1)
            self.assertEqual(after["mic_failures"], before["mic_failures"] + 1)
            self.assertEqual(len(ns.lines()), len(out))
            gw.expect_nothing(0.2)
            gw.close()
            self.assertEqual(after["joins_accepted"], 6)
            self.assertEqual(after["tx_ack_errors"], 0)
        finally:
            ns.cleanup()
            shutil.rmtree(d, ignore_errors=True)
        self.assertEqual(ns.proc.returncode, 0)


    def test_rx2_when_rx1_is_too_close(self):
        """With a 200 ms deduplication window and a 900 ms margin, the RX1 of a data uplink can no
        longer be reached: the ACKs go in RX2 (tmst + 2 s, 869.525 MHz, DR0); the join-accept's
        RX1 (+ 5 s) still can."""
        ns = RoamNS({"net_id": "000013", "devices": [ABP1, OTAA1], "dedup_window_ms": 200,
                     "downlink_margin_ms": 900})
        try:
            p, summary, events = run_sim(["--ns", "127.0.0.1:%d" % ns.gwmp, "--devices-from-ns",
                                          ns.cfg_path, "--uplinks", "2", "--interval", "300",
                                          "--confirmed-ratio", "1"])
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr + ns.logs())
            self.assertEqual(summary["joins_accepted"], 1)
            self.assertEqual(summary["acks"], 4)
            self.assertEqual(summary["downlinks"]["rx2"], 4)
            self.assertEqual(summary["downlinks"]["rx1"], 1)
            for e in events:
                if e["event"] == "downlink":
                    self.assertEqual((e["window"], e["verdict"]), (2, "on_time"))
                elif e["event"] == "join_accept":
                    self.assertEqual((e["window"], e["verdict"]), (1, "on_time"))
        finally:
            ns.cleanup()

    def test_no_network_server(self):
        """Nothing answers: roamsim reports the failed join and exits 1."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        d = tempfile.mkdtemp(prefix="roamsim-it-")
        devfile = os.path.join(d, "devices.json")
        with open(devfile, "w") as f:
            json.dump([OTAA1], f)
        try:
            p, summary, _ = run_sim(["--ns", "127.0.0.1:%d" % s.getsockname()[1], "--devices", devfile,
                                     "--join-attempts", "1", "--duration", "15"])
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertEqual(summary["joins_accepted"], 0)
            self.assertEqual(summary["join_failures"], 1)
            self.assertFalse(summary["ok"])
            self.assertTrue(any("joins" in f for f in summary["failures"]), summary["failures"])
        finally:
            s.close()
            shutil.rmtree(d, ignore_errors=True)


class TestHome(unittest.TestCase):
    """roamns as home network: PRStartReq in, PRStartAns out, XmitDataReq to the hub."""

    def test_home_network(self):
        hub = fake_hub(lambda m: answer(m, "Success") if m["MessageType"] == "XmitDataReq" else None)
        home_abp = dict(ABP1, dev_addr="0a000010", dev_eui="0a0a0a0a0a0a0a01")
        home_otaa = dict(OTAA1, dev_eui="0a0a0a0a0a0a0a02")
        ns = RoamNS({"net_id": "000505", "devices": [home_abp, home_otaa],
                     "hub": {"url": hub.url, "api_key": "secret-key", "timeout_ms": 2000}})
        fake = FakeNS()
        devfile = os.path.join(ns.dir, "devices.json")
        with open(devfile, "w") as f:
            json.dump([home_abp, home_otaa], f)
        sim = subprocess.Popen([ROAMSIM, "--ns", "127.0.0.1:%d" % fake.port, "--devices", devfile,
                                "--uplinks", "2", "--interval", "400", "--confirmed-ratio", "1",
                                "--duration", "20", "--expect-joins", "1", "--expect-acks", "4"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            handled = {"join": 0, "data": 0}
            deadline = time.time() + 20
            while handled["data"] < 4 and time.time() < deadline:
                try:
                    eui, r = fake.rx.get(timeout=0.5)
                except queue.Empty:
                    continue
                phy = base64.b64decode(r["data"])
                ul_token = "%016x%08x" % (eui, r["tmst"])
                req = {"ProtocolVersion": "1.0", "SenderID": "000013", "ReceiverID": "000505",
                       "TransactionID": next_txid(), "MessageType": "PRStartReq", "PHYPayload": phy.hex(),
                       "ULMetaData": {"DataRate": datr_to_dr(r["datr"]), "ULFreq": r["freq"],
                                      "RecvTime": "2026-11-21T12:00:00.123Z", "RFRegion": "EU868",
                                      "GWCnt": 1, "FNSULToken": "f" + ul_token,
                                      "GWInfo": [{"ID": "%08x" % (eui & 0xFFFFFFFF), "RFRegion": "EU868",
                                                  "RSSI": r["rssi"], "SNR": r["lsnr"], "Lat": 48.85,
                                                  "Lon": 2.35, "ULToken": ul_token, "DLAllowed": True}]}}
                st, ans = http_req(ns.ts002, "POST", "/sns", req)
                self.assertEqual(st, 200)
                self.assertEqual(ans["MessageType"], "PRStartAns")
                self.assertEqual(ans["TransactionID"], req["TransactionID"])
                self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
                if phy[0] >> 5 == 0:  # join-request
                    handled["join"] += 1
                    self.assertEqual(ans["DevEUI"], home_otaa["dev_eui"])
                    self.assertTrue(ans["DevAddr"].startswith("0a"), ans["DevAddr"])  # NetID 000505 block
                    self.assertEqual(ans.get("Lifetime", 0), 0)
                    dl = ans["DLMetaData"]
                    self.assertEqual(dl["RXDelay1"], 5)
                    self.assertEqual(dl["ClassMode"], "A")
                    self.assertAlmostEqual(dl["DLFreq1"], r["freq"])
                    self.assertEqual(dl["DataRate1"], datr_to_dr(r["datr"]))
                    self.assertAlmostEqual(dl["DLFreq2"], 869.525)
                    self.assertEqual(dl["DataRate2"], 0)
                    self.assertEqual(dl["FNSULToken"], "f" + ul_token)
                    self.assertEqual(dl["GWInfo"], [{"ULToken": ul_token}])
                    fake.send_txpk(eui, {"imme": False, "tmst": (r["tmst"] + 5000000) & 0xFFFFFFFF,
                                         "freq": dl["DLFreq1"], "rfch": 0, "powe": 14, "modu": "LORA",
                                         "datr": dr_to_datr(dl["DataRate1"]), "codr": "4/5", "ipol": True,
                                         "size": len(ans["PHYPayload"]) // 2,
                                         "data": base64.b64encode(bytes.fromhex(ans["PHYPayload"])).decode()})
                    continue
                handled["data"] += 1
                self.assertIn(ans["DevEUI"], (home_abp["dev_eui"], home_otaa["dev_eui"]))
                self.assertIn("FCntUp", ans)
                self.assertNotIn("Lifetime", ans)
                # Confirmed: the ACK comes to the hub as XmitDataReq for the forwarder.
                x = hub.get(mtype="XmitDataReq")
                self.assertEqual(x["_authorization"], "Bearer secret-key")
                self.assertEqual(x["SenderID"], "000505")
                self.assertEqual(x["ReceiverID"], "000013")
                dl = x["DLMetaData"]
                self.assertEqual(dl["RXDelay1"], 1)
                self.assertEqual(dl["FNSULToken"], "f" + ul_token)
                self.assertEqual(dl["GWInfo"], [{"ULToken": ul_token}])
                self.assertEqual(dl["DevEUI"], ans["DevEUI"])
                fake.send_txpk(eui, {"imme": False, "tmst": (r["tmst"] + 1000000) & 0xFFFFFFFF,
                                     "freq": dl["DLFreq1"], "rfch": 0, "powe": 14, "modu": "LORA",
                                     "datr": dr_to_datr(dl["DataRate1"]), "codr": "4/5", "ipol": True,
                                     "size": len(x["PHYPayload"]) // 2,
                                     "data": base64.b64encode(bytes.fromhex(x["PHYPayload"])).decode()})
            out, _ = sim.communicate(timeout=25)
            self.assertEqual(sim.returncode, 0, out + ns.logs())
            self.assertEqual(handled, {"join": 1, "data": 4})
            lines = ns.lines()
            self.assertEqual(len(lines), 4)
            for l in lines:
                self.assertEqual(l["via"], "roaming")
                self.assertEqual(l["forwarder_net_id"], "000013")
                self.assertTrue(l["confirmed"])
                self.assertAlmostEqual(l["gateways"][0]["lat"], 48.85)

            # Refusals: corrupted MIC, unknown DevAddr, unreadable request.
            up = bytes.fromhex("40" + "1000000a" + "00" + "0100" + "01" + "aabb" + "00000000")
            base = {"ProtocolVersion": "1.0", "SenderID": "000013", "ReceiverID": "000505",
                    "MessageType": "PRStartReq",
                    "ULMetaData": {"DataRate": 5, "ULFreq": 868.1, "RFRegion": "EU868", "GWCnt": 0,
                                   "RecvTime": "2026-11-21T12:00:00Z"}}
            st, ans = http_req(ns.ts002, "POST", "/", dict(base, TransactionID=next_txid(), PHYPayload=up.hex()))
            self.assertEqual(ans["Result"]["ResultCode"], "MICFailed")
            other = up[:1] + bytes.fromhex("9900000a") + up[5:]
            st, ans = http_req(ns.ts002, "POST", "/", dict(base, TransactionID=next_txid(), PHYPayload=other.hex()))
            self.assertEqual(ans["Result"]["ResultCode"], "UnknownDevAddr")
            st, ans = http_req(ns.ts002, "POST", "/", dict(base, TransactionID=next_txid(), PHYPayload="zz"))
            self.assertEqual(st, 200)
            self.assertEqual(ans["Result"]["ResultCode"], "MalformedRequest")
            st, ans = http_req(ns.ts002, "POST", "/", b"not json")
            self.assertEqual(st, 400)
        finally:
            if sim.poll() is None:
                sim.kill()
                sim.wait()
            fake.close()
            ns.cleanup()
            hub.stop()

    def test_async_hub(self):
        """Async hub: requests from the hub get an empty 200, the answer is POSTed to the hub."""
        hub = fake_hub(None)
        ns = RoamNS({"net_id": "000505", "devices": [dict(ABP1, dev_addr="0a000010")],
                     "hub": {"url": hub.url, "async": True}})
        try:
            req = {"ProtocolVersion": "1.0", "SenderID": "000013", "ReceiverID": "000505",
                   "TransactionID": next_txid(), "MessageType": "PRStartReq",
                   "PHYPayload": "401000000a000100" + "01aabb00000000",
                   "ULMetaData": {"DataRate": 5, "ULFreq": 868.1, "RFRegion": "EU868", "GWCnt": 0,
                                  "RecvTime": "2026-11-21T12:00:00Z"}}
            st, body = http_req(ns.ts002, "POST", "/sns", req)
            self.assertEqual(st, 200)
            self.assertIsNone(body)
            a = hub.get(mtype="PRStartAns")
            self.assertEqual(a["TransactionID"], req["TransactionID"])
            self.assertEqual(a["Result"]["ResultCode"], "MICFailed")
            self.assertEqual(a["ReceiverID"], "000013")
        finally:
            ns.cleanup()
            hub.stop()


class TestForwarder(unittest.TestCase):
    """roamns as forwarder: PRStartReq to the hub, downlinks back to its gateway."""

    def test_forwarder(self):
        join_accept = "20" + "11" * 16

        def hub_answer(m):
            if m["MessageType"] != "PRStartReq":
                return None
            ul = m["ULMetaData"]
            if "DevEUI" not in ul:  # data: stateless Success
                return answer(m, "Success", DevEUI="0a0a0a0a0a0a0a01", FCntUp=1)
            return answer(m, "Success", PHYPayload=join_accept, DevEUI=ul["DevEUI"], DevAddr="0a000077",
                          Lifetime=0,
                          DLMetaData={"ClassMode": "A", "DLFreq1": ul["ULFreq"], "DataRate1": ul["DataRate"],
                                      "DLFreq2": 869.525, "DataRate2": 0, "RXDelay1": 5,
                                      "FNSULToken": ul["FNSULToken"],
                                      "GWInfo": [{"ULToken": g["ULToken"]} for g in ul["GWInfo"]]})

        hub = fake_hub(hub_answer)
        ns = RoamNS({"net_id": "000013", "devices": [ABP1],
                     "hub": {"url": hub.url, "api_key": "fwd-key", "receiver_id": "000000"}})
        gw = FakeGateway(ns.gwmp, eui=0x0016C001FF10A235)
        try:
            # A data uplink for DevAddr 0a000010 (NetID 000505's block): not ours -> the hub.
            data_up = bytes.fromhex("80" + "1000000a" + "00" + "0700" + "01" + "aabbcc" + "01020304")
            tmst = 0xFFFFF000  # the downlink tmst wraps around 2^32
            gw.push(data_up, tmst, freq=868.3, datr="SF9BW125")
            t_up = time.time()
            req = hub.get(mtype="PRStartReq")
            self.assertEqual(req["_authorization"], "Bearer fwd-key")
            self.assertEqual(req["SenderID"], "000013")
            self.assertEqual(req["ReceiverID"], "000000")  # hub.receiver_id
            self.assertEqual(req["PHYPayload"], data_up.hex())
            ul = req["ULMetaData"]
            self.assertEqual(ul["DataRate"], 3)
            self.assertAlmostEqual(ul["ULFreq"], 868.3)
            self.assertEqual(ul["RFRegion"], "EU868")
            self.assertEqual(ul["GWCnt"], 1)
            self.assertEqual(ul["DevAddr"], "0a000010")
            self.assertTrue(ul["RecvTime"].endswith("Z"))
            g = ul["GWInfo"][0]
            self.assertEqual(g["ID"], "ff10a235")
            self.assertEqual(g["RSSI"], -57)
            self.assertAlmostEqual(g["SNR"], 8.25)
            self.assertTrue(g["DLAllowed"])
            self.assertEqual(g["ULToken"], ul["FNSULToken"])
            gw.expect_nothing(0.2)  # a Success without PHYPayload sends nothing

            # The home network's downlink comes back as XmitDataReq: PULL_RESP at tmst + 1 s.
            dl_phy = "600000000a8005000a54972baa8b983cd1"
            x = {"ProtocolVersion": "1.0", "SenderID": "000505", "ReceiverID": "000013",
                 "TransactionID": next_txid(), "MessageType": "XmitDataReq", "PHYPayload": dl_phy,
                 "DLMetaData": {"ClassMode": "A", "DLFreq1": 868.3, "DataRate1": 3, "DLFreq2": 869.525,
                                "DataRate2": 0, "RXDelay1": 1, "FNSULToken": ul["FNSULToken"],
                                "GWInfo": [{"ULToken": g["ULToken"]}]}}
            st, ans = http_req(ns.ts002, "POST", "/fns", x)
            self.assertEqual(st, 200)
            self.assertEqual(ans["MessageType"], "XmitDataAns")
            self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
            self.assertAlmostEqual(ans["DLFreq1"], 868.3)
            t = gw.pull_resp()
            self.assertEqual(t["tmst"], (tmst + 1000000) & 0xFFFFFFFF)
            self.assertAlmostEqual(t["freq"], 868.3)
            self.assertEqual(t["datr"], "SF9BW125")
            self.assertIs(t["ipol"], True)
            self.assertIs(t["imme"], False)
            self.assertEqual(t["rfch"], 0)
            self.assertEqual(t["modu"], "LORA")
            self.assertEqual(t["size"], len(dl_phy) // 2)
            self.assertEqual(base64.b64decode(t["data"]).hex(), dl_phy)

            # Only a GWInfo ULToken (no FNSULToken) works too.
            x2 = json.loads(json.dumps(x))
            x2["TransactionID"] = next_txid()
            del x2["DLMetaData"]["FNSULToken"]
            st, ans = http_req(ns.ts002, "POST", "/fns", x2)
            self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)
            gw.pull_resp()

            # A token of someone else: XmitFailed, nothing sent.
            x3 = json.loads(json.dumps(x))
            x3["TransactionID"] = next_txid()
            x3["DLMetaData"]["FNSULToken"] = "0a0b0c0d"
            x3["DLMetaData"]["GWInfo"] = [{"ULToken": "0a0b0c0d"}]
            st, ans = http_req(ns.ts002, "POST", "/fns", x3)
            self.assertEqual(ans["Result"]["ResultCode"], "XmitFailed")
            gw.expect_nothing(0.2)

            # A join-request for a JoinEUI not served here: the hub's PRStartAns carries the
            # join-accept, sent at tmst + 5 s.
            jreq = bytes.fromhex("00" + "0100000000000099" + "0200000000000099" + "3412" + "deadbeef")
            gw.push(jreq, 5000)
            req = hub.get(mtype="PRStartReq")
            self.assertEqual(req["ReceiverID"], "000000")
            self.assertEqual(req["ULMetaData"]["DevEUI"], "9900000000000002")
            t = gw.pull_resp()
            self.assertEqual(t["tmst"], 5000 + 5000000)
            self.assertAlmostEqual(t["freq"], 868.1)
            self.assertEqual(t["datr"], "SF7BW125")
            self.assertEqual(base64.b64decode(t["data"]).hex(), join_accept)

            # Too late: RX2 of the first uplink opened more than 2 s ago.
            time.sleep(max(0, 2.1 - (time.time() - t_up)))
            x4 = json.loads(json.dumps(x))
            x4["TransactionID"] = next_txid()
            st, ans = http_req(ns.ts002, "POST", "/fns", x4)
            self.assertEqual(ans["Result"]["ResultCode"], "XmitFailed")
            self.assertIn("too late", ans["Result"].get("Description", ""))
            s = ns.stats()
            self.assertEqual(s["roaming_forwarded"], 2)
            self.assertEqual(s["xmit_failed"], 2)
            self.assertEqual(s["downlinks_sent"], 3)
        finally:
            gw.close()
            ns.cleanup()
            hub.stop()
        self.assertEqual(ns.proc.returncode, 0)


if __name__ == "__main__":
    unittest.main()
