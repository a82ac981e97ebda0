#!/usr/bin/env python3
"""Cluster benchmark (issue 13, docs/SCALING.md): relayed PRStartReq/s of 1 node vs 3 nodes on
the same machine, with wrk (tools/bench/relay_post.lua, 2 threads, CONNS connections, SECS s)
against the relay world of tools/bench/relay_world.sh (forwarder 000202 -> hub -> nginx stub
home network answering a fixed PRStartAns):
  single   one roamhubd without a cluster section, wrk straight to it (as tools/bench/relay.sh);
  cluster  the deploy/cluster/ example (tests/cluster/deploy_example.py: 3 nats-server,
           3 roamhubd, HAProxy), wrk to HAProxy's TS002 frontend;
  node     one node of that cluster, wrk straight to it (the cluster without HAProxy).
Every node imports the same table at start (a local import: nothing is written through the
stream during the run). Targets are measured in turn, RUNS times, medians reported. All of it
shares one machine's cores: more nodes add no cores, so 3 nodes are expected to relay no more
than 1 (HAProxy's own work comes on top).
Usage: tools/bench/cluster_throughput.py [BUILD_DIR] [RUNS] [SECS] [CONNS]
"""
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from cluster_bench import arg  # noqa: E402 (sets ROAMHUB_BUILD and sys.path)
BENCH = os.path.dirname(os.path.abspath(__file__))
RUNS = arg(2, 3)
SECS = arg(3, 10)
CONNS = arg(4, 64)
from deploy_example import ExampleCluster  # noqa: E402
from roamhub_harness import ROAMHUBD, Daemon, free_port  # noqa: E402

RELAY = {"pending_max": 1000000, "endpoint_allow_ranges": ["127.0.0.0/8"]}


def world(w):
    """Starts the nginx stub and writes the table (relay_world.sh); returns the table path."""
    stub = free_port()
    table = os.path.join(w, "table.json")
    subprocess.run(["bash", "-c", '. "$0/relay_world.sh" && stub_start "$1" "$2" && '
                    'relay_table "$1/table.json" "$2"', BENCH, w, str(stub)], check=True)
    return table


def check(port):
    """One PRStartReq through port must come back Success (the world relays)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    lua = open(os.path.join(BENCH, "relay_post.lua")).read()
    t1 = re.search(r"local t1 = '(.*)'", lua).group(1)
    t2 = re.search(r"local t2 = '(.*)'", lua).group(1)
    c.request("POST", "/", t1 + "7" + t2, {"Authorization": "Bearer bench-key-0123456789"})
    a = json.loads(c.getresponse().read())
    assert a["Result"]["ResultCode"] == "Success", a


def cpu_s(pids):
    """User+system CPU seconds of the processes so far (/proc/PID/stat, all threads)."""
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tck


def wrk(port):
    out = subprocess.run(["wrk", "-t2", "-c%d" % CONNS, "-d%ds" % SECS, "--latency", "-s",
                          os.path.join(BENCH, "relay_post.lua"), "http://127.0.0.1:%d/" % port],
                         capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    if bad or errs:
        print("  warning: %s %s" % (bad.group(0) if bad else "", errs.group(0) if errs else ""))
    return rps, reqs


def main():
    w = tempfile.mkdtemp(prefix="roamhub-cluster-tput-")
    single = ex = None
    try:
        table = world(w)
        cfg = {"log_level": "warn", "import": table, "database": {"path": os.path.join(w, "db")},
               "ts002": {"address": "127.0.0.1", "port": 0},
               "admin": {"address": "127.0.0.1", "port": 0, "operator_key_file": None},
               "relay": RELAY}
        with open(os.path.join(w, "single.json"), "w") as f:
            json.dump(cfg, f)
        ports = os.path.join(w, "ports.json")
        single = Daemon("roamhubd", [ROAMHUBD, "-c", os.path.join(w, "single.json"),
                                     "--ports-file", ports], os.path.join(w, "single.log"))
        while not os.path.exists(ports):
            time.sleep(0.02)
        time.sleep(0.2)
        single_port = json.load(open(ports))["ts002"]
        ex = ExampleCluster(log_level="warn")
        ex.start(top={"import": table, "relay": dict(RELAY)})
        for s in ("rh1", "rh2", "rh3"):
            ex.wait_lb(s, "UP")
        targets = {"single": single_port, "cluster": ex.lb_ts002, "node": ex.nodes[0].port}
        # CPU counted per target: the processes that do its work (cluster: every node, every
        # NATS server and HAProxy)
        pids = {"single": [single.proc.pid],
                "cluster": [n.daemon.proc.pid for n in ex.nodes] +
                           [d.proc.pid for d in ex.nats] + [ex.lb.proc.pid],
                "node": [ex.nodes[0].daemon.proc.pid]}
        for p in targets.values():
            check(p)
        res = {k: [] for k in targets}
        print("relayed PRStartReq/s, wrk -t2 -c%d -d%ds; machine (%d cores) shared with other "
              "work" % (CONNS, SECS, os.cpu_count()))
        for r in range(RUNS):
            for k, p in targets.items():
                c0 = cpu_s(pids[k])
                rps, reqs = wrk(p)
                us = (cpu_s(pids[k]) - c0) * 1e6 / reqs
                res[k].append((rps, us))
                print("run %d %-7s %8.0f/s  %6.1f CPU us/msg" % (r, k, rps, us), flush=True)
        med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
               for k, v in res.items()}
        print("median: single node %.0f/s %.1f us/msg; 3 nodes behind HAProxy %.0f/s (%.2fx) "
              "%.1f us/msg (nodes + NATS + HAProxy); one cluster node direct %.0f/s %.1f us/msg"
              % (med["single"][0], med["single"][1], med["cluster"][0],
                 med["cluster"][0] / med["single"][0], med["cluster"][1], med["node"][0],
                 med["node"][1]))
    finally:
        if ex:
            ex.cleanup()
        if single:
            single.stop()
        subprocess.run(["bash", "-c", 'kill "$(cat "$0/stub.pid")"', w])
        time.sleep(0.2)
        shutil.rmtree(w, ignore_errors=True)


if __name__ == "__main__":
    main()
