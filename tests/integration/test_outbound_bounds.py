"""Connection bounds towards home networks (issue 18 item 5; docs/CONFIG.md
relay.outbound_connections_per_endpoint / _total) in the real roamhubd: with one connection per
endpoint, requests beyond it wait for that connection (FIFO, within the endpoint's max_in_flight)
and are answered in turn once it frees; beyond max_in_flight they are refused at once with
ResultCode Other "receiver unavailable ..."; a waiting request keeps its deadline (answered Other
when it passes, never left hanging); the home network never sees more connections than the
bound. The daemon is stopped by the harness, which fails on an unclean exit or a sanitizer
report (leaks included under ASan)."""
import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import Hub, Member, answer, member_records, merge, pr_start_req  # noqa: E402

A, B = "000202", "000505"
DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"   # DevAddr 0A000001, FPort 1


class HeldHome:
    """A home network's HTTP/1.1 endpoint on raw sockets that holds every request until
    release() (or answers at once after it), counting connections and requests in progress."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d/" % self.port
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.accepted = self.open = self.max_open = 0
        self.busy = self.max_busy = self.received = 0
        self.stopping = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.open += 1
                self.max_open = max(self.max_open, self.open)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                n = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        n = int(v)
                while len(buf) < n:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                body, buf = buf[:n], buf[n:]
                with self.lock:
                    self.received += 1
                    self.busy += 1
                    self.max_busy = max(self.max_busy, self.busy)
                self.released.wait(30)
                req = json.loads(body)
                out = json.dumps(answer(req, "Success", DevEUI="0102030405060708",
                                        Lifetime=0)).encode()
                with self.lock:
                    self.busy -= 1
                if not self.released.is_set():  # held past the hub's deadline: drop it
                    return
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(out), out))
        except OSError:
            return
        finally:
            c.close()
            with self.lock:
                self.open -= 1

    def stop(self):
        self.stopping = True
        self.released.set()
        self.sock.close()


def wait_for(cond, what, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("timed out waiting for " + what)


class OutboundBounds(unittest.TestCase):
    def start(self, timeout_ms, max_in_flight=3):
        self.home = HeldHome()
        self.a = Member("netA", A, "key-A-0123456789")
        b = Member("netB", B, "key-B-0123456789")
        b.stop()  # only its records: its endpoint is the held home
        recs = member_records(b)
        recs["endpoints"][0].update(url=self.home.url, timeout_ms=timeout_ms,
                                    max_in_flight=max_in_flight)
        table = merge(member_records(self.a), recs,
                      {"devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B}],
                       "policies": [{"forwarder_net_id": A,
                                     "uplink": {"application_data": True}}]})
        # one worker: the bounds below are that worker's (each worker gets its share)
        self.hub = Hub(table, workers=1,
                       config={"relay": {"outbound_connections_per_endpoint": 1,
                                         "outbound_connections_total": 4}})
        self.a.hub = self.hub
        self.addCleanup(self.a.stop)
        self.addCleanup(self.home.stop)
        self.addCleanup(self.hub.cleanup)

    def send_many(self, n):
        results = [None] * n

        def one(i):
            st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key, timeout=20)
            results[i] = (st, ans["Result"]["ResultCode"], ans["Result"].get("Description", ""))
        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        return results, ts

    def test_requests_wait_for_the_connection_then_refused_beyond_in_flight(self):
        self.start(timeout_ms=8000, max_in_flight=3)
        results, ts = self.send_many(5)
        # 1 on the one connection, 2 waiting for it, 2 refused at once
        wait_for(lambda: sum(1 for r in results if r) == 2, "the two refusals")
        for st, code, desc in [r for r in results if r]:
            self.assertEqual((st, code), (200, "Other"))
            self.assertIn("receiver unavailable", desc)
        wait_for(lambda: self.home.received == 1, "the first request at the home network")
        time.sleep(0.2)  # the waiting two stay waiting: still one request, one connection
        self.assertEqual((self.home.received, self.home.accepted), (1, 1))
        self.home.released.set()
        for t in ts:
            t.join()
        codes = sorted(code for _, code, _ in results)
        self.assertEqual(codes, ["Other", "Other", "Success", "Success", "Success"])
        self.assertEqual(self.home.received, 3)
        self.assertEqual(self.home.accepted, 1)   # all three over the one connection
        self.assertEqual(self.home.max_busy, 1)

    def test_a_waiting_request_keeps_its_deadline(self):
        self.start(timeout_ms=1000, max_in_flight=2)
        t0 = time.time()
        results, ts = self.send_many(2)   # one on the connection, one waiting for it
        for t in ts:
            t.join()
        # both answered (not left hanging) with the failure code, within a few deadlines
        self.assertEqual([r[:2] for r in results], [(200, "Other")] * 2)
        self.assertLess(time.time() - t0, 10)
        # the home saw at most the two requests, one connection at a time on the hub's side (the
        # waiting one may take a new connection once the timed-out one is closed; this stub's
        # thread, still holding the first request, notices that close only later)
        self.assertLessEqual(self.home.received, 2)
        # the connection that timed out is not reused; a fresh one serves the next request
        self.home.released.set()
        st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        self.assertEqual((st, ans["Result"]["ResultCode"]), (200, "Success"))


if __name__ == "__main__":
    unittest.main()
