#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_grpc_intake (tests/fuzz/corpus/grpc_intake/): HTTP/2 client
byte streams encoded by hand (frames per RFC 9113, header blocks as HPACK literals without
indexing, RFC 7541 6.2.2) so the seeds do not depend on the server's code or an HTTP/2 library.
Usage: tests/fuzz/make_grpc_corpus.py [OUT_DIR]"""
import os
import struct
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def headers(stream, path, end_stream=False, extra=()):
    block = b"".join(literal(k, v) for k, v in [
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "hub:1884"),
        ("content-type", "application/grpc"), ("te", "trailers"),
        ("authorization", "Bearer x.y.z")] + list(extra))
    return frame(1, 0x4 | (0x1 if end_stream else 0), stream, block)


def msg(body, flag=0):
    return bytes([flag]) + struct.pack(">I", len(body)) + body


def data(stream, payload, end_stream=True):
    return frame(0, 0x1 if end_stream else 0, stream, payload)


SETTINGS = frame(4, 0, 0)
SUB = bytes.fromhex("081412036575311a0874656e616e742d612203657531")  # SubscribeForwarderRequest
SEEDS = {
    "unary": PREFACE + SETTINGS + headers(1, "/t.S/Unary") + data(1, msg(SUB)),
    "unary_split_data": PREFACE + SETTINGS + headers(1, "/t.S/Unary") + data(1, msg(SUB)[:3], False)
    + data(1, msg(SUB)[3:]),
    "stream": PREFACE + SETTINGS + headers(1, "/t.S/Stream") + data(1, msg(b"abc")),
    "hold_then_rst": PREFACE + SETTINGS + headers(1, "/t.S/Hold") + data(1, msg(SUB))
    + frame(3, 0, 1, struct.pack(">I", 8)),
    "hold_many": PREFACE + SETTINGS + b"".join(headers(2 * i + 1, "/t.S/Hold") + data(2 * i + 1, msg(b""))
                                               for i in range(8)),
    "deadline": PREFACE + SETTINGS + headers(1, "/t.S/Hold", extra=[("grpc-timeout", "1m")]) + data(1, msg(b"x")),
    "bad_timeout": PREFACE + SETTINGS + headers(1, "/t.S/Unary", extra=[("grpc-timeout", "3s")]) + data(1, msg(b"x")),
    "unknown_method": PREFACE + SETTINGS + headers(1, "/org.packetbroker.iam.v1.NetworkRegistry/GetNetwork")
    + data(1, msg(b"\x08\x13")),
    "two_messages": PREFACE + SETTINGS + headers(1, "/t.S/Unary") + data(1, msg(b"a") + msg(b"b")),
    "no_message": PREFACE + SETTINGS + headers(1, "/t.S/Unary", end_stream=True),
    "compressed": PREFACE + SETTINGS + headers(1, "/t.S/Unary") + data(1, msg(b"zz", flag=1)),
    "too_big": PREFACE + SETTINGS + headers(1, "/t.S/Unary") + data(1, b"\x00\x00\x01\x00\x00"),
    "truncated": PREFACE + SETTINGS + headers(1, "/t.S/Unary") + data(1, msg(b"abcdef")[:7]),
    "ping": PREFACE + SETTINGS + frame(6, 0, 0, b"pingpong"),
    "window_update_and_goaway": PREFACE + SETTINGS + frame(8, 0, 0, struct.pack(">I", 65535))
    + frame(7, 0, 0, struct.pack(">II", 0, 0)),
    "http1": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "get_method": PREFACE + SETTINGS + frame(1, 0x5, 1, literal(":method", "GET") + literal(":path", "/t.S/Unary")
                                             + literal(":scheme", "http") + literal(":authority", "h")),
    "wrong_content_type": PREFACE + SETTINGS + headers(1, "/t.S/Unary", extra=[("content-type", "text/plain")])
    + data(1, msg(b"")),
}

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "grpc_intake")
    os.makedirs(out, exist_ok=True)
    for name, blob in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)
    print("wrote %d seeds to %s" % (len(SEEDS), out))
