"""Writes libFuzzer seeds for tests/conformance/fuzz_uwsgi.c into DIR: uwsgi
packets as nginx's uwsgi_params send them (GET, POST with a body, HTTP/1.0,
no REQUEST_URI, many headers), and the malformed rows of
tests/integration/test_uwsgi.py.

Usage: python3 uwsgi_seeds.py DIR
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from test_uwsgi import MALFORMED, packet, request_vars  # noqa: E402

SEEDS = {
    "get": packet(request_vars(uri="/a?b=1")),
    "post": packet(request_vars(method="POST", uri="/echo", body=b"hello")) + b"hello",
    "http10-https": packet(request_vars(uri="/", protocol="HTTP/1.0", extra=[("HTTPS", "on")])),
    "path-info-only": packet([("REQUEST_METHOD", "GET"), ("PATH_INFO", "/a b"),
                              ("QUERY_STRING", "x=1")]),
    "many-headers": packet(request_vars(headers=[("X-H%d" % i, "v" * i) for i in range(80)])),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rows = list(SEEDS.items()) + [("bad-%02d" % i, data) for i, (_, data) in enumerate(MALFORMED)]
    for name, data in rows:
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(rows), out))


if __name__ == "__main__":
    main()
