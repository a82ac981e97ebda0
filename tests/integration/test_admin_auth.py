"""Admin API authentication against the real roamhubd: the JWT attack corpus (jwt_attacks.py)
must be refused with 401 on HS256, ES256 and RS256 hubs; valid tokens (issued by the hub, or
signed with the openssl CLI) are accepted; revoked keys stop working at once."""
import base64
import json
import os
import shutil
import sys
import tempfile
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import jwt_attacks as J  # noqa: E402
from roamhub_harness import AdminClient, Hub, admin_config  # noqa: E402

TABLE = {"networks": [{"net_id": "000013", "name": "Op"}]}


class HS256Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cfg = admin_config(max_header_bytes=32768)
        cls.hub = Hub(TABLE, config={"admin": cfg}, workers=1)
        cls.c = AdminClient(cls.hub)
        with open(cfg["jwt_secret_file"]) as f:
            cls.secret = f.read().strip()
        cls.op_key = cls.c.operator_key()
        cls.op_id = cls.op_key.split(":")[0]

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()

    def whoami(self, token):
        return self.c.raw("GET", "/api/v1/whoami", headers={"Authorization": "Bearer " + token})

    def test_valid_tokens_accepted(self):
        st, _, _ = self.whoami(J.hs(self.secret, {"alg": "HS256", "typ": "JWT"},
                                    J.claims(self.op_id)))
        self.assertEqual(st, 200)
        st, body, _ = self.c.call("GET", "/whoami", token=self.c.token(self.op_key))
        self.assertEqual(st, 200)
        self.assertEqual(body["key_id"], self.op_id)
        self.assertTrue(body["operator"])

    def test_attack_corpus_refused(self):
        attacks = J.hs256_attacks(self.secret, self.op_id)
        self.assertGreater(len(attacks), 30)
        for name, tok in attacks:
            with self.subTest(attack=name):
                st, body, hd = self.whoami(tok)
                self.assertEqual(st, 401, "%s accepted: %s" % (name, body[:200]))
                self.assertIn(b'"code":401', body)
                self.assertIn("bearer", hd.get("www-authenticate", "").lower())
                self.assertNotIn(tok.encode()[:40] if tok else b"\x00", body)  # never echoed

    def test_missing_and_malformed_authorization(self):
        for h in ({}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer"},
                  {"Authorization": "Bearer "}):
            st, _, _ = self.c.raw("GET", "/api/v1/networks", headers=h)
            self.assertEqual(st, 401, h)

    def test_token_endpoint(self):
        kid, secret = self.op_key.split(":", 1)
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": kid,
                                       "client_secret": secret + "x"})
        st, body, _ = self.c.raw("POST", "/api/v1/oauth/token", form,
                                 {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 401)
        self.assertNotIn(secret.encode(), body)
        form = urllib.parse.urlencode({"grant_type": "password", "client_id": kid,
                                       "client_secret": secret})
        st, body, _ = self.c.raw("POST", "/api/v1/oauth/token", form, {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["error"], "unsupported_grant_type")  # RFC 6749 §5.2
        basic = base64.b64encode(self.op_key.encode()).decode()
        st, body, _ = self.c.raw("POST", "/api/v1/oauth/token", "grant_type=client_credentials",
                                 {"Authorization": "Basic " + basic,
                                  "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200, body)
        tok = json.loads(body)
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertLessEqual(tok["expires_in"], 300)
        self.assertEqual(self.whoami(tok["access_token"])[0], 200)

    def test_revoked_key_stops_at_once(self):
        op = self.c.token(self.op_key)
        key, kid = self.c.create_key(op, net_id="000013", rights=["RIGHT_READ_NETWORK"])
        tok = self.c.token(key)
        self.assertEqual(self.c.call("GET", "/networks", token=tok)[0], 200)
        st, body, _ = self.c.call("DELETE", "/keys/" + kid, token=op)
        self.assertEqual(st, 200, body)
        self.assertNotEqual(body["revoked_at"], 0)
        st, body, _ = self.c.call("GET", "/networks", token=tok)
        self.assertEqual(st, 401)
        self.assertIn("revoked", body["error"]["message"])
        kid_, secret = key.split(":", 1)
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": kid_,
                                       "client_secret": secret})
        self.assertEqual(self.c.raw("POST", "/api/v1/oauth/token", form, {"Content-Type": "application/x-www-form-urlencoded"})[0], 401)

    def test_secrets_never_stored_in_clear(self):
        op = self.c.token(self.op_key)
        st, body, _ = self.c.call("GET", "/keys", token=op)
        self.assertEqual(st, 200)
        secret = self.op_key.split(":", 1)[1]
        for k in body["items"]:
            self.assertNotIn("secret_hash", k)
            self.assertNotIn("salt", k)
        self.assertNotIn(secret, self.hub.logs())
        st = os.stat(self.hub.config["admin"]["operator_key_file"]).st_mode & 0o777
        self.assertEqual(st, 0o600)


class AsymAuth(unittest.TestCase):
    """ES256 and RS256 hubs with keys generated by the openssl CLI."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="roamhub-jwtk-")
        cls.keys = J.openssl_keys(cls.dir)
        cls.hubs = {}
        for alg, k in (("ES256", "ec"), ("RS256", "rsa")):
            priv, pub = cls.keys[k]
            cfg = admin_config(jwt_alg=alg, jwt_public_key_file=pub, jwt_private_key_file=priv)
            cfg.pop("jwt_secret_file")
            hub = Hub(TABLE, config={"admin": cfg}, workers=1)
            cls.hubs[alg] = (hub, AdminClient(hub))

    @classmethod
    def tearDownClass(cls):
        for hub, _ in cls.hubs.values():
            hub.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def check(self, alg, own_key, other_alg_key):
        hub, c = self.hubs[alg]
        op_key = c.operator_key()
        op_id = op_key.split(":")[0]
        priv, pub = self.keys[own_key]
        with open(pub) as f:
            pem = f.read()

        def who(tok):
            return c.raw("GET", "/api/v1/whoami", headers={"Authorization": "Bearer " + tok})[0]
        self.assertEqual(who(c.token(op_key)), 200)  # issued by the hub
        self.assertEqual(who(J.openssl_sign(alg, priv, {"alg": alg, "typ": "JWT"},
                                            J.claims(op_id))), 200)
        bad = {
            "hs256_with_public_key": J.hs(pem, {"alg": "HS256", "typ": "JWT"}, J.claims(op_id)),
            "own_alg_hmac_public_key": J.hs(pem, {"alg": alg}, J.claims(op_id)),
            "alg_none": J.segment({"alg": "none"}) + "." + J.segment(J.claims(op_id)) + ".",
            # ES256 hub: signed by another P-256 key; RS256 hub: an EC signature under "RS256"
            "other_key": (J.openssl_sign(alg, self.keys["ec2"][0], {"alg": alg}, J.claims(op_id))
                          if alg == "ES256" else
                          J.openssl_sign("ES256", self.keys["ec"][0], {"alg": alg},
                                         J.claims(op_id))),
            "other_alg": J.openssl_sign(other_alg_key[0], other_alg_key[1],
                                        {"alg": other_alg_key[0]}, J.claims(op_id)),
            "expired": J.openssl_sign(alg, priv, {"alg": alg},
                                      J.claims(op_id, exp=1, iat=0, nbf=0)),
            "wrong_aud": J.openssl_sign(alg, priv, {"alg": alg}, J.claims(op_id, aud="x")),
        }
        good = J.openssl_sign(alg, priv, {"alg": alg}, J.claims(op_id))
        bad["trailing_1"] = good + "A"
        bad["trailing_2"] = good + "AA"
        for name, tok in bad.items():
            with self.subTest(alg=alg, attack=name):
                self.assertEqual(who(tok), 401)

    def test_es256(self):
        self.check("ES256", "ec", ("RS256", self.keys["rsa"][0]))

    def test_rs256(self):
        self.check("RS256", "rsa", ("ES256", self.keys["ec"][0]))


if __name__ == "__main__":
    unittest.main()
