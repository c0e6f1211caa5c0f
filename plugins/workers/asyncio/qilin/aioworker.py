"""The asyncio worker's Python side: the green bridge (qilin.green) on an asyncio loop.

The event loop (asyncio's, or uvloop's: --asgi-loop, chosen by qilin.asgi)
runs in the worker's main greenlet, the hub. Each connection is served by a
greenlet of the Crew, whose parent is the hub, running the core's C
connection loop; a wait registers the greenlet's switch as the fd's reader
or writer on the loop and switches to the hub, and its timeout is the
connection's TimedWaiter timer (loop.call_later). The python3 plugin's
qilin.asgi runs each request's coroutine as a Task on the same loop; its
send() and receive() switch to the connection's greenlet for the I/O.

Accepting happens in a reader callback on each listener, on the hub: it
accepts while the worker has a worker_connections slot free and switches
straight into the connection's greenlet, which serves what is ready before
it first waits. With every slot taken the listeners' readers are removed,
leaving new connections to the kernel queue and other workers, and put back
when a slot frees.

Lifespan (qilin.asgi.Lifespan) starts before the first accept and shuts down
after the last connection is done; a failed startup ends the worker with
status 3, which the master reports as a worker that failed to boot.

The interface the bridge calls is described in green.h (struct green_flavor).
"""

import asyncio

from greenlet import GreenletExit, getcurrent, greenlet

import qilin.asgi as asgi
from qilin.green import Crew, Expired, TimedWaiter

TICK = 0.25
BOOT_FAILED = 3
_hub = _loop = None


def prepare():
    asgi.check_loop()


class Waiter(TimedWaiter):
    """A connection's waits. Its reader stays on the loop between waits, so
    a keep-alive connection costs no epoll_ctl per request; when it fires
    while no read wait is under way (bytes of a next request during the
    current one), it comes off until the next read wait, or the level-
    triggered loop would call it on every pass."""

    __slots__ = ('fd', 'reading', 'registered')

    def __init__(self, fd):
        TimedWaiter.__init__(self)
        self.fd = fd
        self.reading = self.registered = False

    def ready(self):
        if self.reading:
            self.gl.switch()
        elif self.registered:
            _loop.remove_reader(self.fd)
            self.registered = False

    def wait(self, events, seconds, idle):
        loop = _loop
        fd = self.fd
        self.begin(seconds, idle)
        if events & 1:
            if not self.registered:
                loop.add_reader(fd, self.ready)
                self.registered = True
            self.reading = True
        elif self.registered:
            loop.remove_reader(fd)
            self.registered = False
        if events & 2:
            loop.add_writer(fd, self.gl.switch)
        try:
            _hub.switch()
            return 0
        except Expired:
            return 1
        finally:
            self.reading = False
            if events & 2:
                loop.remove_writer(fd)
            self.end(idle)

    def arm(self, seconds):
        return _loop.call_later(seconds, self.expired)

    def disarm(self, timer):
        timer.cancel()

    def close(self):
        self.drop_timer()
        if self.registered:
            _loop.remove_reader(self.fd)
            self.registered = False


class Slots(object):
    """worker_connections as a counter: the hub never blocks on it."""

    def __init__(self, n, on_free):
        self.free = n
        self.on_free = on_free

    def locked(self):
        return self.free <= 0

    def acquire(self):
        self.free -= 1

    def release(self):
        self.free += 1
        if self.free == 1:
            self.on_free()


class AsyncioCrew(Crew):
    current = token = staticmethod(getcurrent)

    def __init__(self, serve, max_conns, on_free):
        Crew.__init__(self, serve, Slots(max_conns, on_free))
        self.quiet = None

    def spawn(self, fn, c):
        g = greenlet(fn, _hub)
        self.members.add(g)
        g.switch(c)
        return g

    def park(self, me):
        return _hub.switch()

    def wake(self, g, c):
        g.switch(c)

    def drained(self):
        if self.quiet is not None:
            self.quiet.set()


async def _serve(fds, accept, serve, tick, max_conns, graceful_timeout, wake_fd, linger,
                 drain_max):
    loop = _loop
    life = asgi.Lifespan(loop)
    if not await life.startup():
        return BOOT_FAILED
    stop = asyncio.Event()
    listening = []

    def listen():
        if not listening and not stop.is_set():
            for fd in fds:
                loop.add_reader(fd, on_accept, fd)
            listening[:] = fds

    def unlisten():
        for fd in listening:
            loop.remove_reader(fd)
        del listening[:]

    crew = AsyncioCrew(serve, max_conns, listen)

    def on_accept(fd):
        slots = crew.slots
        while not slots.locked():
            c = accept(fd)
            if c is None:
                return
            if isinstance(c, float):
                # A resource error (EMFILE): back off that long.
                unlisten()
                loop.call_later(c, listen)
                return
            slots.acquire()
            crew.start(c)
        unlisten()

    def check():
        if tick() and not stop.is_set():
            stop.set()

    def on_tick():
        check()
        if not stop.is_set():
            loop.call_later(TICK, on_tick)

    loop.call_later(TICK, on_tick)
    loop.add_reader(wake_fd, check)
    listen()
    try:
        await stop.wait()
    finally:
        unlisten()
        stop.set()
        asgi.going_away()
        if tick() == 1:
            crew.linger(fds, accept, drain_max, linger)
            if crew.busy:
                crew.quiet = asyncio.Event()
                try:
                    await asyncio.wait_for(crew.quiet.wait(), graceful_timeout)
                except asyncio.TimeoutError:
                    pass
        crew.stop()
        for g in list(crew.members):
            if not g.dead:
                g.throw(GreenletExit)
        loop.remove_reader(wake_fd)
    await life.shutdown()
    rest = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]
    for t in rest:
        t.cancel()
    if rest:
        await asyncio.wait(rest, timeout=1.0)
    return 0


def run(fds, accept, serve, tick, max_conns, graceful_timeout, wake_fd, linger, drain_max):
    global _hub, _loop
    _hub = getcurrent()
    _loop = loop = asgi.new_loop()
    asyncio.set_event_loop(loop)
    asgi.attach(loop, _hub)
    try:
        main = loop.create_task(_serve(fds, accept, serve, tick, max_conns, graceful_timeout,
                                       wake_fd, linger, drain_max))
        while True:
            try:
                return loop.run_until_complete(main)
            except (SystemExit, KeyboardInterrupt):
                # Raised by an app's task, which asyncio lets out of the loop:
                # the task's done callback (qilin.asgi) ends the worker as WSGI
                # does; the loop goes on until then.
                if main.done():
                    raise
    finally:
        asgi.attach(None, None)
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
