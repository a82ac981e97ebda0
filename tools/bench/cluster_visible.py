#!/usr/bin/env python3
"""Cluster benchmark (issue 13, docs/SCALING.md): admin write -> visible on every node.

Starts 3 nats-server processes (JetStream, clustered) and 3 roamhubd nodes on 127.0.0.1 (the
test harness of tests/cluster/), then N times: PUT a routing policy on node 1 (alternating its
uplink flags) and poll nodes 2 and 3 (GET of the same record, as fast as the admin API answers)
until both show it. Reports, per run and as the median of RUNS runs:
  - ack: the PUT's own latency on node 1 (stored by JetStream R3 and applied on node 1);
  - visible: from sending the PUT to the last of nodes 2 and 3 showing it (p50, p99);
  - reference: the same PUT on a single node without a cluster section, measured in the same run.
Polling adds up to one GET round trip (~1 ms) to "visible".
Usage: tools/bench/cluster_visible.py [BUILD_DIR] [RUNS] [WRITES]
"""
import os
import statistics
import sys
import time

from cluster_bench import arg, pct  # noqa: E402 (sets ROAMHUB_BUILD and sys.path)
RUNS = arg(2, 3)
WRITES = arg(3, 200)
from cluster_harness import NatsCluster, cluster_section, wait_readyz  # noqa: E402
from roamhub_harness import AdminClient, Hub, admin_config  # noqa: E402

A, B = "000202", "000505"
PATH = "/policies/%s/%s" % (A, B)


def node(cluster=None):
    cfg = {"admin": admin_config(), "log_level": "warn"}
    if cluster:
        cfg["cluster"] = cluster
    h = Hub({}, config=cfg)
    h.api = AdminClient(h)
    if cluster:
        wait_readyz(h, 200, "ready\n")
    h.op = h.api.token(h.api.operator_key())
    return h


def put(h, i):
    body = {"uplink": {"application_data": i % 2 == 0, "mac_data": i % 2 == 1}}
    st, data, _ = h.api.call("PUT", PATH, body, h.op)
    if st not in (200, 201):
        raise RuntimeError("PUT %d: %s" % (st, data))


def shows(h, i):
    st, data, _ = h.api.call("GET", PATH, token=h.op)
    return st == 200 and bool(data["uplink"].get("mac_data")) == (i % 2 == 1) and \
        bool(data["uplink"].get("application_data")) == (i % 2 == 0)


def one_run(run):
    nats = NatsCluster(3)
    hubs = []
    try:
        nats.wait_jetstream()
        urls = nats.urls()
        sec = {"stream": "RH_BENCH%d" % run, "subject_prefix": "roamhub.bench%d" % run}
        nodes = [node(cluster_section(i + 1, urls[i:] + urls[:i], **sec)) for i in range(3)]
        hubs.extend(nodes)
        single = node()
        hubs.append(single)
        for h in (nodes[0], single):
            for net in (A, B):
                st, data, _ = h.api.call("POST", "/networks", {"net_id": net, "name": "n" + net},
                                         h.op)
                if st != 201:
                    raise RuntimeError("network: %s" % data)
        acks, visible, ref = [], [], []
        for i in range(WRITES):
            t0 = time.perf_counter()
            put(nodes[0], i)
            acks.append(time.perf_counter() - t0)
            pending = [nodes[1], nodes[2]]
            while pending:
                pending = [h for h in pending if not shows(h, i)]
            visible.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            put(single, i)
            ref.append(time.perf_counter() - t1)
        ms = lambda x: x * 1000.0  # noqa: E731
        r = {"ack_p50": ms(pct(acks, 50)), "ack_p99": ms(pct(acks, 99)),
             "vis_p50": ms(pct(visible, 50)), "vis_p99": ms(pct(visible, 99)),
             "ref_p50": ms(pct(ref, 50)), "ref_p99": ms(pct(ref, 99))}
        print("run %d: " % run + " ".join("%s=%.2fms" % kv for kv in sorted(r.items())),
              flush=True)
        return r
    finally:
        for h in hubs:
            h.cleanup()
        nats.cleanup()


def main():
    runs = [one_run(i) for i in range(RUNS)]
    print("\n| figure (ms, median of %d runs x %d writes) | p50 | p99 |" % (RUNS, WRITES))
    print("|---|---|---|")
    for label, key in (("cluster: PUT acknowledged on node 1 (stored R3 + applied)", "ack"),
                       ("cluster: PUT sent -> visible on nodes 2 and 3", "vis"),
                       ("reference: the same PUT on a single node (no cluster)", "ref")):
        print("| %s | %.2f | %.2f |" % (label, statistics.median(r[key + "_p50"] for r in runs),
                                        statistics.median(r[key + "_p99"] for r in runs)))


if __name__ == "__main__":
    main()
