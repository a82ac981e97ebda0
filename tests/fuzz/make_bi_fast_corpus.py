#!/usr/bin/env python3
"""Writes the corpus of fuzz_bi_fast (tests/fuzz/corpus/bi_fast/): every input of the bi_decode
corpus, the JSON body of every HTTP request of the peer_request and peer_response corpora, and
each TS002 example of ../shared/vectors/bi_json_examples.json compact and indented, plus a few
spellings the one-pass decoder hands to the full decoder (escapes, non-ASCII, 12.0 integers,
duplicate keys, opaque objects) and their refusals.
Usage: tests/fuzz/make_bi_fast_corpus.py [VECTORS_DIR [OUT_DIR]]"""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
vectors = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared", "vectors")
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "corpus", "bi_fast")
os.makedirs(out, exist_ok=True)


def put(prefix, data):
    name = "%s_%s" % (prefix, hashlib.sha1(data).hexdigest()[:12])
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


for corpus in ("bi_decode", "peer_request", "peer_response"):
    d = os.path.join(HERE, "corpus", corpus)
    for fn in sorted(os.listdir(d)):
        data = open(os.path.join(d, fn), "rb").read()
        if corpus != "bi_decode":
            head, sep, body = data.partition(b"\r\n\r\n")
            if not sep or not body:
                continue
            data = body
        put(corpus, data)

examples = json.load(open(os.path.join(vectors, "bi_json_examples.json")))["examples"]
for ex in examples:
    m = ex["message"]
    put("vector", json.dumps(m, separators=(",", ":")).encode())
    put("vector", json.dumps(m, indent=2).encode())

# Spellings the one pass defers (the full decoder decides), built from the first PRStartReq.
base = next(ex["message"] for ex in examples if ex["message"]["MessageType"] == "PRStartReq")
compact = json.dumps(base, separators=(",", ":"))
variants = [
    compact.replace('"PRStartReq"', '"PRStart\\u0052eq"'),  # an escape
    compact[:-1] + ',"Note":"caf\u00e9"}',  # non-ASCII (encoded below as UTF-8)
    compact.replace('"TransactionID":', '"TransactionID":1.0,"X":'),  # 12.0-style integer
    compact[:-1] + ',"VSExtension":{"a":1}}',  # opaque object
    compact[:-1] + ',"Unknown":[1,{"k":null},true],"Unknown2":{"a":{"b":[]}}}',
    compact[:-1] + ',"Unknown":1,"Unknown":2}',  # duplicate unknown key
    compact[:-1] + ',"ProtocolVersion":"1.0"}',  # duplicate known key
    compact.replace('"ULMetaData":', '"ULMetaData":null,"X":'),  # null mandatory field
    compact + "\n\t ",
    compact + "x",
    compact.replace("{", "{\f", 1),
]
# Refusals that only a post-check of a nested object catches (the one pass must not accept them).
for ex in examples:
    m = ex["message"]
    if "DLMetaData" in m:
        bad = json.loads(json.dumps(m))
        bad["DLMetaData"].pop("DLFreq1", None)
        bad["DLMetaData"].pop("DLFreq2", None)
        variants.append(json.dumps(bad, separators=(",", ":")))
    if isinstance(m.get("Result"), dict):
        bad = json.loads(json.dumps(m))
        bad["Result"].pop("ResultCode")
        variants.append(json.dumps(bad, separators=(",", ":")))
    for k in ("NwkSKey", "AppSKey"):
        if isinstance(m.get(k), dict):
            bad = json.loads(json.dumps(m))
            bad[k].pop("AESKey")
            variants.append(json.dumps(bad, separators=(",", ":")))
for v in variants:
    put("variant", v.encode("utf-8"))
print("wrote corpus to", out)
