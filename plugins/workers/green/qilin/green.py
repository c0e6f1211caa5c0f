"""The green bridge's Python side, shared by the gevent and eventlet workers.

The bridge's C half (green.c) adds two functions to this module before it
runs, for a hub with precise timers; Python 3.11's os module has no timerfd:

  timerfd_open() -> fd     non-blocking, close-on-exec, CLOCK_MONOTONIC
  timerfd_arm(fd, seconds[, absolute])
                           one expiry SECONDS (> 0) from now, or at SECONDS
                           on CLOCK_MONOTONIC (libev's clock) if ABSOLUTE

Crew is the green threads that serve connections. A green thread outlives
its connection: once serve() returns it parks, and the accept loop hands the
next connection to the last one parked, spawning only when none is. A fresh
green thread costs its object, its start and, under CPython 3.11, a 16 KiB
frame chunk mmapped with it and munmapped when it dies (one page fault and
about 20 us on the bench VM, more than a hello request); a parked one keeps
all that.

The crew grows to the peak number of connections served at once (at most
worker_connections) and does not shrink: a parked green thread holds less
than it did while it served (a few KiB of saved C stack and its frame
chunk), so keeping it raises no high-water mark, and the next burst finds
its green threads ready. Parked ones are no connections: slots (a semaphore
of worker_connections) count connections in service, busy counts them for a
graceful stop, and stop() wakes the parked ones to exit.

A flavor subclasses it with spawn(fn, arg) (a green thread, killable),
current(), token() (what a green thread parks on), park(token) (waits;
returns the next connection, or None to exit), wake(token, conn) (called
from a green thread: schedules the switch from the hub) and drained() (busy
fell to 0 during a stop).

A graceful stop (linger()) first serves what the kernel already queued on
the listeners (drain), then lets every idle connection, fresh or kept alive,
have a short linger to deliver its request, which is served with
Connection: close: closing them at once would reset the clients whose
request is on the way, as a recycling worker must not.

TimedWaiter is the timeout of a connection's waits. A timer per wait, the
libraries' own way (gevent.Timeout, eventlet's trampoline), was most of a
keep-alive request's Python, and eventlet keeps a cancelled timer on its
heap until half the heap is cancelled: a busy worker held about a thousand,
whose garbage set off CPython's full collections, 10-30 ms stalls of every
connection. A connection has one timer instead, due no later than its
current wait's deadline: begin(seconds, idle) makes one only if there is
none or it is due too late. A wait ends (end(idle)) by clearing gl and
deadline; when the timer fires after that, it re-arms for what is left of
the wait now under way, if any, or throws Expired into the waiting green
thread once its deadline has passed. A timer is then made about once per
timeout rather than once per request. An idle wait (for the next request)
is in idle_waits meanwhile, where a graceful stop finds it to
shorten(seconds) its deadline. A flavor gives arm(seconds) (a started timer
that calls expired()) and disarm(timer).
"""

from time import monotonic

from greenlet import getcurrent


class Crew(object):
    def __init__(self, serve, slots):
        self.serve = serve
        self.slots = slots
        self.parked = []
        self.members = set()
        self.busy = 0
        self.stopping = False

    def start(self, c):
        self.busy += 1
        if self.parked:
            self.wake(self.parked.pop(), c)
        else:
            self.members.add(self.spawn(self.main, c))

    def main(self, c):
        token = self.token()
        try:
            while c is not None:
                try:
                    self.serve(c)
                finally:
                    c = None
                    self.busy -= 1
                    self.slots.release()
                    if self.stopping and not self.busy:
                        self.drained()
                if self.stopping:
                    break
                self.parked.append(token)
                c = self.park(token)
        finally:
            if token in self.parked:
                self.parked.remove(token)
            self.members.discard(self.current())

    def stop(self):
        self.stopping = True
        for token in self.parked:
            self.wake(token, None)
        del self.parked[:]

    def drain(self, fds, accept, most):
        for fd in fds:
            for _ in range(most):
                if self.slots.locked():
                    return
                c = accept(fd)
                if c is None or isinstance(c, float):
                    break  # the queue is empty, or a resource error (EMFILE)
                self.slots.acquire()
                self.start(c)

    def linger(self, fds, accept, most, seconds):
        self.drain(fds, accept, most)
        self.stop()
        for w in list(idle_waits):
            w.shorten(seconds)

    def drained(self):
        pass

class Expired(Exception):
    pass

idle_waits = set()

class TimedWaiter(object):
    __slots__ = ('gl', 'deadline', 'timer', 'timer_at')

    def __init__(self):
        self.gl = self.deadline = self.timer = None
        self.timer_at = 0.0

    def begin(self, seconds, idle):
        self.gl = getcurrent()
        if idle:
            idle_waits.add(self)
        if seconds is not None:
            self.deadline = deadline = monotonic() + seconds
            if self.timer is None or self.timer_at > deadline:
                self.schedule(seconds)

    def end(self, idle):
        self.gl = self.deadline = None
        if idle:
            idle_waits.discard(self)

    def shorten(self, seconds):
        deadline = monotonic() + seconds
        if self.gl is not None and (self.deadline is None or self.deadline > deadline):
            self.deadline = deadline
            if self.timer is None or self.timer_at > deadline:
                self.schedule(seconds)

    def schedule(self, seconds):
        self.drop_timer()
        self.timer_at = monotonic() + seconds
        self.timer = self.arm(seconds)

    def expired(self):
        self.drop_timer()
        if self.deadline is None:
            return
        left = self.deadline - monotonic()
        if left > 0:
            self.schedule(left)
        else:
            self.gl.throw(Expired())

    def drop_timer(self):
        if self.timer is not None:
            self.disarm(self.timer)
            self.timer = None
