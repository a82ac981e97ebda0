#!/usr/bin/env python3
"""Misbehaving home networks while another member's latency is measured.

Forwarder A relays to the healthy home B (sync) at --rate (default 40/s). After a baseline of
--baseline-s (default 10 s), A also relays, each at --fault-rate (default 20/s), to
  - a HUNG home (accepts the request, never answers; endpoint timeout 800 ms),
  - a SLOW home (answers Success after --slow-ms, default 1000 ms; endpoint timeout 1500 ms),
  - a GARBAGE home (answers HTTP 200 with bytes that are not JSON; timeout 1500 ms)
for --seconds (default 30).

Bounds: every relay to B is answered Success and B's p99 during the faults stays within
--p99-bound-ms (default 50) of the baseline p99 measured in the same run; every relay to a faulty
home gets a TS002 answer (HTTP 200 with a ResultCode; the slow home's are Success) no later than
its endpoint timeout + 1 s; roamhubd exits cleanly.

  python3 tools/reliability/peer_faults.py
"""
import argparse
import http.server
import threading
import time

import rel_common as R

HUNG, SLOW, GARBAGE = "000909", "000b0b", "000d0d"
PHY = {HUNG: "40" "01000012" "00" "0100" "01" "aabb" "01020304",     # DevAddr 12000001
       SLOW: "40" "01000016" "00" "0100" "01" "aabb" "01020304",     # DevAddr 16000001
       GARBAGE: "40" "0100001a" "00" "0100" "01" "aabb" "01020304"}  # DevAddr 1A000001
BLOCKS = {HUNG: "12000000/7", SLOW: "16000000/7", GARBAGE: "1A000000/7"}


class GarbagePeer:
    """A home network endpoint that answers every request with 200 and a body that is not JSON."""
    mode = "sync"
    timeout_ms = 1500

    def __init__(self, name, net_id, key):
        self.name, self.net_id, self.key = name, net_id, key

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                junk = b'{"ProtocolVersion": "1.0", "Result": \x00\xff garbage'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(junk)))
                self.end_headers()
                self.wfile.write(junk)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.port

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def fault_sender(w, net_id, rate, stop, out):
    """Relays to one faulty home at `rate`/s, each on its own thread (they may take seconds)."""
    def one():
        cl = R.Client(w.hub, w.a.key, timeout=10)
        st, ans, el = cl.post(R.H.pr_start_req(R.A, net_id, PHY[net_id]))
        cl.close()
        with lock:
            out.append((st, R.result_code(ans), el))
    lock = threading.Lock()
    threads = []
    while not stop.is_set():
        t = threading.Thread(target=one, daemon=True)
        t.start()
        threads.append(t)
        stop.wait(1.0 / rate)
    for t in threads:
        t.join(timeout=15)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=40)
    ap.add_argument("--fault-rate", type=float, default=20)
    ap.add_argument("--baseline-s", type=float, default=10)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--slow-ms", type=int, default=1000)
    ap.add_argument("--p99-bound-ms", type=float, default=50)
    args = ap.parse_args()

    hung = R.quiet_member("netHung", HUNG, "key-hung-0123456789", mode="hang")
    hung.timeout_ms = 800

    def slow_answer(req):
        time.sleep(args.slow_ms / 1000.0)
        return R.home_answer(req)
    slow = R.quiet_member("netSlow", SLOW, "key-slow-0123456789", answer_fn=slow_answer)
    slow.timeout_ms = 1500
    garbage = GarbagePeer("netGarbage", GARBAGE, "key-garbage-0123456789")
    w = R.World(extra_homes=[(hung, BLOCKS[HUNG]), (slow, BLOCKS[SLOW]), (garbage, BLOCKS[GARBAGE])])

    base = R.Load(w, [(R.B, R.DEVADDR_B)], args.rate, threads=2).start()
    time.sleep(args.baseline_s)
    base.stop()

    load = R.Load(w, [(R.B, R.DEVADDR_B)], args.rate, threads=2).start()
    stop = threading.Event()
    results = {HUNG: [], SLOW: [], GARBAGE: []}
    senders = [threading.Thread(target=fault_sender, args=(w, n, args.fault_rate, stop, results[n]))
               for n in results]
    for t in senders:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in senders:
        t.join()
    load.stop()
    hung.stopping.set()
    exit_problem = w.close()

    timeouts = {HUNG: 0.8, SLOW: 1.5, GARBAGE: 1.5}
    faults, bounds = {}, []
    for name, n in (("hung", HUNG), ("slow", SLOW), ("garbage", GARBAGE)):
        rs = results[n]
        codes = {}
        for st, code, _ in rs:
            k = code if st == 200 and code else ("http %d" % st if st else "transport")
            codes[k] = codes.get(k, 0) + 1
        els = [el for _, _, el in rs]
        late = sum(1 for el in els if el > timeouts[n] + 1)
        unanswered = sum(1 for st, code, _ in rs if st != 200 or not code)
        faults[name] = {"sent": len(rs), "answers": codes, "p50_ms": R.ms(R.percentile(els, 50)),
                        "max_ms": R.ms(max(els or [0])), "later_than_timeout_plus_1s": late}
        ok = unanswered == 0 and late == 0 and len(rs) > 0
        if name == "slow":
            ok = ok and codes.get("Success", 0) == len(rs)
        bounds.append(("%s home: %d relays, each answered by the hub within %.1f s + 1 s%s "
                       "(%d without a TS002 answer, %d late)"
                       % (name, len(rs), timeouts[n], ", Success" if name == "slow" else "",
                          unanswered, late), ok))
    bsum, lsum = base.summary(), load.summary()
    bp99, lp99 = bsum["latency_ms"][R.B]["p99"], lsum["latency_ms"][R.B]["p99"]
    figures = {"baseline_B": bsum, "during_faults_B": lsum, "faulty_homes": faults,
               "hub_exit": exit_problem or "clean"}
    bounds += [
        ("every relay to B answered Success (%d lost of %d)" % (base.lost() + load.lost(),
                                                                bsum["sent"] + lsum["sent"]),
         base.lost() == 0 and load.lost() == 0),
        ("B p99 during the faults %.1f ms <= baseline %.1f ms + %.0f ms" % (lp99, bp99, args.p99_bound_ms),
         lp99 <= bp99 + args.p99_bound_ms),
        ("roamhubd exited cleanly", exit_problem is None),
    ]
    R.report("peer_faults", figures, bounds)


if __name__ == "__main__":
    main()
