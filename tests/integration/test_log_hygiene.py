"""roamhubd's log under hostile client input (issue 16 items 4 and 11, issue 17 "Logs"): every line
is valid logfmt (or JSON with log_format json) whatever a client sends, a client value can neither
add a key nor break a line, and a line a client can trigger is rate-limited with the suppressed
lines counted."""
import json
import os
import socket
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (AdminClient, Hub, Member, admin_config, member_records,  # noqa: E402
                             merge, pr_start_req)

A, B = "000202", "000505"
DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"
HOSTILE = 'x level=err sub=forged "quoted" back\\slash caf\u00e9'   # a client_id the hub logs


def parse_logfmt(line):
    """A strict logfmt parser (go-logfmt grammar): returns the list of (key, value) pairs or raises
    ValueError. Keys [a-z0-9_]+; values bare (no space, '=', '"', '\\' or control character) or
    double-quoted with \\" \\\\ \\n \\r \\t \\uXXXX escapes."""
    pairs, i, n = [], 0, len(line)
    while i < n:
        j = i
        while j < n and (line[j].islower() or line[j].isdigit() or line[j] == "_"):
            j += 1
        if j == i or j >= n or line[j] != "=":
            raise ValueError("bad key at %d: %r" % (i, line))
        key = line[i:j]
        i = j + 1
        if i < n and line[i] == '"':
            i += 1
            out = []
            while True:
                if i >= n:
                    raise ValueError("unterminated quote: %r" % line)
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if ord(c) < 0x20:
                    raise ValueError("raw control character in %r" % line)
                if c == "\\":
                    e = line[i + 1:i + 2]
                    if e in ('"', "\\"):
                        out.append(e)
                        i += 2
                    elif e in ("n", "r", "t"):
                        out.append({"n": "\n", "r": "\r", "t": "\t"}[e])
                        i += 2
                    elif e == "u":
                        out.append(chr(int(line[i + 2:i + 6], 16)))
                        i += 6
                    else:
                        raise ValueError("bad escape in %r" % line)
                else:
                    out.append(c)
                    i += 1
            value = "".join(out)
        else:
            j = i
            while j < n and line[j] != " ":
                if line[j] in '="\\' or ord(line[j]) < 0x20:
                    raise ValueError("bad bare value in %r" % line)
                j += 1
            value = line[i:j]
            i = j
        pairs.append((key, value))
        if i < n:
            if line[i] != " ":
                raise ValueError("no space after value in %r" % line)
            i += 1
    return pairs


def check_logfmt_log(test, text):
    """Every line parses, starts ts/level/sub/msg, repeats no key; returns the parsed lines."""
    lines = []
    for raw in text.splitlines():
        try:
            pairs = parse_logfmt(raw)
        except ValueError as e:
            test.fail("invalid logfmt line: %s" % e)
        keys = [k for k, _ in pairs]
        test.assertEqual(keys[:4], ["ts", "level", "sub", "msg"], raw)
        test.assertEqual(len(keys), len(set(keys)), "a key is repeated: " + raw)
        test.assertIn(pairs[1][1], ("err", "warn", "info", "debug"), raw)
        lines.append(dict(pairs))
    return lines


def hostile_traffic(hub, api, a):
    """Client input a remote party controls, sent to both listeners."""
    # /oauth/token: the client_id is logged when refused
    form = "grant_type=client_credentials&client_id=%s&client_secret=nope" % urllib.parse.quote(HOSTILE)
    api.raw("POST", "/api/v1/oauth/token", form, {"Content-Type": "application/x-www-form-urlencoded"})
    # malformed HTTP, a request that is not JSON, a forged SenderID, bytes that are not UTF-8
    for raw in (b"GARBAGE \"x level=err\r\n\r\n", b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n\xff\"\n"):
        s = socket.create_connection(("127.0.0.1", hub.port), timeout=3)
        s.sendall(raw)
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()
    hub.post(None, a.key, raw=b'{"MessageType": "PRStartReq\\" level=err"}')
    hub.post(pr_start_req(B, A, DATA_APP_B), a.key)   # A's key, claiming B's NetID
    req = pr_start_req(A, B, DATA_APP_B)
    req["SenderID"] = HOSTILE
    hub.post(req, a.key)


class LogHygieneTest(unittest.TestCase):
    def setUp(self):
        self.a = Member("netA", A, "key-A-0123456789")
        self.b = Member("netB", B, "key-B-0123456789")
        self.hubs = []

    def tearDown(self):
        for h in self.hubs:
            h.cleanup()
        self.a.stop()
        self.b.stop()

    def start(self, **cfg):
        d = {"admin": admin_config(), "log_level": "debug"}
        d.update(cfg)
        hub = Hub(merge(member_records(self.a), member_records(self.b)), config=d, workers=1)
        self.hubs.append(hub)
        self.a.hub = hub
        return hub

    def test_every_line_is_logfmt_and_client_values_cannot_forge_keys(self):
        hub = self.start()
        api = AdminClient(hub)
        hostile_traffic(hub, api, self.a)
        hub.stop()
        lines = check_logfmt_log(self, hub.logs())
        refused = [l for l in lines if l["msg"] == "token refused"]
        self.assertEqual(len(refused), 1, hub.logs())
        self.assertEqual(refused[0]["client"], HOSTILE)
        self.assertEqual(refused[0]["level"], "info")       # not the forged "err"
        self.assertEqual(refused[0]["sub"], "admin")        # not the forged "forged"
        self.assertTrue(any(l["msg"] == "bad request" for l in lines), hub.logs())

    def test_json_lines(self):
        hub = self.start(log_format="json")
        api = AdminClient(hub)
        hostile_traffic(hub, api, self.a)
        hub.stop()
        objs = []
        for raw in hub.logs().splitlines():
            def no_dup(pairs):
                keys = [k for k, _ in pairs]
                self.assertEqual(len(keys), len(set(keys)), raw)
                return dict(pairs)
            o = json.loads(raw, object_pairs_hook=no_dup)
            self.assertEqual(list(o)[:4], ["ts", "level", "sub", "msg"], raw)
            objs.append(o)
        refused = [o for o in objs if o["msg"] == "token refused"]
        self.assertEqual(len(refused), 1)
        self.assertEqual(refused[0]["client"], HOSTILE)
        self.assertEqual(refused[0]["level"], "info")
        listening = [o for o in objs if o["msg"] == "listening"]
        self.assertEqual(len(listening), 1)
        self.assertIsInstance(listening[0]["workers"], int)

    def test_remote_triggered_lines_are_rate_limited(self):
        hub = self.start(log_level="info")
        sent = 400
        for _ in range(sent):   # each a malformed request on its own connection: one line each
            s = socket.create_connection(("127.0.0.1", hub.port), timeout=3)
            s.sendall(b"BAD\r\n\r\n")
            try:
                s.recv(1024)
            except OSError:
                pass
            s.close()
        hub.stop()   # the last window's count is reported at exit
        lines = check_logfmt_log(self, hub.logs())
        written = [l for l in lines if l["msg"] == "bad request"]
        reports = [l for l in lines if l["msg"] == "log lines suppressed" and l["of"] == "bad request"]
        suppressed = sum(int(r["suppressed"]) for r in reports)
        self.assertGreater(suppressed, 0)
        self.assertEqual(len(written) + suppressed, sent)   # nothing lost from the count
        self.assertLessEqual(len(written), 20 * (len(reports) + 1))
        self.assertTrue(all(r["site"].startswith("http_server.c:") for r in reports))


if __name__ == "__main__":
    unittest.main()
