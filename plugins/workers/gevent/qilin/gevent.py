"""The gevent worker's Python side: the green bridge (qilin.green) on gevent's hub.

Waits use io watchers made once per connection (hub.loop.io) and
hub.wait(), the way gevent's own sockets wait; their timeout is the
connection's TimedWaiter timer, not a gevent.Timeout per wait (hello: 86k
-> 103k req/s). The connection greenlets are a Crew: a parked one waits on a
gevent Waiter, which the accept loop fills through a hub callback. Before it
accepts, the accept loop waits for a free worker_connections slot, so a full
worker leaves new connections to the kernel queue (and to other workers).

Unless GEVENT_LOOP names a loop, the hub runs PreciseLoop: gevent's libev
loop, plus a timerfd that ends its waits on time. libev's epoll backend
waits whole milliseconds, rounded up, so each timer fired up to 1 ms late
(0.5 ms on average: 1 % of a 50 ms sleep). libev shows no one its timer
heap, so the loop keeps its own: a timer made for less than HORIZON is a
PreciseTimer, which goes on that heap each time it starts, and a prepare
watcher, run after gevent's own, arms the timerfd to the earliest timer
still running. A longer timer keeps libev's millisecond, at most 0.1 % of
its length, and stays off the heap, where timeouts of seconds, mostly
cancelled long before they are due, would pile up.

The interface the bridge calls is described in green.h (struct green_flavor).
"""

import os
from heapq import heappop, heappush, heapreplace

import gevent
from gevent._hub_local import get_hub_if_exists
from gevent.event import Event
from gevent.hub import Waiter as HubWaiter, get_hub
from gevent.lock import Semaphore

from qilin.green import Crew, Expired, TimedWaiter, timerfd_arm, timerfd_open

TICK = 0.25
HORIZON = 1.0
_hub = _loop = None

class Closed(Exception):
    pass

try:
    from gevent.libev.corecext import loop as _libev_loop, timer as _libev_timer
except ImportError:
    PreciseLoop = None
else:
    class PreciseTimer(_libev_timer):
        __slots__ = ()

        def start(self, callback, *args, **kwargs):
            _libev_timer.start(self, callback, *args, **kwargs)
            self.loop._fresh.append(self)

        def again(self, callback, *args, **kwargs):
            _libev_timer.again(self, callback, *args, **kwargs)
            self.loop._fresh.append(self)

    class PreciseLoop(_libev_loop):

        def __init__(self, *args, **kwargs):
            _libev_loop.__init__(self, *args, **kwargs)
            self._fresh = []
            self._due = []
            self._armed = 0.0
            self._clock_fd = -1
            self._open_clock()
            self._arming = self.prepare(ref=False, priority=-2)
            self._arming.start(self._arm)

        def _open_clock(self):
            self._clock_fd = timerfd_open()
            self._armed = 0.0
            self._ring = self.io(self._clock_fd, 1, ref=False)
            self._ring.start(self._rung)

        def _close_clock(self):
            if self._clock_fd >= 0:
                self._ring.close()
                os.close(self._clock_fd)
                self._clock_fd = -1

        def _rung(self):
            try:
                os.read(self._clock_fd, 8)
            except BlockingIOError:
                pass
            self._armed = 0.0

        def timer(self, after, repeat=0.0, ref=True, priority=None):
            if after < HORIZON:
                return PreciseTimer(self, after, repeat, ref, priority)
            return _libev_loop.timer(self, after, repeat, ref, priority)

        def _arm(self):
            due = self._due
            fresh = self._fresh
            if fresh:
                for t in fresh:
                    if t.active:
                        heappush(due, (t.at, id(t), t))
                fresh.clear()
            while due:
                at, key, t = due[0]
                if not t.active:
                    heappop(due)
                elif t.at != at:
                    heapreplace(due, (t.at, key, t))
                else:
                    if at != self._armed and self._clock_fd >= 0:
                        timerfd_arm(self._clock_fd, at, True)
                        self._armed = at
                    return

        def reinit(self):
            _libev_loop.reinit(self)
            self._close_clock()
            self._open_clock()

        def destroy(self):
            self._close_clock()
            self._arming.close()
            return _libev_loop.destroy(self)

def prepare():
    from gevent import monkey
    if monkey.is_module_patched('socket'):
        gevent.reinit()
        return
    if PreciseLoop is not None and not os.environ.get('GEVENT_LOOP') \
            and get_hub_if_exists() is None:
        gevent.config.loop = PreciseLoop
    monkey.patch_all()

class Waiter(TimedWaiter):
    __slots__ = ('fd', 'rd', 'wr')

    def __init__(self, fd):
        TimedWaiter.__init__(self)
        self.fd = fd
        self.rd = self.wr = None

    def wait(self, events, seconds, idle):
        if events == 1:
            w = self.rd
            if w is None:
                w = self.rd = _loop.io(self.fd, 1)
        elif events == 2:
            w = self.wr
            if w is None:
                w = self.wr = _loop.io(self.fd, 2)
        else:
            w = _loop.io(self.fd, events)
        self.begin(seconds, idle)
        try:
            _hub.wait(w)
            return 0
        except Expired:
            return 1
        finally:
            self.end(idle)
            if events == 3:
                w.close()

    def arm(self, seconds):
        t = _loop.timer(seconds)
        t.start(self.expired)
        return t

    def disarm(self, timer):
        timer.close()

    def close(self):
        self.drop_timer()
        for w in (self.rd, self.wr):
            if w is not None:
                _hub.cancel_wait(w, Closed(), True)
        self.rd = self.wr = None

class GeventCrew(Crew):
    spawn = staticmethod(gevent.spawn)
    current = staticmethod(gevent.getcurrent)
    token = HubWaiter

    def __init__(self, serve, max_conns):
        Crew.__init__(self, serve, Semaphore(max_conns))
        self.quiet = Event()

    def park(self, waiter):
        return waiter.get()

    def wake(self, waiter, c):
        _loop.run_callback(waiter.switch, c)

    def drained(self):
        self.quiet.set()

def _accept_loop(fd, accept, crew):
    io = _loop.io(fd, 1)
    try:
        while True:
            crew.slots.wait()
            c = accept(fd)
            if c is None:
                _hub.wait(io)
            elif isinstance(c, float):
                gevent.sleep(c)  # a resource error (EMFILE): back off that long
            else:
                crew.slots.acquire()
                crew.start(c)
    finally:
        io.close()

def run(fds, accept, serve, tick, max_conns, graceful_timeout, wake_fd, linger, drain_max):
    global _hub, _loop
    _hub = get_hub()
    _loop = _hub.loop
    stop = Event()
    crew = GeventCrew(serve, max_conns)

    def on_tick():
        if tick() and not stop.is_set():
            stop.set()

    timer = _loop.timer(TICK, TICK)
    timer.start(on_tick)
    wake = _loop.io(wake_fd, 1)
    wake.start(on_tick)
    acceptors = [gevent.spawn(_accept_loop, fd, accept, crew) for fd in fds]
    try:
        stop.wait()
    finally:
        gevent.killall(acceptors)
        if tick() == 1:
            crew.linger(fds, accept, drain_max, linger)
            if crew.busy:
                crew.quiet.wait(graceful_timeout)
        crew.stop()
        gevent.killall(list(crew.members), timeout=1)
        wake.close()
        timer.close()
