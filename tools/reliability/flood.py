#!/usr/bin/env python3
"""Connection flood past the file descriptor limit: roamhubd runs with RLIMIT_NOFILE --nofile (soft
= hard, so it cannot raise it; default 1024, the usual interactive limit) and the default
max_connections 8192; --connections (default 3 x nofile) idle connections are opened and held for
--seconds (default 20) while forwarder A sends a relay to home B every 100 ms on a keep-alive
connection opened before the flood, and another every 100 ms on a new connection each.

Bounds: the hub logs at most --log-bound-kb (default 256 KiB) during the flood; it uses less than
--cpu-bound (default 0.5) CPU seconds per second of flood (no accept() busy loop); every relay of
A is answered Success (those on new connections wait in the backlog behind the flood, their
latency is reported); roamhubd exits cleanly. The figures include A's latency before and during
the flood (measured in the same run).

  python3 tools/reliability/flood.py
"""
import argparse
import os
import resource
import socket
import threading
import time

import rel_common as R


def relay_probe(w, stop, lat, codes, fresh=False):
    """A relay every 100 ms, on one keep-alive connection or (fresh) a new connection each."""
    cl = R.Client(w.hub, w.a.key, timeout=30)
    while not stop.is_set():
        if fresh:
            cl.close()
        st, ans, el = cl.post(R.H.pr_start_req(R.A, R.B, R.DEVADDR_B))
        code = R.result_code(ans) if st == 200 else "http %d" % st
        codes[code] = codes.get(code, 0) + 1
        if code == "Success":
            lat.append(el)
        stop.wait(0.1)
    cl.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nofile", type=int, default=1024)
    ap.add_argument("--connections", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--header-timeout-ms", type=int, default=2000)
    ap.add_argument("--log-bound-kb", type=int, default=256)
    ap.add_argument("--cpu-bound", type=float, default=0.5)
    args = ap.parse_args()
    nconn = args.connections or 3 * args.nofile
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if nconn + 64 > hard:
        raise SystemExit("this shell may open %d descriptors; lower --connections" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))

    w = R.World(config={"ts002": {"header_timeout_ms": args.header_timeout_ms}},
                popen={"preexec_fn": limit})
    pid = w.hub.proc.pid
    before_lat, before_codes = [], {}
    stop = threading.Event()
    t = threading.Thread(target=relay_probe, args=(w, stop, before_lat, before_codes))
    t.start()
    time.sleep(3)
    stop.set()
    t.join()

    lat, codes, flat, fcodes = [], {}, [], {}
    stop = threading.Event()
    t = threading.Thread(target=relay_probe, args=(w, stop, lat, codes))
    tf = threading.Thread(target=relay_probe, args=(w, stop, flat, fcodes, True))
    log0, cpu0, t0 = os.path.getsize(w.hub.log_path), R.cpu_seconds(pid), time.monotonic()
    t.start()
    time.sleep(0.3)   # the keep-alive probe's connection exists before the flood
    tf.start()
    socks, refused = [], 0
    deadline = t0 + args.seconds
    max_fds = 0
    # Keep the flood up: reopen what the hub closes (header deadline) until the time is over.
    while time.monotonic() < deadline:
        socks = [s for s in socks if s.fileno() >= 0]
        while len(socks) < nconn and time.monotonic() < deadline:
            s = socket.socket()
            s.setblocking(False)
            if s.connect_ex(("127.0.0.1", w.hub.port)) not in (0, 115):   # EINPROGRESS
                refused += 1
            socks.append(s)
        max_fds = max(max_fds, R.open_fds(pid))
        time.sleep(0.5)
        for s in socks:          # drop connections the hub has closed, keep the others
            try:
                if s.recv(1) == b"":
                    s.close()
            except BlockingIOError:
                pass
            except OSError:
                s.close()
    flood_s = time.monotonic() - t0
    cpu = R.cpu_seconds(pid) - cpu0
    log_bytes = os.path.getsize(w.hub.log_path) - log0
    stop.set()
    t.join()
    tf.join()
    for s in socks:
        s.close()
    logs = w.hub.logs()
    exit_problem = w.close()
    figures = {
        "nofile": args.nofile, "connections_held": nconn, "flood_seconds": round(flood_s, 1),
        "connect_errors": refused, "hub_max_open_fds": max_fds,
        "hub_cpu_s_per_s": round(cpu / flood_s, 3), "log_bytes_during_flood": log_bytes,
        "lowered_caps_line": next((l for l in logs.splitlines() if "max_connections lowered" in l), None),
        "accept_pauses_logged": logs.count("accept failed, pausing accept"),
        "relays_before": {"answers": before_codes, "p50_ms": R.ms(R.percentile(before_lat, 50)),
                          "p99_ms": R.ms(R.percentile(before_lat, 99))},
        "relays_during_keepalive": {"answers": codes, "p50_ms": R.ms(R.percentile(lat, 50)),
                                    "p99_ms": R.ms(R.percentile(lat, 99)), "max_ms": R.ms(max(lat or [0]))},
        "relays_during_new_connections": {
            "answers": fcodes, "p50_ms": R.ms(R.percentile(flat, 50)),
            "p99_ms": R.ms(R.percentile(flat, 99)), "max_ms": R.ms(max(flat or [0]))},
        "hub_exit": exit_problem or "clean",
    }
    lost = sum(n for c, n in codes.items() if c != "Success")
    flost = sum(n for c, n in fcodes.items() if c != "Success")
    R.report("flood", figures, [
        ("log during the flood %d B <= %d KiB" % (log_bytes, args.log_bound_kb),
         log_bytes <= args.log_bound_kb * 1024),
        ("hub CPU %.2f s/s < %.2f (no accept busy loop)" % (cpu / flood_s, args.cpu_bound),
         cpu / flood_s < args.cpu_bound),
        ("every relay of A answered Success during the flood (%d lost of %d)" % (lost, sum(codes.values())),
         lost == 0 and codes.get("Success", 0) > 0),
        ("every relay of A on a new connection answered Success (%d lost of %d)"
         % (flost, sum(fcodes.values())), flost == 0 and fcodes.get("Success", 0) > 0),
        ("open descriptors stayed within the limit (%d <= %d)" % (max_fds, args.nofile), max_fds <= args.nofile),
        ("roamhubd exited cleanly", exit_problem is None),
    ])


if __name__ == "__main__":
    main()
