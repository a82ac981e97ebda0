#!/usr/bin/env python3
"""Cluster benchmark (issues 12/13, docs/SCALING.md): what handing a Packet Broker uplink to a
subscription group on another node costs (broker/cluster_pb.c).

Per run: 3 nats-server (JetStream cluster) and 3 roamhubd nodes on 127.0.0.1 with gRPC
listeners, set up by tests/cluster/test_cluster_pb.py (a home network subscribed with one stream
on node 2, a forwarder publishing). N uplinks, one at a time, alternately published on node 1
(routed over NATS to node 2's stream) and on node 2 (the reference in the same run: the same
stream, no NATS on the path). Reported per path: p50/p99 of Publish sent -> RoutedUplinkMessage
read by the home network's client, ms; the median over the runs.
Then the bridged answer: N/4 TS002 PRStartReqs (data) posted to node 1 for the home network on
node 2, whose client reports PROCESSED alternately on node 1 (the holder: the reference) and on
node 3 (handed to node 1 over NATS): p50/p99 of the PRStartReq round trip, ms.
Usage: tools/bench/cluster_pb.py [BUILD_DIR] [RUNS] [N]
"""
import os
import statistics
import sys
import threading
import time

from cluster_bench import arg, pct  # noqa: E402 (sets ROAMHUB_BUILD and sys.path)
RUNS = arg(2, 3)
N = arg(3, 200)
from test_cluster_pb import PBClusterTest, data_up, rtg, uplink  # noqa: E402


def one_run():
    t = PBClusterTest("test_no_stream_anywhere_fails_in_time")
    t.setUp()
    try:
        n1, n2, n3 = t.start(3)
        stream = t.home_streams(n2, "nam1", 1)[0]
        t.wait_subscribed(n2, 1)
        paths = [("node 1 -> NATS -> node 2", rtg.ForwarderDataStub(t.channel(n1))),
                 ("node 2 (local reference)", rtg.ForwarderDataStub(t.channel(n2)))]
        lat = {name: [] for name, _ in paths}
        for i in range(-5, N):  # 5 warm-up rounds (connections, first NATS interest)
            for name, stub in paths:
                before = len(stream.msgs)
                t0 = time.monotonic()
                stub.Publish(uplink(data_up(0x26000000 + i % 1000, fcnt=i & 0xFFFF)),
                             metadata=t.fwd_md, timeout=3)
                while len(stream.msgs) == before:
                    if time.monotonic() - t0 > 5:
                        raise RuntimeError("uplink %d via %s never arrived" % (i, name))
                    time.sleep(0.0001)
                if i >= 0:
                    lat[name].append((time.monotonic() - t0) * 1000)
        import test_pb_bridge
        from test_cluster_pb import ts002_uplink
        homes = [("report on node 1 (holder, reference)", t.as_home(n1)),
                 ("report on node 3 -> NATS -> node 1", t.as_home(n3))]
        for name, _ in homes:
            lat[name] = []
        for i in range(-2, N // 4):
            for name, home in homes:
                before = len(stream.msgs)
                box = {}
                th = threading.Thread(target=lambda: box.update(r=n1.post(
                    ts002_uplink(data_up(0x26000042, fcnt=(i + 10) & 0xFFFF), 5000 + i),
                    t.tsfwd.key, timeout=10)))
                t0 = time.monotonic()
                th.start()
                while len(stream.msgs) == before:
                    if time.monotonic() - t0 > 5:
                        raise RuntimeError("bridged uplink %d never arrived" % i)
                    time.sleep(0.0001)
                test_pb_bridge.BridgeWorld.home_report(home, stream.msgs[before])
                th.join(10)
                st, ans, _ = box["r"]
                if ans["Result"]["ResultCode"] != "Success":
                    raise RuntimeError("bridged answer: %r" % ans)
                if i >= 0:
                    lat[name].append((time.monotonic() - t0) * 1000)
        return {k: (pct(v, 50), pct(v, 99)) for k, v in lat.items()}
    finally:
        t.tearDown()


def main():
    PBClusterTest.setUpClass()
    try:
        runs = [one_run() for _ in range(RUNS)]
    finally:
        PBClusterTest.tearDownClass()
    print("ms, %d runs; %d uplinks per Publish path, %d PRStartReqs per report path; shared "
          "machine" % (RUNS, N, N // 4))
    print("| path | p50 | p99 |")
    print("|---|---|---|")
    for k in runs[0]:
        p50 = [r[k][0] for r in runs]
        p99 = [r[k][1] for r in runs]
        print("| %s | %.2f (%s) | %.2f (%s) |" % (
            k, statistics.median(p50), ", ".join("%.2f" % x for x in p50),
            statistics.median(p99), ", ".join("%.2f" % x for x in p99)))


if __name__ == "__main__":
    main()
