"""Authorization matrix of the admin API against the real roamhubd: for every resource and verb,
the operator, the owning member, another member, no token, an expired token and a token with a
wrong signature get the expected status; and no response to the other member ever contains the
owning member's NetID or object IDs."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import jwt_attacks as J  # noqa: E402
from roamhub_harness import AdminClient, Hub, admin_config, sha256_hex  # noqa: E402

A, B = "000013", "000505"          # owner member A, other member B
A_PREFIX = 0x26000000              # 000013 -> DevAddr 26000000/7
TABLE = {
    "networks": [{"net_id": A, "name": "Alpha"}, {"net_id": B, "name": "Beta"}],
    "members": [{"id": "mem-alpha", "net_ids": [A], "api_key_hashes": [sha256_hex("ka-0123456789")]},
                {"id": "mem-beta", "net_ids": [B], "api_key_hashes": [sha256_hex("kb-0123456789")]}],
    "devaddr_blocks": [{"prefix": "0a000000/7", "net_id": B}],
    "policies": [{"forwarder_net_id": B, "uplink": {"join_request": True}, "downlink": {}}],
}


def A_record(kind, i):
    """A fresh record owned by member A (unique per i): (create body, key path)."""
    if kind == "tenants":
        return {"net_id": A, "tenant_id": "t%d" % i, "name": "T"}, "/tenants/%s/t%d" % (A, i)
    if kind == "devaddr-blocks":
        p = "%08x" % (A_PREFIX | (i << 16))
        return {"prefix": p + "/16", "net_id": A}, "/devaddr-blocks/%s/16" % p
    if kind == "join-routes":
        e = "70b3d57ed0%02x0000" % i
        return {"join_eui": e + "/48", "home_net_id": A}, "/join-routes/%s/48" % e
    if kind == "policies":
        return ({"forwarder_net_id": A, "forwarder_tenant_id": "p%d" % i,
                 "uplink": {"join_request": True}, "downlink": {}},
                "/policies/%s/default?forwarder_tenant_id=p%d" % (A, i))
    if kind == "endpoints":
        return ({"id": "alpha-ep-%d" % i, "net_id": A, "tenant_id": "e%d" % i,
                 "url": "http://127.0.0.1:9/", "timeout_ms": 500}, "/endpoints/alpha-ep-%d" % i)
    raise KeyError(kind)


GENERIC = ["tenants", "devaddr-blocks", "join-routes", "policies", "endpoints"]
PRINCIPALS = ["operator", "own", "other", "none", "expired", "badsig"]
UNAUTH = {"none", "expired", "badsig"}


class AuthzMatrix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cfg = admin_config()
        cls.hub = Hub(TABLE, config={"admin": cfg}, workers=1)
        cls.c = AdminClient(cls.hub)
        with open(cfg["jwt_secret_file"]) as f:
            secret = f.read().strip()
        op = cls.c.token(cls.c.operator_key())
        ka, cls.key_a = cls.c.create_key(op, net_id=A, rights=["RIGHT_ADMIN"], name="alpha admin")
        kb, cls.key_b = cls.c.create_key(op, net_id=B, rights=["RIGHT_ADMIN"], name="beta admin")
        now = int(time.time())
        cls.tokens = {
            "operator": op, "own": cls.c.token(ka), "other": cls.c.token(kb), "none": None,
            "expired": J.hs(secret, {"alg": "HS256", "typ": "JWT"},
                            J.claims(cls.key_a, now, exp=now - 600, iat=now - 900, nbf=now - 900)),
            "badsig": J.hs(secret + "!", {"alg": "HS256", "typ": "JWT"}, J.claims(cls.key_a)),
        }
        cls.n = 0
        cls.other_bodies = []  # every response member B got

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()

    def req(self, who, method, path, body=None):
        st, data, _ = self.c.call(method, path, body, self.tokens[who])
        if who == "other":
            self.other_bodies.append((method, path, st, data if isinstance(data, bytes)
                                      else json.dumps(data).encode()))
        return st, data

    def fresh(self, kind):
        AuthzMatrix.n += 1
        body, path = A_record(kind, AuthzMatrix.n)
        st, data = self.req("operator", "POST", "/" + kind, body)
        self.assertEqual(st, 201, data)
        return body, path

    def expect(self, who, method, path, body, want):
        st, data = self.req(who, method, path, body)
        self.assertEqual(st, want, "%s %s %s -> %d %s" % (who, method, path, st, data))
        return data

    def test_generic_resources(self):
        for kind in GENERIC:
            for who in PRINCIPALS:
                with self.subTest(kind=kind, who=who):
                    u = who in UNAUTH
                    # list
                    body, path = self.fresh(kind)
                    data = self.expect(who, "GET", "/" + kind, None, 401 if u else 200)
                    if who == "other":
                        self.assertNotIn(A, json.dumps(data))
                    if who == "own":
                        self.assertIn(A, json.dumps(data))
                    # get
                    self.expect(who, "GET", path, None, 401 if u else 404 if who == "other" else 200)
                    # create (a record in A's NetID)
                    AuthzMatrix.n += 1
                    nb, npath = A_record(kind, AuthzMatrix.n)
                    self.expect(who, "POST", "/" + kind, nb,
                                401 if u else 403 if who == "other" else 201)
                    # update
                    upd = dict(body)
                    if kind in ("tenants",):
                        upd["name"] = "changed"
                    elif kind == "endpoints":
                        upd["timeout_ms"] = 700
                    elif kind == "policies":
                        upd["uplink"] = {"join_request": True, "mac_data": True}
                    elif kind == "devaddr-blocks":
                        upd["cluster_id"] = "eu1"
                    elif kind == "join-routes":
                        upd["home_tenant_id"] = "x"
                    self.expect(who, "PUT", path, upd, 401 if u else 404 if who == "other" else 200)
                    # delete
                    self.expect(who, "DELETE", path, None,
                                401 if u else 404 if who == "other" else 204)
                    # what other members and unauthenticated callers tried left it in place
                    st, _ = self.req("operator", "GET", path)
                    self.assertEqual(st, 404 if who in ("operator", "own") else 200)

    def test_networks(self):
        for who in PRINCIPALS:
            with self.subTest(who=who):
                u = who in UNAUTH
                self.expect(who, "GET", "/networks", None, 401 if u else 200)
                self.expect(who, "GET", "/networks/" + A, None,
                            401 if u else 404 if who == "other" else 200)
                AuthzMatrix.n += 1
                fresh = "0001%02x" % AuthzMatrix.n
                self.expect(who, "POST", "/networks", {"net_id": fresh, "name": "N"},
                            401 if u else 201 if who == "operator" else 403)
                self.expect(who, "PUT", "/networks/" + A, {"name": "Alpha", "listed": False},
                            401 if u else 404 if who == "other" else 200)
                # a member may not change its delegated NetIDs
                if who == "own":
                    self.expect(who, "PUT", "/networks/" + A,
                                {"name": "Alpha", "delegated_net_ids": ["000999"]}, 403)
                target = A if who != "operator" else fresh
                self.expect(who, "DELETE", "/networks/" + target, None,
                            401 if u else 204 if who == "operator" else
                            404 if who == "other" else 403)

    def test_members_operator_only(self):
        rec = {"id": "mem-x", "net_ids": ["000777"]}
        for who in PRINCIPALS:
            with self.subTest(who=who):
                u = who in UNAUTH
                op = who == "operator"
                self.expect(who, "GET", "/members", None, 401 if u else 200 if op else 403)
                self.expect(who, "GET", "/members/mem-alpha", None, 401 if u else 200 if op else 403)
                self.expect(who, "POST", "/members", rec, 401 if u else 201 if op else 403)
                self.expect(who, "PUT", "/members/mem-x", rec, 401 if u else 200 if op else 403)
                self.expect(who, "DELETE", "/members/mem-x", None, 401 if u else 204 if op else 403)

    def test_keys(self):
        for who in PRINCIPALS:
            with self.subTest(who=who):
                u = who in UNAUTH
                op = self.tokens["operator"]
                _, kid = self.c.create_key(op, net_id=A, rights=["RIGHT_READ_TRAFFIC"])
                data = self.expect(who, "GET", "/keys", None, 401 if u else 200)
                if who == "other":
                    self.assertNotIn(kid, json.dumps(data))
                self.expect(who, "GET", "/keys/" + kid, None,
                            401 if u else 404 if who == "other" else 200)
                st, data = self.req(who, "POST", "/keys",
                                    {"net_id": A, "rights": ["RIGHT_READ_TRAFFIC"]})
                self.assertEqual(st, 401 if u else 403 if who == "other" else 201, data)
                if st == 201:
                    self.assertEqual(len(data["secret"]), 64)
                self.expect(who, "PUT", "/keys/" + kid, {}, 401 if u else 405)
                self.expect(who, "DELETE", "/keys/" + kid, None,
                            401 if u else 404 if who == "other" else 200)
        # a member cannot mint operator keys or more rights than its own
        ro, _ = self.c.create_key(self.tokens["operator"], net_id=A, rights=["RIGHT_READ_NETWORK"])
        rot = self.c.token(ro)
        self.assertEqual(self.c.call("POST", "/keys", {"operator": True, "rights": ["RIGHT_ADMIN"]},
                                     self.tokens["own"])[0], 403)
        self.assertEqual(self.c.call("POST", "/keys", {"net_id": A, "rights": ["RIGHT_ADMIN"]},
                                     rot)[0], 403)

    def test_rights_are_enforced(self):
        ro, _ = self.c.create_key(self.tokens["operator"], net_id=A, rights=["RIGHT_READ_NETWORK"])
        t = self.c.token(ro)
        self.assertEqual(self.c.call("GET", "/networks", token=t)[0], 200)
        self.assertEqual(self.c.call("GET", "/devaddr-blocks", token=t)[0], 403)
        self.assertEqual(self.c.call("GET", "/stats", token=t)[0], 403)
        st, data, _ = self.c.call("PUT", "/networks/" + A, {"name": "x"}, t)
        self.assertEqual(st, 403)
        self.assertIn("RIGHT_WRITE_NETWORK", data["error"]["message"])
        self.assertEqual(self.c.call("GET", "/audit", token=self.tokens["own"])[0], 403)
        self.assertEqual(self.c.call("GET", "/audit", token=self.tokens["operator"])[0], 200)

    def test_other_views(self):
        # route view: A's block is invisible to B; catalog lists only listed networks
        self.req("operator", "POST", "/devaddr-blocks", {"prefix": "26ff0000/16", "net_id": A})
        self.assertEqual(self.req("own", "GET", "/routes?devaddr=26ff0001")[0], 200)
        self.assertEqual(self.req("other", "GET", "/routes?devaddr=26ff0001")[0], 404)
        st, data = self.req("other", "GET", "/catalog")
        self.assertEqual(st, 200)
        # effective policies: B sees only grants to itself (A grants B nothing)
        st, data = self.req("other", "GET", "/policies/effective")
        self.assertEqual(st, 200)
        self.assertEqual(self.req("other", "GET",
                                  "/policies/effective?forwarder_net_id=%s&home_net_id=000707" % A)[0],
                         404)
        # a block overlapping A's space, created by B: refused without naming A's block
        st, data = self.req("other", "POST", "/devaddr-blocks", {"prefix": "26ff0000/16", "net_id": B})
        self.assertIn(st, (400, 409, 422))

    def test_zz_no_leaks_to_other_member(self):
        # runs last (alphabetical): every response member B got
        self.assertGreater(len(self.other_bodies), 20)
        ids = [A, "alpha-ep-", "mem-alpha", self.key_a, "Alpha", "70b3d57ed0"]
        for method, path, st, body in self.other_bodies:
            if path.startswith("/catalog"):
                continue  # the public catalog (A is not listed here anyway)
            for s in ids:
                self.assertNotIn(s.encode(), body, "%s %s -> %d leaked %s: %s" %
                                 (method, path, st, s, body[:300]))


if __name__ == "__main__":
    unittest.main()
