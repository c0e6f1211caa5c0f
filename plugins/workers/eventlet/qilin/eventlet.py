"""The eventlet worker's Python side: the green bridge (qilin.green) on eventlet's hub.

A wait is a hub listener, as in eventlet.hubs.trampoline(), with a private
timeout exception, so an app's own eventlet.Timeout can never be mistaken
for ours. Its timeout is the connection's TimedWaiter timer, not
trampoline's timer per wait, whose cancelled leftovers set off CPython's
full collections (hello p99 4-9 ms against 1.3-1.5 ms). After a fork under
preload_app the hub (its epoll fd, its timers) belongs to the master, so the
child drops it (closing its timerfd) and eventlet makes a fresh one. A
semaphore of worker_connections slots is taken before each accept and given
back when the connection's serve() returns. The connection green threads
are a Crew: a parked one waits in hub.switch(), and the accept loop hands it
a connection through a hub timer of 0 s.

Unless EVENTLET_HUB names a hub, the worker runs PreciseHub: eventlet's
epoll hub whose waits end on a timerfd instead of epoll's whole-ms timeout,
so eventlet.sleep() and eventlet.Timeout fire on time rather than up to 1 ms
late. An app that calls eventlet.hubs.use_hub() when it is imported (after
prepare) still gets its own hub.

The interface the bridge calls is described in green.h (struct green_flavor).
"""

import os

import eventlet
import eventlet.hubs
import greenlet
from eventlet import greenthread
from eventlet.event import Event
from eventlet.hubs import epolls, get_hub, notify_close, trampoline
from eventlet.hubs.timer import Timer
from eventlet.semaphore import Semaphore

from qilin.green import Crew, Expired, TimedWaiter, timerfd_arm, timerfd_open

TICK = 0.25
_hub = None

class PreciseHub(epolls.Hub):
    is_available = staticmethod(epolls.is_available)

    def __init__(self, clock=None):
        epolls.Hub.__init__(self, clock)
        self.timer_fd = timerfd_open()
        self.poll.register(self.timer_fd, epolls.select.EPOLLIN)

    def do_poll(self, seconds):
        fd = self.timer_fd
        if seconds > 0:
            timerfd_arm(fd, seconds)
            seconds = -1
        return [ev for ev in self.poll.poll(seconds) if ev[0] != fd]

def prepare():
    from eventlet import patcher
    if patcher.is_monkey_patched('socket'):
        old = eventlet.hubs._threadlocal.__dict__.pop('hub', None)
        if getattr(old, 'timer_fd', None) is not None:
            os.close(old.timer_fd)
        return
    tl = eventlet.hubs._threadlocal
    if not (hasattr(tl, 'Hub') or hasattr(tl, 'hub') or os.environ.get('EVENTLET_HUB')):
        eventlet.hubs.use_hub(PreciseHub)
    eventlet.monkey_patch()

class Waiter(TimedWaiter):
    __slots__ = ('fd',)

    def __init__(self, fd):
        TimedWaiter.__init__(self)
        self.fd = fd

    def wait(self, events, seconds, idle):
        hub = _hub
        self.begin(seconds, idle)
        gt = self.gl
        listener = hub.add(hub.READ if events & 1 else hub.WRITE, self.fd,
                           gt.switch, gt.throw, None)
        try:
            hub.switch()
            return 0
        except Expired:
            return 1
        finally:
            hub.remove(listener)
            self.end(idle)

    def arm(self, seconds):
        t = Timer(seconds, self.expired)
        _hub.add_timer(t)
        return t

    def disarm(self, timer):
        timer.cancel()

    def close(self):
        self.drop_timer()
        notify_close(self.fd)

class EventletCrew(Crew):
    spawn = staticmethod(greenthread.spawn)
    current = token = staticmethod(greenlet.getcurrent)

    def __init__(self, hub, serve, max_conns):
        Crew.__init__(self, serve, Semaphore(max_conns))
        self.hub = hub

    def park(self, me):
        return self.hub.switch()

    def wake(self, gt, c):
        self.hub.schedule_call_global(0, gt.switch, c)

def run(fds, accept, serve, tick, max_conns, graceful_timeout, wake_fd, linger, drain_max):
    global _hub
    _hub = hub = get_hub()
    stop = Event()
    crew = EventletCrew(hub, serve, max_conns)
    ticking = [True]

    def check(*unused):
        if tick() and not stop.ready():
            stop.send()

    def on_tick():
        if ticking[0]:
            check()
            hub.schedule_call_global(TICK, on_tick)

    def next_conn(fd):
        while True:
            c = accept(fd)
            if c is None:
                trampoline(fd, read=True)
            elif isinstance(c, float):
                eventlet.sleep(c)  # a resource error (EMFILE): back off that long
            else:
                return c

    def accept_loop(fd):
        while True:
            crew.slots.acquire()
            try:
                c = next_conn(fd)
            except BaseException:
                crew.slots.release()
                raise
            crew.start(c)

    hub.schedule_call_global(TICK, on_tick)
    wake = hub.add(hub.READ, wake_fd, check, check, None)
    acceptors = [greenthread.spawn(accept_loop, fd) for fd in fds]
    try:
        stop.wait()
    finally:
        for gt in acceptors:
            gt.kill()
        if tick() == 1:
            crew.linger(fds, accept, drain_max, linger)
            with eventlet.Timeout(graceful_timeout, False):
                while crew.busy:
                    eventlet.sleep(0.05)
        crew.stop()
        for gt in list(crew.members):
            gt.kill()
        hub.remove(wake)
        ticking[0] = False
