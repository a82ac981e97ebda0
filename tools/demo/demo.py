#!/usr/bin/env python3
"""roamhub demo: member networks roam through the hub, end to end, on this machine.

  - roamhubd on its embedded defaults (LMDB under ./var, loopback listeners 4270/4271), started
    in the demo's own directory (demo-out/), with one configuration line: the member networks
    run on this machine, so their loopback endpoints are allowed explicitly
    (relay.endpoint_allow_ranges; the hub refuses loopback and private addresses otherwise);
  - network A (NetID 000013, community) runs roamns with the gateways; it talks to the hub
    synchronously;
  - network B (NetID 000505, private) runs roamns with the devices' sessions; asynchronous;
  - everything is configured through the admin API with roamctl: the operator registers both
    networks and gives each an admin key; each member then configures its own endpoint, DevAddr
    block, join route and routing policy with its own key;
  - roamsim plays B's devices (OTAA and ABP, confirmed and unconfirmed) heard only by A's gateways;
  - networks C (NetID 000707) and D (NetID 000909) are The Things Stack-like members: each runs
    roamns in Packet Broker mode and connects to the hub's gRPC listener as a TTS Packet Broker
    Agent does (OAuth2 token from a data-plane API key, then Publish/Subscribe/Report); at the
    same time more roamsim runs play C's devices heard only by D's gateways, B's devices heard
    only by C's gateways and C's devices heard only by A's gateways (the hub bridges Packet
    Broker <-> TS002 both ways);
  - a live summary, then the hub's statistics, and a report in demo-out/REPORT.md.
It stops by itself in well under a minute.

Usage: tools/demo/demo.py [BUILD_DIR] [--out DIR] [--devices N] [--uplinks N]
"""
import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from free_port import free_port  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("build", nargs="?", default="build")
ap.add_argument("--out", default="demo-out")
ap.add_argument("--devices", type=int, default=16, help="generated devices of B, besides the 4 named ones")
ap.add_argument("--uplinks", type=int, default=4, help="uplinks per device")
args = ap.parse_args()

BUILD = os.path.abspath(args.build)
ROAMHUBD = os.path.join(BUILD, "broker", "roamhubd")
ROAMNS = os.path.join(BUILD, "tools", "roamns")
ROAMSIM = os.path.join(BUILD, "tools", "roamsim")
ROAMCTL = os.path.join(BUILD, "tools", "roamctl")
OUT = os.path.abspath(args.out)
HUB_TS002, HUB_ADMIN = 4270, 4271   # roamhubd's embedded defaults (docs/CONFIG.md)
HUB_GRPC = free_port()   # the hub's gRPC listener (h2c on loopback) for the Packet Broker members
T0 = time.time()
procs = []


def say(msg=""):
    print("[%5.1fs] %s" % (time.time() - T0, msg) if msg else "", flush=True)


def fail(msg):
    say("FAILED: " + msg)
    stop_all()
    sys.exit(1)


def port_busy(p):
    s = socket.socket()
    try:
        return s.connect_ex(("127.0.0.1", p)) == 0
    finally:
        s.close()


def start(name, cmd, cwd=OUT):
    log = open(os.path.join(OUT, name + ".log"), "ab")
    p = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    procs.append((name, p, log))
    return p


unclean = []   # daemons that did not exit with status 0 after SIGTERM: the demo fails


def stop_all():
    for name, p, log in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for name, p, log in reversed(procs):
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
        if p.returncode != 0:
            unclean.append("%s exited with status %s (see %s.log)" % (name, p.returncode, name))
    del procs[:]


def wait_for(cond, what, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what)


def roamctl(*cmd, key_file=None, key=None, input=None, quiet=False):
    env = dict(os.environ, ROAMCTL_URL="http://127.0.0.1:%d" % HUB_ADMIN)
    env.pop("ROAMCTL_CONFIG", None)
    if key_file:
        env["ROAMCTL_KEY_FILE"] = key_file
    if key:
        env["ROAMCTL_KEY"] = key
    r = subprocess.run([ROAMCTL] + list(cmd), env=env, input=input, capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        fail("roamctl %s: %s" % (" ".join(cmd), (r.stderr or r.stdout).strip()))
    if not quiet:
        print("      $ roamctl " + " ".join(c if len(c) < 60 else c[:57] + "..." for c in cmd))
    return r.stdout


def metrics():
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % HUB_ADMIN, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("roamhub_messages_total{"):
            labels, value = line.rsplit(" ", 1)
            outcome = labels.split('outcome="')[1].split('"')[0]
            cls = labels.split('class="')[1].split('"')[0]
            out[(cls, outcome)] = out.get((cls, outcome), 0) + int(float(value))
    return out


def gauge(name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % HUB_ADMIN, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def lines(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except OSError:
        return []


# ------------------------------------------------------------------------------------------------
for exe in (ROAMHUBD, ROAMNS, ROAMSIM, ROAMCTL):
    if not os.access(exe, os.X_OK):
        sys.exit("demo: %s is missing: build first (cmake -S . -B build && cmake --build build)" % exe)
for p in (HUB_TS002, HUB_ADMIN):
    if port_busy(p):
        sys.exit("demo: port %d on 127.0.0.1 is in use (roamhubd's default); stop what uses it" % p)
shutil.rmtree(OUT, ignore_errors=True)
os.makedirs(OUT)
signal.signal(signal.SIGINT, lambda *a: fail("interrupted"))

print("roamhub demo: gateway -> network A -> roamhub -> network B -> downlink -> gateway")
print("  output and logs in %s" % OUT)
print()
say("1. roamhubd on its embedded defaults (LMDB under %s/var, 127.0.0.1:%d TS002, :%d admin),"
    " loopback endpoints allowed, gRPC (Packet Broker API) on :%d" % (
        os.path.basename(OUT), HUB_TS002, HUB_ADMIN, HUB_GRPC))
with open(os.path.join(OUT, "roamhub.json"), "w") as f:
    json.dump({"relay": {"endpoint_allow_ranges": ["127.0.0.0/8"]},
               "grpc": {"address": "127.0.0.1", "port": HUB_GRPC}}, f)
hub = start("roamhubd", [ROAMHUBD, "-c", "roamhub.json"])
op_key = os.path.join(OUT, "var", "operator.key")
wait_for(lambda: os.path.exists(op_key) and port_busy(HUB_ADMIN), "roamhubd to listen")

# Each network's TS002 credential towards the hub (Bearer key; the hub stores only its hash).
ts002_key = {"A": "ts002-A-" + secrets.token_hex(16), "B": "ts002-B-" + secrets.token_hex(16)}
net = {"A": "000013", "B": "000505", "C": "000707", "D": "000909"}
block = {"A": "26000000/7", "B": "0A000000/7", "C": "0E000000/7", "D": "12000000/7"}
ports = {"A": free_port(), "B": free_port()}
NAMED = [
    {"name": "b-otaa-1", "dev_eui": "0505050505050511", "join_eui": "70b3d57ed0000505",
     "app_key": "00112233445566778899aabbccddeeff"},
    {"name": "b-otaa-2", "dev_eui": "0505050505050512", "join_eui": "70b3d57ed0000505",
     "app_key": "ffeeddccbbaa99887766554433221100"},
    {"name": "b-abp-1", "dev_eui": "0505050505050501", "dev_addr": "0a000101",
     "nwk_s_key": "000102030405060708090a0b0c0d0e0f", "app_s_key": "0f0e0d0c0b0a09080706050403020100"},
    {"name": "b-abp-2", "dev_eui": "0505050505050502", "dev_addr": "0a000102",
     "nwk_s_key": "101112131415161718191a1b1c1d1e1f", "app_s_key": "1f1e1d1c1b1a19181716151413121110"},
]
B_VIA_C = [   # B's devices that roam through C's gateways (Packet Broker forwarder -> TS002 home)
    {"name": "b-otaa-via-c", "dev_eui": "0505050505050521", "join_eui": "70b3d57ed0000505",
     "app_key": "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"},
    {"name": "b-abp-via-c", "dev_eui": "0505050505050503", "dev_addr": "0a000121",
     "nwk_s_key": "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf", "app_s_key": "bfbebdbcbbbab9b8b7b6b5b4b3b2b1b0"},
]
C_NAMED = [
    {"name": "c-otaa-1", "dev_eui": "0707070707070711", "join_eui": "70b3d57ed0000707",
     "app_key": "707172737475767778797a7b7c7d7e7f"},
    {"name": "c-abp-1", "dev_eui": "0707070707070701", "dev_addr": "0e000101",
     "nwk_s_key": "202122232425262728292a2b2c2d2e2f", "app_s_key": "2f2e2d2c2b2a29282726252423222120"},
]
C_VIA_A = [   # C's devices that roam through A's gateways (TS002 forwarder -> Packet Broker home)
    {"name": "c-otaa-via-a", "dev_eui": "0707070707070721", "join_eui": "70b3d57ed0000707",
     "app_key": "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"},
    {"name": "c-abp-via-a", "dev_eui": "0707070707070703", "dev_addr": "0e000121",
     "nwk_s_key": "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf", "app_s_key": "dfdedddcdbdad9d8d7d6d5d4d3d2d1d0"},
]
C_GENERATE = {"count": max(2, args.devices // 4), "activation": "otaa",
              "dev_eui_start": "0707070700000001", "join_eui": "70b3d57ed0000707",
              "seed": "roamhub-demo-c"}
GENERATE = {"count": args.devices, "activation": "otaa", "dev_eui_start": "0505050500000001",
            "join_eui": "70b3d57ed0000505", "seed": "roamhub-demo"}


def write_ns_config(n, roaming, devices=(), generate=None, join_eui=None, http_port=0):
    """roamns-<n>.json: network n with `roaming` ({"hub": ...} or {"packet_broker": ...})."""
    cfg = {"net_id": net[n], "dev_addr_blocks": [block[n]],
           "gwmp": {"address": "127.0.0.1", "port": 0},
           "ts002": {"address": "127.0.0.1", "port": http_port},
           "devices": list(devices), "output": "uplinks-%s.jsonl" % n, "dedup_window_ms": 50}
    cfg.update(roaming)
    if generate:
        cfg["generate"] = generate
    if join_eui:
        cfg["join_euis"] = [join_eui + "/64"]
    with open(os.path.join(OUT, "roamns-%s.json" % n), "w") as f:
        json.dump(cfg, f, indent=1)


for n in ("A", "B"):
    write_ns_config(n, {"hub": {"url": "http://127.0.0.1:%d/" % HUB_TS002, "api_key": ts002_key[n],
                                "async": n == "B", "timeout_ms": 2500}},
                    devices=NAMED + B_VIA_C if n == "B" else (),
                    generate=GENERATE if n == "B" else None,
                    join_eui="70b3d57ed0000505" if n == "B" else None, http_port=ports[n])

say("2. network A (NetID 000013, sync) and network B (NetID 000505, async) start their roamns")
for n in ("A", "B"):
    start("roamns-" + n, [ROAMNS, "-c", "roamns-%s.json" % n, "--ports-file", "ports-%s.json" % n])
wait_for(lambda: all(os.path.exists(os.path.join(OUT, "ports-%s.json" % n)) for n in "AB"),
         "roamns to start")
with open(os.path.join(OUT, "ports-A.json")) as f:
    gwmp_a = json.load(f)["gwmp"]

say("3. the operator registers both networks and gives each an admin key (roamctl)")
opk = dict(key_file=op_key)
member_key = {}
for n, name in (("A", "Network A (community)"), ("B", "Network B (private)")):
    roamctl("networks", "create", json.dumps({"net_id": net[n], "name": name, "listed": True}), **opk)
    roamctl("members", "create", json.dumps({
        "id": "net" + n, "net_ids": [net[n]],
        "api_key_hashes": [hashlib.sha256(ts002_key[n].encode()).hexdigest()]}), **opk)
    out = roamctl("--json", "keys", "create", "--net-id", net[n], "--rights", "admin",
                  "--name", "network %s admin" % n, **opk)
    doc = json.loads(out)
    member_key[n] = doc["api_key"]   # "id:secret", shown once

pb_key = {}
for n, name in (("C", "Network C (The Things Stack-like)"), ("D", "Network D (The Things Stack-like)")):
    roamctl("networks", "create", json.dumps({"net_id": net[n], "name": name, "listed": True}), **opk)
    # a member record without TS002 credentials: traffic the hub bridges to TS002 has a sender
    roamctl("members", "create", json.dumps({"id": "net" + n, "net_ids": [net[n]]}), **opk)
    doc = json.loads(roamctl("--json", "keys", "create", "--net-id", net[n], "--rights", "admin",
                             "--name", "network %s admin" % n, **opk))
    member_key[n] = doc["api_key"]
    # the agent's oauth2.client-id / client-secret: a key with the data-plane right
    doc = json.loads(roamctl("--json", "keys", "create", "--net-id", net[n], "--rights", "data_plane",
                             "--name", "network %s packet broker agent" % n, **opk))
    pb_key[n] = doc["api_key"]

say("4. each member configures itself with its own key (self-service)")
bk = dict(key=member_key["B"])
roamctl("endpoints", "create", json.dumps({
    "id": "netB", "net_id": net["B"], "url": "http://127.0.0.1:%d/" % ports["B"],
    "protocol_version": "PROTOCOL_VERSION_1_0", "async_answers": True, "timeout_ms": 1500}), **bk)
roamctl("devaddr-blocks", "create", json.dumps({"prefix": "0A000000/7", "net_id": net["B"]}), **bk)
roamctl("join-routes", "create", json.dumps({"join_eui": "70b3d57ed0000505/64", "home_net_id": net["B"]}), **bk)
ak = dict(key=member_key["A"])
roamctl("endpoints", "create", json.dumps({
    "id": "netA", "net_id": net["A"], "url": "http://127.0.0.1:%d/" % ports["A"],
    "protocol_version": "PROTOCOL_VERSION_1_0", "async_answers": False, "timeout_ms": 1500}), **ak)
for home in ("B", "C"):   # A's gateways also serve C's devices (C speaks Packet Broker's API)
    roamctl("policy", "set", net["A"], net[home], "--allow",
            "join_request,mac_data,application_data,signal_quality,localization",
            "--down", "join_accept,mac_data,application_data", **ak)
for n, homes, je in (("C", "DB", "70b3d57ed0000707"), ("D", "C", "70b3d57ed0000909")):
    k = dict(key=member_key[n])
    roamctl("devaddr-blocks", "create", json.dumps({"prefix": block[n], "net_id": net[n]}), **k)
    roamctl("join-routes", "create", json.dumps({"join_eui": je + "/64", "home_net_id": net[n]}), **k)
    for home in homes:   # C's gateways also serve B's devices
        roamctl("policy", "set", net[n], net[home], "--allow",
                "join_request,mac_data,application_data,signal_quality,localization",
                "--down", "join_accept,mac_data,application_data", **k)
print()
print(roamctl("routes", "--devaddr", "0a000101", **opk, quiet=True).rstrip())
print()

say("4b. networks C and D start roamns in Packet Broker mode: token from their data-plane key, "
    "then 4 subscription streams per role on the hub's gRPC listener")
for n in ("C", "D"):
    kid, secret = pb_key[n].split(":", 1)
    write_ns_config(n, {"packet_broker": {
        "data_plane_address": "127.0.0.1:%d" % HUB_GRPC,
        "token_url": "http://127.0.0.1:%d/api/v1/oauth/token" % HUB_ADMIN,
        "client_id": kid, "client_secret": secret, "cluster_id": n.lower() + "-eu1",
        "forwarder": True, "home_network": True, "insecure": True,
        "token_key": secrets.token_hex(32)}},
        devices=C_NAMED + C_VIA_A if n == "C" else (), generate=C_GENERATE if n == "C" else None,
        join_eui="70b3d57ed0000707" if n == "C" else None)
    start("roamns-" + n, [ROAMNS, "-c", "roamns-%s.json" % n, "--ports-file", "ports-%s.json" % n])
wait_for(lambda: all(os.path.exists(os.path.join(OUT, "ports-%s.json" % n)) for n in "CD"),
         "roamns C and D to start")
with open(os.path.join(OUT, "ports-D.json")) as f:
    gwmp_d = json.load(f)["gwmp"]
with open(os.path.join(OUT, "ports-C.json")) as f:
    http_c = json.load(f)["ts002"]
wait_for(lambda: gauge("roamhub_pb_subscription_streams") >= 16,
         "C and D to subscribe (4 streams per role each)")



def start_sim(name, gw_port, device_args, confirmed, lat, lon, gw_eui):
    """roamsim with device_args against 2 gateways at gw_port (EUIs from gw_eui: runs against one
    network server need their own gateways); returns (process, summary path)."""
    path = os.path.join(OUT, "%s-summary.json" % name)
    p = start(name, [ROAMSIM, "--ns", "127.0.0.1:%d" % gw_port] + device_args + [
        "--gateways", "2", "--gateway-eui-start", gw_eui, "--lat", lat, "--lon", lon, "--uplinks", str(args.uplinks),
        "--interval", "2500", "--start-spread", "2000", "--confirmed-ratio", confirmed,
        "--duration", "40", "--json", path, "--quiet"])
    return p, path


def device_file(name, devices):
    path = os.path.join(OUT, name + ".json")
    with open(path, "w") as f:
        json.dump(devices, f, indent=1)
    return path


with open(os.path.join(OUT, "ports-C.json")) as f:
    gwmp_c = json.load(f)["gwmp"]
n_dev = len(NAMED) + args.devices
say("5. roamsim: %d devices of B (%d OTAA, 2 ABP), %d uplinks each, half confirmed, heard only by "
    "2 gateways of A" % (n_dev, n_dev - 2, args.uplinks))
sim, sim_json = start_sim("roamsim", gwmp_a, [
    "--devices", device_file("devices-B", NAMED), "--gen-otaa", str(GENERATE["count"]),
    "--dev-eui-start", GENERATE["dev_eui_start"], "--join-eui", GENERATE["join_eui"],
    "--seed-keys", GENERATE["seed"]], "0.5", "52.37", "4.89", "00000000000a0001")
# The other runs, at the same time: (name, label, process, summary, OTAA devices, confirmed?)
runs = []
n_dev_c = len(C_NAMED) + C_GENERATE["count"]
say("5b. roamsim: %d devices of C (Packet Broker member; %d OTAA, 1 ABP), heard only by 2 gateways "
    "of D (Packet Broker member), at the same time" % (n_dev_c, n_dev_c - 1))
p, path = start_sim("roamsim-C-via-D", gwmp_d, [
    "--devices", device_file("devices-C", C_NAMED), "--gen-otaa", str(C_GENERATE["count"]),
    "--dev-eui-start", C_GENERATE["dev_eui_start"], "--join-eui", C_GENERATE["join_eui"],
    "--seed-keys", C_GENERATE["seed"]], "0.5", "48.85", "2.35", "00000000000d0001")
runs.append(("C's devices heard by D's gateways (Packet Broker <-> Packet Broker)", p, path,
              n_dev_c - 1))
say("5c. roamsim: 2 devices of B (TS002 home network) heard only by 2 gateways of C (Packet Broker "
    "forwarder), and 2 devices of C heard only by A's gateways (TS002 forwarder): the hub bridges "
    "TS002 <-> gRPC both ways")
p, path = start_sim("roamsim-B-via-C", gwmp_c, ["--devices", device_file("devices-B-via-C", B_VIA_C)],
                    "0.5", "50.11", "8.68", "00000000000c0001")
runs.append(("B's devices heard by C's gateways (Packet Broker forwarder -> TS002 home)", p, path, 1))
p, path = start_sim("roamsim-C-via-A", gwmp_a, ["--devices", device_file("devices-C-via-A", C_VIA_A)],
                    "0.5", "52.37", "4.89", "00000000000a0101")
runs.append(("C's devices heard by A's gateways (TS002 forwarder -> Packet Broker home)", p, path, 1))
print("        time   B received   joins   ACKs sent   hub: forwarded  denied  failed"
      "   C received (via PB)")
last = ""
while sim.poll() is None:
    time.sleep(1.0)
    m = metrics()
    fwd = sum(v for (c, o), v in m.items() if o == "forwarded")
    den = sum(v for (c, o), v in m.items() if o == "policy_denied")
    bad = sum(v for (c, o), v in m.items() if o not in ("forwarded", "policy_denied"))
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % ports["B"], timeout=2) as r:
            st = json.loads(r.read())
    except OSError:
        st = {}
    row = "      %5.1fs   %10d   %5d   %9d   %14d  %6d  %6d   %10d" % (
        time.time() - T0, len(lines(os.path.join(OUT, "uplinks-B.jsonl"))),
        st.get("joins_accepted", 0), st.get("acks_sent", 0), fwd, den, bad,
        len(lines(os.path.join(OUT, "uplinks-C.jsonl"))))
    if row.split()[1:] != last.split()[1:]:
        print(row, flush=True)
    last = row
with open(sim_json) as f:
    s = json.load(f)
run_results = []
for label, p, path, n_otaa in runs:
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        fail("roamsim (%s) did not finish" % label)
    with open(path) as f:
        r = json.load(f)
    r_ok = (r.get("ok") and r["joins_accepted"] == n_otaa and r["acks"] == r["confirmed_sent"]
            and r["downlinks"]["late"] == 0 and r["downlinks"]["wrong"] == 0)
    run_results.append((label, r, bool(r_ok)))
with urllib.request.urlopen("http://127.0.0.1:%d/stats" % http_c, timeout=5) as r:
    st_c = json.loads(r.read())

say("6. A turns localization off in its policy; the next uplinks reach B without gateway position")
roamctl("policy", "set", net["A"], net["B"], "--allow", "join_request,mac_data,application_data,signal_quality",
        "--down", "join_accept,mac_data,application_data", **ak)
abp = dict(NAMED[2], fcnt_up=1000)
with open(os.path.join(OUT, "after-policy.json"), "w") as f:
    json.dump([abp], f)
r = subprocess.run([ROAMSIM, "--ns", "127.0.0.1:%d" % gwmp_a, "--devices", os.path.join(OUT, "after-policy.json"),
                    "--gateways", "2", "--lat", "52.37", "--lon", "4.89", "--uplinks", "1", "--quiet"],
                   capture_output=True, text=True, timeout=30)
time.sleep(0.5)
b_lines = lines(os.path.join(OUT, "uplinks-B.jsonl"))
before = [u for u in b_lines if u["dev_eui"] == abp["dev_eui"] and u["fcnt"] < 1000]
after = [u for u in b_lines if u["dev_eui"] == abp["dev_eui"] and u["fcnt"] >= 1000]
loc_before = before[-1]["gateways"][0] if before else {}
loc_after = after[-1]["gateways"][0] if after else {}
print("      gateway seen by B before: lat=%s lon=%s   after: lat=%s lon=%s" % (
    loc_before.get("lat"), loc_before.get("lon"), loc_after.get("lat"), loc_after.get("lon")))

time.sleep(1.2)   # let the hub flush its statistics (relay.stats_flush_ms)
say("7. the hub's statistics for this minute (roamctl stats, operator)")
stats_txt = roamctl("stats", "--by", "minute", **opk, quiet=True)
print(stats_txt.rstrip())
stop_all()

# ------------------------------------------------------------------------------------------------
ok = (s.get("ok") and s["joins_accepted"] == n_dev - 2
      and s["acks"] == s["confirmed_sent"] and s["downlinks"]["late"] == 0
      and s["downlinks"]["wrong"] == 0 and loc_before.get("lat") is not None
      and after and loc_after.get("lat") is None and not unclean
      and all(r_ok for _, _, r_ok in run_results))
for u in unclean:
    say("FAILED: " + u)
received = [u for u in b_lines if u["via"] == "roaming" and u["forwarder_net_id"] == net["A"]]
report = """# roamhub demo report

Generated {when} by `tools/demo/demo.py` (all processes on 127.0.0.1).

| | |
|---|---|
| networks | A = NetID 000013 (forwarder, gateways, sync), B = NetID 000505 (home, async), C = NetID 000707 and D = NetID 000909 (Packet Broker API members, as The Things Stack) |
| devices | {ndev} of B ({notaa} OTAA, 2 ABP), heard only by 2 gateways of A |
| uplinks sent by devices | {sent} ({conf} confirmed) |
| uplinks B decrypted (roamed through the hub) | {recv} |
| OTAA joins through the hub | {joins} accepted of {jreq} join-requests |
| ACKs for confirmed uplinks | {acks} of {conf}, all in RX1: on time {ontime}, late {late}, wrong {wrong} |
| gateway round trip (PUSH_DATA -> ACK PULL_RESP) | p50 {p50} ms, p99 {p99} ms (includes A's 50 ms deduplication window) |
| policy change (A drops localization) | gateway position at B before: {lb}, after: {la} |
{runs}| C's delivery reports to the hub (Packet Broker API) | {crep} |
| result | {result} |

## Hub statistics (roamctl stats)

```
{stats}
```

Logs: roamhubd.log, roamns-A.log, roamns-B.log, roamns-C.log, roamns-D.log, roamsim*.log; the
application output of B and C: uplinks-B.jsonl, uplinks-C.jsonl; the hub's
LMDB: var/roamhub-db.
""".format(when=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), ndev=n_dev, notaa=n_dev - 2,
           sent=s["uplinks_sent"], conf=s["confirmed_sent"], recv=len(received),
           joins=s["joins_accepted"], jreq=s["join_requests"], acks=s["acks"],
           ontime=s["downlinks"]["on_time"], late=s["downlinks"]["late"], wrong=s["downlinks"]["wrong"],
           p50=s["rtt_ms"]["p50"], p99=s["rtt_ms"]["p99"],
           lb="%s, %s" % (loc_before.get("lat"), loc_before.get("lon")),
           la="%s, %s" % (loc_after.get("lat"), loc_after.get("lon")),
           runs="".join("| %s | %d uplinks (%d confirmed), %d/%d joins, %d/%d ACKs (late %d, wrong %d)%s |\n" % (
               label, r["uplinks_sent"], r["confirmed_sent"], r["joins_accepted"], r["join_requests"],
               r["acks"], r["confirmed_sent"], r["downlinks"]["late"], r["downlinks"]["wrong"],
               "" if r_ok else " FAILED") for label, r, r_ok in run_results),
           crep=st_c.get("pb_reports_sent"),
           result="OK" if ok else "FAILED: " + json.dumps(
               s.get("failures") or [r.get("failures") for _, r, r_ok in run_results if not r_ok]
               or unclean),
           stats=stats_txt.rstrip())
with open(os.path.join(OUT, "REPORT.md"), "w") as f:
    f.write(report)
print()
print("roamsim: %d uplinks sent (%d confirmed), %d decrypted at B, %d/%d joins, %d/%d ACKs on time in "
      "RX1, gateway round trip p50 %.1f ms p99 %.1f ms" % (
          s["uplinks_sent"], s["confirmed_sent"], len(received), s["joins_accepted"], s["join_requests"],
          s["acks"], s["confirmed_sent"], s["rtt_ms"]["p50"],
          s["rtt_ms"]["p99"]))
for label, r, r_ok in run_results:
    print("roamsim, %s: %d uplinks (%d confirmed), %d/%d joins, %d/%d ACKs on time%s" % (
        label, r["uplinks_sent"], r["confirmed_sent"], r["joins_accepted"], r["join_requests"],
        r["acks"], r["confirmed_sent"], "" if r_ok else " FAILED"))
say("demo %s; report: %s" % ("OK" if ok else "FAILED", os.path.join(OUT, "REPORT.md")))
sys.exit(0 if ok else 1)
