"""A Flask app for the gthread tests (`flaskthreads:app`): /meet?n=N&v=V
keeps V in Flask's request-local `g`, waits until N requests are inside the
app together (bounded), and answers the request's V, g's V and whether the
N met. Each thread must see its own request context."""
import threading

from flask import Flask, g, request

app = Flask(__name__)

_lock = threading.Lock()
_barriers = {}


def _meet(n):
    with _lock:
        b = _barriers.get(n)
        if b is None or b.broken:
            b = _barriers[n] = threading.Barrier(n)
    try:
        b.wait(10.0)
        return True
    except threading.BrokenBarrierError:
        return False


@app.route("/meet")
def meet():
    g.v = request.args["v"]
    met = _meet(int(request.args["n"]))
    return "%s %s %s" % (request.args["v"], g.v, met)
