"""Large statistics queries against the real roamhubd (issue 18 item 3): the answer is paged with an
explicit continuation (JSON next_page_token and the X-Next-Page-Token header, also for CSV),
following it delivers every row of the range exactly once (no silent cap), roamctl follows it,
and /healthz keeps answering while a large page is computed (the query runs off the admin loop).

The database is filled before the hub starts with tools/bench-stats (rp_stats_add, the same
write path as the hub's flush): PAIRS (forwarder, home) pairs, one bucket per pair and minute
for one day."""
import csv
import http.client
import io
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import BUILD, AdminClient, Hub, admin_config  # noqa: E402

PAIRS = 100
MINUTES = 1440


class StatsPaging(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hub = Hub({"networks": [{"net_id": "000013", "name": "op"}]},
                      config={"admin": admin_config()})
        cls.hub.stop()
        cls.end = int(time.time()) // 60 - 10
        cls.start = cls.end - MINUTES
        out = subprocess.run([os.path.join(BUILD, "tools", "bench-stats"), "fill",
                              cls.hub.config["database"]["path"], str(PAIRS), "1", "1",
                              str(cls.end)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert int(out.stdout) == PAIRS * MINUTES, out.stdout
        cls.hub.start()
        cls.api = AdminClient(cls.hub)
        cls.key = cls.api.operator_key()
        cls.op = cls.api.token(cls.key)

    @classmethod
    def tearDownClass(cls):
        rc = cls.hub.stop()
        logs = cls.hub.logs()
        cls.hub.cleanup()
        assert rc == 0, "roamhubd exited %s:\n%s" % (rc, logs[-3000:])
        assert "ERROR: AddressSanitizer" not in logs and "runtime error" not in logs, logs[-3000:]

    def get(self, query, accept_gzip=False):
        h = {"Authorization": "Bearer " + self.op}
        if not accept_gzip:
            h["Accept-Encoding"] = "identity"
        return self.api.raw("GET", "/api/v1/stats?" + query, headers=h, timeout=60)

    def range_q(self, by, limit, fmt="json"):
        return "from=%d&to=%d&by=%s&limit=%d&format=%s" % (self.start * 60, self.end * 60, by,
                                                           limit, fmt)

    def follow_json(self, by, limit):
        rows, pages, token = [], 0, ""
        while True:
            q = self.range_q(by, limit)
            if token:
                q += "&page_token=" + urllib.parse.quote(token)
            st, data, hd = self.get(q)
            self.assertEqual(st, 200, data[:300])
            body = json.loads(data)
            self.assertLessEqual(len(body["items"]), limit)
            self.assertEqual(hd.get("x-next-page-token", ""), body["next_page_token"])
            rows += body["items"]
            pages += 1
            token = body["next_page_token"]
            if not token:
                return rows, pages
            self.assertLess(pages, 1000)

    def assert_each_once(self, rows, want_periods):
        keys = [(r["period_start"], r["forwarder"], r["home"]) for r in rows]
        self.assertEqual(len(keys), len(set(keys)), "a row was delivered twice")
        self.assertEqual(len(keys), PAIRS * want_periods)
        self.assertEqual(sum(int(r["count"]) for r in rows), PAIRS * MINUTES * 10)

    def test_json_pages_cover_every_row_once(self):
        rows, pages = self.follow_json("minute", 7000)
        # a page may also end early at its time budget (slow machine, sanitizers): never fewer
        self.assertGreaterEqual(pages, (PAIRS * MINUTES + 6999) // 7000)
        self.assert_each_once(rows, MINUTES)
        hours = len({m // 60 for m in range(self.start, self.end)})
        rows, _ = self.follow_json("hour", 333)
        self.assert_each_once(rows, hours)
        days = len({m // 1440 for m in range(self.start, self.end)})
        rows, pages = self.follow_json("day", 100000)
        self.assert_each_once(rows, days)

    def test_csv_pages_and_header(self):
        rows, token, pages = [], "", 0
        while True:
            q = self.range_q("hour", 500, "csv")
            if token:
                q += "&page_token=" + urllib.parse.quote(token)
            st, data, hd = self.get(q, accept_gzip=True)
            self.assertEqual(st, 200, data[:300])
            if hd.get("content-encoding") == "gzip":
                import gzip
                data = gzip.decompress(data)
            page = list(csv.DictReader(io.StringIO(data.decode())))
            self.assertLessEqual(len(page), 500)
            rows += page
            pages += 1
            token = hd.get("x-next-page-token", "")
            if not token:
                break
        self.assertGreater(pages, 1)
        hours = len({m // 60 for m in range(self.start, self.end)})
        self.assert_each_once(rows, hours)

    def test_bad_page_tokens_and_limits(self):
        st, data, _ = self.get(self.range_q("hour", 10))
        token = json.loads(data)["next_page_token"]
        self.assertTrue(token)
        # the token belongs to the hourly query: refused for the daily one, naming the field
        st, data, _ = self.get(self.range_q("day", 10) + "&page_token=" + token)
        self.assertEqual(st, 400)
        self.assertIn("page_token", json.loads(data)["error"]["message"])
        st, data, _ = self.get(self.range_q("hour", 10) + "&page_token=xyz")
        self.assertEqual(st, 400)
        self.assertIn("page_token: malformed", json.loads(data)["error"]["message"])
        for bad in ("0", "100001", "ten"):
            st, data, _ = self.get("by=hour&limit=" + bad)
            self.assertEqual(st, 400)
            self.assertIn("limit", json.loads(data)["error"]["message"])

    def test_roamctl_follows_the_pages(self):
        exe = os.path.join(BUILD, "tools", "roamctl")
        env = dict(os.environ, ROAMCTL_URL="http://127.0.0.1:%d" % self.hub.admin_port,
                   ROAMCTL_KEY=self.key, ROAMCTL_CONFIG="/nonexistent")
        out = subprocess.run([exe, "--json", "stats", "--from", str(self.start * 60), "--to",
                              str(self.end * 60), "--by", "hour", "--limit", "250"],
                             capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        body = json.loads(out.stdout)
        self.assertEqual(body["next_page_token"], "")
        hours = len({m // 60 for m in range(self.start, self.end)})
        self.assert_each_once(body["items"], hours)
        out = subprocess.run([exe, "stats", "--from", str(self.start * 60), "--to",
                              str(self.end * 60), "--by", "hour", "--limit", "250", "--format",
                              "csv"], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(sum(1 for ln in lines if ln.startswith("period_start,")), 1)
        self.assertEqual(len(lines) - 1, PAIRS * hours)
        out = subprocess.run([exe, "stats", "--from", str(self.start * 60), "--to",
                              str(self.end * 60), "--by", "hour", "--limit", "250",
                              "--max-pages", "2"], capture_output=True, text=True, timeout=60,
                             env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("stopped after 2 pages", out.stderr)

    def test_healthz_answers_during_a_large_query(self):
        result = {}

        def big():
            conn = http.client.HTTPConnection("127.0.0.1", self.hub.admin_port, timeout=60)
            t0 = time.time()
            conn.request("GET", "/api/v1/stats?" + self.range_q("minute", 100000),
                         headers={"Authorization": "Bearer " + self.op,
                                  "Accept-Encoding": "identity"})
            r = conn.getresponse()  # returns with the status line: the page is computed
            t1 = time.time()
            data = r.read()
            conn.close()
            result["status"], result["rows"] = r.status, len(json.loads(data)["items"])
            result["t"] = (t0, t1)

        answered = []
        th = threading.Thread(target=big)
        th.start()
        while th.is_alive():
            st, _ = self.hub.get_admin("/healthz")
            self.assertEqual(st, 200)
            answered.append(time.time())
            time.sleep(0.005)
        th.join()
        self.assertEqual(result["status"], 200)
        # 100,000 rows, or fewer if the page reached its 2 s budget first (sanitizer builds)
        self.assertGreater(result["rows"], 0)
        self.assertLessEqual(result["rows"], 100000)
        t0, t1 = result["t"]
        during = [t for t in answered if t0 < t < t1]
        # The page (100,000 rows formatted as JSON) is computed off the admin loop: /healthz
        # answers while it runs. On the loop, no /healthz could complete between the request
        # and its status line (at most one already in progress when it arrived).
        self.assertGreaterEqual(len(during), 5, "healthz answers during the query: %d" % len(during))


if __name__ == "__main__":
    unittest.main()
