"""echoapp's ASGI 3 twin (`asgiechoapp:app`, for -k asyncio): answers every
request with what it saw as JSON, under the environ names echoapp uses, so
the conformance corpus compares the same fields. Reads the whole body first.
Standard library only.

environ_of() maps the scope to those names as an ASGI-to-WSGI adapter does:
PATH_INFO is the scope's (UTF-8 decoded) path re-encoded as latin-1 text,
RAW_URI is raw_path plus the query string, and wsgi.input_terminated is
True (an ASGI body always ends with more_body False).
"""
import json
import os


def environ_of(scope):
    """The scope under the CGI/WSGI names: what the scope says, nothing more."""
    qs = scope["query_string"].decode("latin-1")
    env = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope["root_path"],
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": qs,
        "RAW_URI": scope["raw_path"].decode("latin-1") + ("?" + qs if qs else ""),
        "SERVER_PROTOCOL": "HTTP/" + scope["http_version"],
        "wsgi.url_scheme": scope["scheme"],
        "wsgi.input_terminated": True,
    }
    if scope.get("server"):
        env["SERVER_NAME"], env["SERVER_PORT"] = scope["server"][0], str(scope["server"][1])
    if scope.get("client"):
        env["REMOTE_ADDR"], env["REMOTE_PORT"] = scope["client"][0], str(scope["client"][1])
    for name, value in scope["headers"]:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        value = value.decode("latin-1")
        env[key] = env[key] + "," + value if key in env else value
    return env


async def read_body(receive):
    """The whole request body, or None when the client went away (or sent a
    broken body, which the server answers itself): nothing left to do."""
    body = b""
    while True:
        m = await receive()
        if m["type"] == "http.disconnect":
            return None
        body += m.get("body", b"")
        if not m.get("more_body"):
            return body


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    if body is None:
        return
    out = environ_of(scope)
    out["body"] = body.decode("latin-1")
    out["pid"] = os.getpid()
    data = json.dumps(out, sort_keys=True).encode("utf-8")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
