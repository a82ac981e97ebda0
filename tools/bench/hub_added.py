#!/usr/bin/env python3
"""The hub's roamhub_relay_latency_seconds{stage="hub_added"} histogram for the relay benchmarks
(relay_world.sh hub_added_begin/end; relay.hub_latency, docs/CONFIG.md).

  hub_added.py read PORT       the cumulative bucket counts from the admin listener's /metrics,
                               "le:count" per bucket, one line
  hub_added.py wait DIR PORT   opens the FIFO DIR/mark, creates DIR/ready, waits until a writer
                               (bench-openloop -m at the end of its warm-up) has opened and
                               closed it, then writes the reading to DIR/h0 (via DIR/h0.part);
                               exit 1 after 600 s without a writer
  hub_added.py pct H0 H1       from two readings, "count p50 p99 p99.9 BUCKET" of the messages
                               between them: percentiles in µs interpolated linearly within their
                               power-of-two bucket (bounds 2^i - 1 µs, as Prometheus'
                               histogram_quantile), BUCKET the p99's ("256-511")
"""
import http.client
import os
import re
import select
import sys

BUCKET = re.compile(r'^roamhub_relay_latency_seconds_bucket\{stage="hub_added",le="([^"]*)"\} (\d+)$',
                    re.M)


def read(conn):
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    return " ".join("%s:%s" % m for m in BUCKET.findall(text))


def connect(port):
    return http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)


def wait(d, port):
    conn = connect(port)  # connects at the request: nothing is sent before the mark
    fd = os.open(os.path.join(d, "mark"), os.O_RDONLY | os.O_NONBLOCK)
    open(os.path.join(d, "ready"), "w").close()  # from now on bench-openloop's open finds a reader
    if not select.select([fd], [], [], 600)[0]:  # readable (EOF) once a writer opened and closed it
        return 1
    with open(os.path.join(d, "h0.part"), "w") as f:
        f.write(read(conn))
    os.rename(os.path.join(d, "h0.part"), os.path.join(d, "h0"))
    return 0


def pct(h0, h1):
    base = dict(x.split(":") for x in h0.split())
    d = [(le, int(c) - int(base.get(le, 0))) for le, c in (x.split(":") for x in h1.split())]
    n = d[-1][1] if d else 0
    if not n:
        return "0 - - - -"

    def q(p):
        lo, below = 0.0, 0
        for le, c in d:
            if le == "+Inf":
                return lo, "%d-" % lo
            hi = round(float(le) * 1e6)
            if c >= p * n and c > below:
                return lo + (hi - lo) * (p * n - below) / (c - below), "%d-%d" % (lo, hi)
            lo, below = hi + 1, c
        return lo, "-"
    (a, _), (b, bucket), (c, _) = q(0.5), q(0.99), q(0.999)
    return "%d %.0f %.0f %.0f %s" % (n, a, b, c, bucket)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "read":
        print(read(connect(args[0])))
    elif cmd == "wait":
        sys.exit(wait(*args))
    elif cmd == "pct":
        print(pct(*args))
    else:
        sys.exit("usage: hub_added.py read PORT | wait DIR PORT | pct H0 H1")
