"""Writes one libFuzzer seed file per conformance corpus row into DIR.

Usage: python3 fuzz_seeds.py DIR
The fuzz target reads the first byte as its settings (0: gunicorn's default
limits, no PROXY header), so each seed is that byte followed by the row's raw
request; a few more seeds start with a PROXY v1 or v2 header, and a few go
through TLS (settings bit 7; the next byte shapes the records and the end),
and a few are WebSocket handshakes followed by frames.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
# The settings byte's bits 5-6 pick the PROXY mode: 1 v1, 2 v2, 3 auto.
PROXY_SEEDS = {
    "proxy-v1-tcp4": b"\x20PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" + GET,
    "proxy-v1-tcp6": b"\x20PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n" + GET,
    "proxy-v1-unknown": b"\x60PROXY UNKNOWN\r\n" + GET,
    "proxy-v2-tcp4": b"\x40" + V2_SIG + b"\x21\x11\x00\x0c" + bytes([192, 0, 2, 1, 198, 51, 100, 2])
                     + (56324).to_bytes(2, "big") + (443).to_bytes(2, "big") + GET,
    "proxy-v2-local": b"\x60" + V2_SIG + b"\x20\x00\x00\x00" + GET,
    "proxy-auto-none": b"\x60" + GET,
}
# TLS: the second byte's bits 0-3 cap the record size (1 << n), bit 4 TLS 1.2,
# bit 5 close_notify at the end.
TLS_SEEDS = {
    "tls13-one-record": b"\x80\x2e" + GET,
    "tls12-small-records": b"\x80\x13" + GET + GET,
    "tls13-ragged-body": b"\x80\x08POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc",
    "tls13-pipelined": b"\x90\x2e" + GET * 3,
}

WS_UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
MASK = b"\x01\x02\x03\x04"


def ws_frame(b0, payload):
    """A masked client frame: B0 is FIN, RSV and opcode."""
    n = len(payload)
    size = bytes([0x80 | n]) if n < 126 else b"\xfe" + n.to_bytes(2, "big")
    return bytes([b0]) + size + MASK + bytes(c ^ MASK[i % 4] for i, c in enumerate(payload))


WS_SEEDS = {
    "ws-text-close": b"\x00" + WS_UPGRADE + ws_frame(0x81, b"hello") + ws_frame(0x88, b"\x03\xe8"),
    "ws-ping-binary": b"\x00" + WS_UPGRADE + ws_frame(0x89, b"p") + ws_frame(0x82, bytes(300)),
    "ws-fragments": b"\x00" + WS_UPGRADE + ws_frame(0x01, b"ab") + ws_frame(0x80, b"cd"),
    "ws-unmasked": b"\x00" + WS_UPGRADE + b"\x81\x02hi",
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for case in corpus.CASES:
        with open(os.path.join(out, case.name), "wb") as f:
            f.write(b"\x00" + case.raw)
    for name, raw in list(PROXY_SEEDS.items()) + list(TLS_SEEDS.items()) + list(WS_SEEDS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(raw)
    print("%d seeds in %s" % (len(corpus.CASES) + len(PROXY_SEEDS) + len(TLS_SEEDS) + len(WS_SEEDS),
                              out))


if __name__ == "__main__":
    main()
