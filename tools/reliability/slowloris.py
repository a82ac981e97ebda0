#!/usr/bin/env python3
"""Slowloris and slow POST against roamhubd's TS002 listener, with a concurrent normal load.

--slow (default 500) connections send a request head one byte every --trickle-s (default 5) s and
--slow-post (default 200) send complete headers announcing a 4 KiB body, then one body byte every
--trickle-s s; the hub runs with its default deadlines (header 10 s, body 30 s). Forwarder A keeps
a normal load (--rate, default 50/s, to homes B sync and C async) before (baseline, 10 s) and
during the attack, in the same run. The attack lasts --seconds (default 45).

Bounds: every slow connection is closed by the hub within its deadline + 2 s (measured from its
last progress: connect for the head, end of headers for the body); every normal request is
answered Success; the normal p99 during the attack stays within --p99-bound-ms (default 50) of the
baseline p99; roamhubd exits cleanly.

  python3 tools/reliability/slowloris.py
"""
import argparse
import socket
import time

import rel_common as R

HEAD = b"POST / HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 200
POST_HEAD = b"POST / HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"


class Slow:
    def __init__(self, port, post):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        self.post = post
        self.t0 = time.monotonic()   # start of the deadline it is racing
        if post:
            self.sock.sendall(POST_HEAD)
            self.t0 = time.monotonic()
        self.sent = 0
        self.closed_after = None

    def tick(self, now):
        if self.closed_after is not None:
            return
        try:
            if self.sock.recv(4096) == b"":
                raise ConnectionResetError
        except BlockingIOError:
            pass
        except OSError:
            self.closed_after = now - self.t0
            self.sock.close()
            return
        try:
            self.sock.send(b"x" if self.post else HEAD[self.sent % len(HEAD):self.sent % len(HEAD) + 1])
            self.sent += 1
        except OSError:
            self.closed_after = now - self.t0
            self.sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slow", type=int, default=500)
    ap.add_argument("--slow-post", type=int, default=200)
    ap.add_argument("--trickle-s", type=float, default=5)
    ap.add_argument("--seconds", type=float, default=45)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--p99-bound-ms", type=float, default=50)
    args = ap.parse_args()
    header_s, body_s = 10.0, 30.0

    w = R.World(keep_messages=False)
    base = R.Load(w, [(R.B, R.DEVADDR_B), (R.C, R.DEVADDR_C)], args.rate, threads=2).start()
    time.sleep(10)
    base.stop()

    load = R.Load(w, [(R.B, R.DEVADDR_B), (R.C, R.DEVADDR_C)], args.rate, threads=2).start()
    slows = [Slow(w.hub.port, False) for _ in range(args.slow)]
    slows += [Slow(w.hub.port, True) for _ in range(args.slow_post)]
    pid = w.hub.proc.pid
    max_fds = 0
    t_end = time.monotonic() + args.seconds
    while time.monotonic() < t_end:
        now = time.monotonic()
        for s in slows:
            s.tick(now)
        max_fds = max(max_fds, R.open_fds(pid))
        time.sleep(args.trickle_s if args.trickle_s < 1 else 1)
        if all(s.closed_after is not None for s in slows):
            break
    load.stop()
    for s in slows:
        if s.closed_after is None:
            s.sock.close()
    exit_problem = w.close()

    heads = [s.closed_after for s in slows if not s.post]
    posts = [s.closed_after for s in slows if s.post]
    open_heads = sum(1 for x in heads if x is None)
    open_posts = sum(1 for x in posts if x is None)
    late_heads = sum(1 for x in heads if x is not None and x > header_s + 2)
    late_posts = sum(1 for x in posts if x is not None and x > body_s + 2)
    bsum, lsum = base.summary(), load.summary()
    bp99 = max(v["p99"] for v in bsum["latency_ms"].values())
    lp99 = max(v["p99"] for v in lsum["latency_ms"].values())
    figures = {
        "slow_heads": {"sent": len(heads), "still_open": open_heads, "late": late_heads,
                       "closed_after_s_max": round(max([x for x in heads if x is not None] or [0]), 1)},
        "slow_posts": {"sent": len(posts), "still_open": open_posts, "late": late_posts,
                       "closed_after_s_max": round(max([x for x in posts if x is not None] or [0]), 1)},
        "hub_max_open_fds": max_fds, "baseline": bsum, "during_attack": lsum,
        "hub_exit": exit_problem or "clean",
    }
    R.report("slowloris", figures, [
        ("slow heads closed within %.0f s + 2 s (%d open, %d late of %d)"
         % (header_s, open_heads, late_heads, len(heads)), open_heads == 0 and late_heads == 0),
        ("slow bodies closed within %.0f s + 2 s (%d open, %d late of %d)"
         % (body_s, open_posts, late_posts, len(posts)), open_posts == 0 and late_posts == 0),
        ("every normal request answered Success (%d lost of %d)" % (load.lost() + base.lost(),
                                                                   lsum["sent"] + bsum["sent"]),
         load.lost() == 0 and base.lost() == 0),
        ("normal p99 during the attack %.1f ms <= baseline %.1f ms + %.0f ms" % (lp99, bp99, args.p99_bound_ms),
         lp99 <= bp99 + args.p99_bound_ms),
        ("roamhubd exited cleanly", exit_problem is None),
    ])


if __name__ == "__main__":
    main()
