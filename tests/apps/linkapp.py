"""Reports, as JSON, where the worker's interpreter lives and that its C
API answers where an app reaches it: through ctypes (the process's global
symbols) and from extension modules loaded from lib-dynload."""
import ctypes
import json


def mapped_libpython():
    with open("/proc/self/maps") as f:
        return sorted({line.split()[-1] for line in f
                       if "/libpython" in line and ".so" in line.split()[-1]})


def report():
    """What the app answers (asgilinkapp's too)."""
    import _decimal  # lib-dynload extensions, loaded at request time
    import _ssl
    return {
        "libpython_so": mapped_libpython(),
        "initialized": ctypes.pythonapi.Py_IsInitialized(),
        "decimal": str(_decimal.Decimal(1) / _decimal.Decimal(8)),
        "openssl": _ssl.OPENSSL_VERSION.split()[0],
    }


def app(environ, start_response):
    body = json.dumps(report()).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
