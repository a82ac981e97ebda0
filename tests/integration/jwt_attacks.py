"""JWT attack corpus for the admin API's token verifier.

Generates bearer tokens that must all be refused (and a few that must be accepted): HS256 tokens
are built with the standard library (hmac, hashlib, base64); ES256/RS256 tokens are signed with
the openssl command-line tool (ES256 signatures converted from DER to the JWS R||S form).

    python3 jwt_attacks.py OUT_DIR SECRET SUB    writes one file per attack token (a corpus)

Used by test_admin_auth.py against the real roamhubd.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

ISS, AUD = "roamhub", "roamhub-admin"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def segment(obj):
    if isinstance(obj, (bytes, str)):
        return b64url(obj.encode() if isinstance(obj, str) else obj)
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def hs(secret, header, claims, digest=hashlib.sha256):
    si = segment(header) + "." + segment(claims)
    key = secret.encode() if isinstance(secret, str) else secret
    return si + "." + b64url(hmac.new(key, si.encode(), digest).digest())


def openssl_keys(d):
    """Generates EC P-256 and RSA-2048 key pairs (PEM) in d; returns dict of paths."""
    p = {}
    for name, args in (("ec", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                       ("ec2", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                       ("rsa", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])):
        priv = os.path.join(d, name + ".key")
        pub = os.path.join(d, name + ".pub")
        subprocess.run(["openssl"] + args + ["-out", priv], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True,
                       capture_output=True)
        os.chmod(priv, 0o600)
        p[name] = (priv, pub)
    return p


def _der_to_raw(der, size=32):
    """ECDSA-Sig-Value DER (SEQUENCE of two INTEGERs) -> r||s, each `size` bytes."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\x00")
        out += v.rjust(size, b"\x00")
        i += 2 + n
    return out


def openssl_sign(alg, keyfile, header, claims):
    si = segment(header) + "." + segment(claims)
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", keyfile], input=si.encode(),
                         capture_output=True, check=True).stdout
    if alg == "ES256":
        sig = _der_to_raw(sig)
    return si + "." + b64url(sig)


def claims(subject, now=None, **over):
    now = int(now or time.time())
    c = {"iss": ISS, "aud": AUD, "sub": subject, "iat": now, "nbf": now, "exp": now + 300}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def hs256_attacks(secret, sub, now=None):
    """(name, token) pairs that an HS256 hub must refuse with 401."""
    now = int(now or time.time())
    H = {"alg": "HS256", "typ": "JWT"}
    ok = hs(secret, H, claims(sub, now))
    si, sig = ok.rsplit(".", 1)
    out = [
        ("alg_none_empty_sig", segment({"alg": "none"}) + "." + segment(claims(sub, now)) + "."),
        ("alg_none_kept_sig", segment({"alg": "none"}) + "." + segment(claims(sub, now)) + "." + sig),
        ("alg_NONE", segment({"alg": "NONE"}) + "." + segment(claims(sub, now)) + "."),
        ("alg_hs384", hs(secret, {"alg": "HS384"}, claims(sub, now), hashlib.sha384)),
        ("alg_rs256_with_hmac", hs(secret, {"alg": "RS256"}, claims(sub, now))),
        ("alg_missing", hs(secret, {"typ": "JWT"}, claims(sub, now))),
        ("alg_duplicate", segment('{"alg":"HS256","alg":"none"}') + "." + segment(claims(sub, now)) + "." + sig),
        ("exp_missing", hs(secret, H, claims(sub, now, exp=None))),
        ("exp_past", hs(secret, H, claims(sub, now, exp=now - 3600, iat=now - 7200, nbf=now - 7200))),
        ("exp_string", hs(secret, H, claims(sub, now, exp=str(now + 300)))),
        ("exp_far_future", hs(secret, H, claims(sub, now, exp=now + 10 * 365 * 86400))),
        ("nbf_future", hs(secret, H, claims(sub, now, nbf=now + 3600))),
        ("iat_future", hs(secret, H, claims(sub, now, iat=now + 3600, exp=now + 3900))),
        ("iss_wrong", hs(secret, H, claims(sub, now, iss="evil"))),
        ("iss_missing", hs(secret, H, claims(sub, now, iss=None))),
        ("aud_wrong", hs(secret, H, claims(sub, now, aud="other"))),
        ("aud_array_wrong", hs(secret, H, claims(sub, now, aud=["a", "b"]))),
        ("sub_missing", hs(secret, H, claims(sub, now, sub=None))),
        ("sub_unknown_key", hs(secret, H, claims("no-such-key", now))),
        ("trailing_1", ok + "A"),
        ("trailing_2", ok + "AA"),
        ("trailing_segment", ok + ".e30"),
        ("trailing_space", ok + " x"),
        ("empty_signature", si + "."),
        ("two_segments", si),
        ("signature_flipped", si + "." + ("B" if sig[0] == "A" else "A") + sig[1:]),
        ("signature_noncanonical", si + "." + sig[:-1] + chr(ord(sig[-1]) ^ 1)),
        ("bad_base64", si.replace(si[5], "!", 1) + "." + sig),
        ("padded_base64", si + "." + sig + "="),
        ("wrong_secret", hs(secret + "x", H, claims(sub, now))),
        ("kid_path", hs(secret, {"alg": "HS256", "kid": "../../../etc/passwd"}, claims(sub, now))),
        ("kid_number", hs(secret, {"alg": "HS256", "kid": 7}, claims(sub, now))),
        ("kid_long", hs(secret, {"alg": "HS256", "kid": "k" * 200}, claims(sub, now))),
        ("jku_header", hs(secret, {"alg": "HS256", "jku": "http://127.0.0.1:1/keys"}, claims(sub, now))),
        ("claims_not_object", hs(secret, H, [1, 2, 3])),
        ("header_not_json", segment("nope") + "." + segment(claims(sub, now)) + "." + sig),
        ("oversized", hs(secret, H, claims(sub, now, pad="x" * 9000))),
        ("empty", ""),
        ("garbage", "not-a-token"),
    ]
    return out


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    out_dir, secret, sub = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    for name, tok in hs256_attacks(secret, sub):
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(tok)
    print("wrote", len(os.listdir(out_dir)), "tokens to", out_dir)
