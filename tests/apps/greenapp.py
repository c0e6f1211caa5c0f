"""WSGI app for the gevent and eventlet worker tests.

/sleep      time.sleep(0.2) (monkey-patched: yields to the hub); counts
            requests in flight and records the peak
/peak       the highest number of requests seen in flight at once
/hold?f=P   creates P.started, then waits (green sleep) until P exists
/prim?lib=  uses gevent or eventlet primitives directly: spawns green
            threads that pass values through an event/queue
/socket     the class of socket.socket (shows the monkey-patching)
/hub?lib=   the class of the eventlet hub or the gevent loop, the result of
            a round of sub-millisecond and far-off timers on it, and whether
            its timerfd is armed while it waits ("-" without one)
/longtimers gevent only: how many timers the precise loop still tracks
            after 1,000 timeouts of 5 s ran for a moment and were cancelled
/timerfds   how many timerfds this process holds
/timers     eventlet only: how many timers the hub holds, cancelled ones too
/hello      hello
"""
import os
import socket
import time
from urllib.parse import parse_qs

_state = {"active": 0, "peak": 0}


def _prim_gevent():
    import gevent
    from gevent.event import AsyncResult
    from gevent.queue import Queue

    q = Queue()
    done = AsyncResult()

    def producer():
        for i in range(3):
            q.put(i)
            gevent.sleep(0.01)
        q.put(None)

    def consumer():
        got = []
        while True:
            item = q.get()
            if item is None:
                break
            got.append(item)
        done.set(got)

    gevent.joinall([gevent.spawn(producer), gevent.spawn(consumer)], timeout=5)
    return "gevent %r" % (done.get(timeout=1),)


def _prim_eventlet():
    import eventlet
    from eventlet.event import Event
    from eventlet.queue import Queue

    q = Queue()
    done = Event()

    def producer():
        for i in range(3):
            q.put(i)
            eventlet.sleep(0.01)
        q.put(None)

    def consumer():
        got = []
        while True:
            item = q.get()
            if item is None:
                break
            got.append(item)
        done.send(got)

    pool = eventlet.GreenPool()
    pool.spawn(producer)
    pool.spawn(consumer)
    pool.waitall()
    return "eventlet %r" % (done.wait(),)


def _it_value(fd):
    """Seconds left before timerfd FD expires; 0.0 when it is not armed."""
    with open("/proc/self/fdinfo/%d" % fd) as f:
        for line in f:
            if line.startswith("it_value:"):
                sec, nsec = line.split("(", 1)[1].rstrip(")\n").split(",")
                return int(sec) + int(nsec) / 1e9
    return 0.0


def _clock_armed(fd, start_thread, real_sleep, sleep):
    """Whether the hub's timerfd FD, looked at from a native thread while the
    hub waits out green sleeps of 50 ms, is ever armed to expire within
    those 50 ms (it must be, for the sleep to end on it); "-" without one."""
    if fd is None:
        return "-"
    seen = []

    def watch():
        for _ in range(5):
            real_sleep(0.007)
            seen.append(_it_value(fd))

    start_thread(watch, ())
    for _ in range(200):
        if len(seen) == 5:
            break
        sleep(0.05)
    return "armed" if any(0.0 < v <= 0.05 for v in seen) else "not armed %r" % (seen,)


def _timer_round(clock, spawn_after, timeout, sleep):
    """CLOCK's class (the hub or loop), and which of three sub-millisecond
    timers fired, in order, during a sleep under a far-off timeout."""
    fired = []
    for delay in (0.0002, 0.0005, 0.0011):
        spawn_after(delay, fired.append, delay)
    with timeout(1e12):
        sleep(0.002)
    return "%s.%s %r" % (type(clock).__module__, type(clock).__name__, fired)


def _hub(lib):
    if lib == "gevent":
        import gevent
        from gevent import monkey
        from gevent.hub import get_hub
        loop = get_hub().loop
        return "%s %s" % (
            _timer_round(loop, gevent.spawn_later, gevent.Timeout, gevent.sleep),
            _clock_armed(getattr(loop, "_clock_fd", None),
                         monkey.get_original("_thread", "start_new_thread"),
                         monkey.get_original("time", "sleep"), gevent.sleep))
    import eventlet
    import eventlet.hubs
    from eventlet import patcher
    hub = eventlet.hubs.get_hub()
    return "%s %s" % (
        _timer_round(hub, eventlet.spawn_after, eventlet.Timeout, eventlet.sleep),
        _clock_armed(getattr(hub, "timer_fd", None), patcher.original("_thread").start_new_thread,
                     patcher.original("time").sleep, eventlet.sleep))


def _long_timers_gevent():
    import gevent
    from gevent.hub import get_hub

    # Started, seen by the loop's prepare watcher while they run, cancelled.
    timeouts = [gevent.Timeout(5) for _ in range(1000)]
    for t in timeouts:
        t.start()
    gevent.sleep(0.001)
    for t in timeouts:
        t.close()
    gevent.sleep(0.001)
    return str(len(get_hub().loop._due))


def _readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/sleep":
        _state["active"] += 1
        _state["peak"] = max(_state["peak"], _state["active"])
        try:
            time.sleep(0.2)
        finally:
            _state["active"] -= 1
        body = "slept"
    elif path == "/peak":
        body = str(_state["peak"])
    elif path == "/hold":
        flag = query["f"][0]
        with open(flag + ".started", "w"):
            pass
        deadline = time.monotonic() + 30
        while not os.path.exists(flag) and time.monotonic() < deadline:
            time.sleep(0.02)
        body = "released"
    elif path == "/prim":
        lib = query.get("lib", ["gevent"])[0]
        body = _prim_gevent() if lib == "gevent" else _prim_eventlet()
    elif path == "/hub":
        body = _hub(query.get("lib", ["eventlet"])[0])
    elif path == "/timers":
        from eventlet.hubs import get_hub
        hub = get_hub()
        body = str(len(hub.timers) + len(hub.next_timers))
    elif path == "/longtimers":
        body = _long_timers_gevent()
    elif path == "/timerfds":
        fds = os.listdir("/proc/self/fd")
        body = str(sum(1 for fd in fds
                       if _readlink("/proc/self/fd/" + fd) == "anon_inode:[timerfd]"))
    elif path == "/socket":
        body = "%s.%s" % (socket.socket.__module__, socket.socket.__name__)
    else:
        body = "hello"
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(data)))])
    return [data]
