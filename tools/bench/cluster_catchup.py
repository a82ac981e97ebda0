#!/usr/bin/env python3
"""Cluster benchmark (issue 13, docs/SCALING.md): catch-up time of an empty roamhubd node.

Per run and table size N: 3 nats-server (JetStream, clustered, tests/cluster harness), one
roamhubd node creates the stream (R3) and is stopped; the stream is filled with 1 network + N
DevAddr block creates (TableChange messages as cluster_write publishes them, packed here by
hand by tests/cluster/cluster_harness.fill_table_stream; JetStream-acknowledged); then an empty node is started and timed from its start until /readyz answers 200 (it
has applied the stream up to its last sequence); its LMDB must then hold the N blocks (roamdb
count). Reference, same run: a single node (no cluster) started with the same N blocks as its
`import` file, timed until /healthz answers (the import is done before the listeners open).
Then, same run, the snapshot path: a node with cluster.snapshot_every = N applies the stream and
writes the table snapshot to the JetStream object store, and is stopped; another empty node is
timed until ready (it loads the snapshot, nothing left in the stream's tail).
SNAPSHOT=0 skips that (a build without snapshots, e.g. to measure an older version's catch-up).
Usage: tools/bench/cluster_catchup.py [BUILD_DIR] [RUNS] [N ...]   (default: build 3 100000)
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from cluster_bench import arg  # noqa: E402 (sets ROAMHUB_BUILD and sys.path)
RUNS = arg(2, 3)
SIZES = [int(a) for a in sys.argv[3:]] or [100000]
from cluster_harness import (NatsCluster, cluster_section, fill_table_stream, readyz,  # noqa: E402
                             wait_readyz)
from roamhub_harness import ROAMHUBD, Daemon, Hub  # noqa: E402


def import_file(path, n):
    with open(path, "w") as f:
        f.write('{"networks":[{"net_id":"000505","name":"home"}],"devaddr_blocks":[')
        f.write(",".join('{"prefix":"%08X/32","net_id":"000505"}' % (0x0A000000 + i)
                         for i in range(n)))
        f.write("]}")


def reference(n):
    """Seconds for a single node to start with the N blocks as its import file."""
    d = tempfile.mkdtemp(prefix="roamhub-catchup-ref-")
    import_file(os.path.join(d, "table.json"), n)
    cfg = {"log_level": "warn", "import": os.path.join(d, "table.json"),
           "database": {"path": os.path.join(d, "db"), "map_size_mb": 256},
           "ts002": {"address": "127.0.0.1", "port": 0},
           "admin": {"address": "127.0.0.1", "port": 0, "operator_key_file": None}}
    with open(os.path.join(d, "cfg.json"), "w") as f:
        json.dump(cfg, f)
    ports = os.path.join(d, "ports.json")
    t0 = time.time()
    dm = Daemon("roamhubd", [ROAMHUBD, "-c", os.path.join(d, "cfg.json"), "--ports-file", ports],
                os.path.join(d, "log"))
    while not os.path.exists(ports):
        if dm.poll() is not None:
            raise RuntimeError(dm.output())
        time.sleep(0.01)
    admin = json.load(open(ports))["admin"]
    while True:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/healthz" % admin, timeout=2).read()
            break
        except OSError:
            time.sleep(0.01)
    el = time.time() - t0
    dm.stop()
    subprocess.run(["rm", "-rf", d])
    return el


def blocks(hub):
    out = hub.roamdb("count").stdout
    for line in out.splitlines():
        if line.startswith("devaddr_block") or line.startswith("block"):
            return int(line.split()[-1])
    raise RuntimeError("roamdb count: %r" % out)


def one_run(run, n):
    nats = NatsCluster(3)
    hubs = []
    try:
        nats.wait_jetstream()
        sec = cluster_section(1, nats.urls(), stream="RH_CATCHUP%d" % run,
                              subject_prefix="roamhub.catchup%d" % run)
        first = Hub({}, config={"cluster": sec, "log_level": "warn"})
        hubs.append(first)
        wait_readyz(first, 200, "ready\n")
        first.stop()
        t0 = time.time()
        fill_table_stream(nats.client_ports[0], sec["subject_prefix"] + ".table", n)
        fill_s = time.time() - t0
        sec2 = dict(sec, node_id=2)
        t0 = time.time()
        node = Hub({}, config={"cluster": sec2, "log_level": "warn",
                               "database": {"map_size_mb": 256}})
        hubs.append(node)
        while readyz(node)[0] != 200:
            if node.proc.poll() is not None:
                raise RuntimeError(node.logs())
            time.sleep(0.02)
        catchup = time.time() - t0
        got = blocks(node)
        if got != n:
            raise RuntimeError("caught-up node holds %d blocks, not %d" % (got, n))
        snap = float("nan")
        if os.environ.get("SNAPSHOT", "1") != "0":
            writer = Hub({}, config={"cluster": dict(sec, node_id=3, snapshot_every=n),
                                     "log_level": "info", "database": {"map_size_mb": 256}})
            hubs.append(writer)
            deadline = time.time() + 3600
            while 'msg="table snapshot written"' not in writer.logs():
                if time.time() > deadline or writer.proc.poll() is not None:
                    raise RuntimeError(writer.logs()[-3000:])
                time.sleep(0.1)
            writer.stop()
            t0 = time.time()
            empty = Hub({}, config={"cluster": dict(sec, node_id=4), "log_level": "info",
                                    "database": {"map_size_mb": 256}})
            hubs.append(empty)
            while readyz(empty)[0] != 200:
                if empty.proc.poll() is not None:
                    raise RuntimeError(empty.logs())
                time.sleep(0.02)
            snap = time.time() - t0
            if 'msg="table snapshot loaded"' not in empty.logs() or blocks(empty) != n:
                raise RuntimeError("the empty node did not load the snapshot:\n" + empty.logs())
        ref = reference(n)
        print("run %d N=%d: fill %.1f s, catch-up %.2f s (%.0f changes/s), from the snapshot %.2f s, "
              "reference import %.2f s" % (run, n, fill_s, catchup, (n + 1) / catchup, snap, ref),
              flush=True)
        return catchup, ref, snap
    finally:
        for h in hubs:
            h.cleanup()
        nats.cleanup()


def main():
    print("catch-up of an empty node: median of %d runs; machine shared with other work" % RUNS)
    for n in SIZES:
        res = [one_run(r, n) for r in range(RUNS)]
        c = statistics.median(r[0] for r in res)
        ref = statistics.median(r[1] for r in res)
        snap = statistics.median(r[2] for r in res)
        print("N=%d: catch-up %.2f s (%.0f changes/s); from the snapshot %.2f s; single-node import "
              "reference %.2f s" % (n, c, (n + 1) / c, snap, ref))


if __name__ == "__main__":
    main()
