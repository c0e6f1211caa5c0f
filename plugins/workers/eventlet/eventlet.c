/*
 * Worker plugin `eventlet`: green threads on eventlet's hub, the same bridge
 * as the gevent worker (plugins/workers/gevent/green.c) with eventlet's
 * Python side. Worker process, and the master for monkey-patching under
 * preload_app.
 */
#include "qlnconfig.h"

#include <stddef.h>

#include <qilin/plugin.h>

#include "../gevent/green.h"

/*
 * A wait is a hub listener, as in eventlet.hubs.trampoline(), with a
 * private timeout exception, so an app's own eventlet.Timeout can never be
 * mistaken for ours. Its timeout is the connection's TimedWaiter timer
 * (green.c), not trampoline's timer per wait, whose cancelled leftovers
 * set off CPython's full collections (hello p99 4-9 ms; now 1.3-1.5 ms).
 * After a fork under preload_app the hub (its epoll fd, its timers)
 * belongs to the master, so the child drops it (closing its timerfd) and
 * eventlet makes a fresh one. A semaphore of worker_connections slots is
 * taken before each accept and given back when the connection's serve()
 * returns. The connection green threads are
 * a Crew (green.c): a parked one waits in hub.switch(), and the accept loop
 * hands it a connection through a hub timer of 0 s.
 *
 * Unless EVENTLET_HUB names a hub, the worker runs PreciseHub: eventlet's
 * epoll hub whose waits end on a timerfd (green.c) instead of epoll's
 * whole-ms timeout, so eventlet.sleep() and eventlet.Timeout fire on time rather
 * than up to 1 ms late. An app that calls eventlet.hubs.use_hub() when it
 * is imported (after prepare) still gets its own hub.
 */
static const char eventlet_bootstrap[] =
    "import os\n"
    "import eventlet\n"
    "import eventlet.hubs\n"
    "from eventlet.hubs import epolls\n"
    "import greenlet\n"
    "from eventlet import greenthread\n"
    "from eventlet.event import Event\n"
    "from eventlet.hubs import get_hub, notify_close, trampoline\n"
    "from eventlet.hubs.timer import Timer\n"
    "from eventlet.semaphore import Semaphore\n"
    "\n"
    "TICK = 0.25\n"
    "_hub = None\n"
    "\n"
    "class PreciseHub(epolls.Hub):\n"
    "    __module__ = 'qilin.eventlet'\n"
    "    is_available = staticmethod(epolls.is_available)\n"
    "\n"
    "    def __init__(self, clock=None):\n"
    "        epolls.Hub.__init__(self, clock)\n"
    "        self.timer_fd = timerfd_open()\n"
    "        self.poll.register(self.timer_fd, epolls.select.EPOLLIN)\n"
    "\n"
    "    def do_poll(self, seconds):\n"
    "        fd = self.timer_fd\n"
    "        if seconds > 0:\n"
    "            timerfd_arm(fd, seconds)\n"
    "            seconds = -1\n"
    "        return [ev for ev in self.poll.poll(seconds) if ev[0] != fd]\n"
    "\n"
    "def prepare():\n"
    "    from eventlet import patcher\n"
    "    if patcher.is_monkey_patched('socket'):\n"
    "        old = eventlet.hubs._threadlocal.__dict__.pop('hub', None)\n"
    "        if getattr(old, 'timer_fd', None) is not None:\n"
    "            os.close(old.timer_fd)\n"
    "        return\n"
    "    tl = eventlet.hubs._threadlocal\n"
    "    if not (hasattr(tl, 'Hub') or hasattr(tl, 'hub') or os.environ.get('EVENTLET_HUB')):\n"
    "        eventlet.hubs.use_hub(PreciseHub)\n"
    "    eventlet.monkey_patch()\n"
    "\n"
    "class Waiter(TimedWaiter):\n"
    "    __slots__ = ('fd',)\n"
    "\n"
    "    def __init__(self, fd):\n"
    "        TimedWaiter.__init__(self)\n"
    "        self.fd = fd\n"
    "\n"
    "    def wait(self, events, seconds, idle):\n"
    "        hub = _hub\n"
    "        self.begin(seconds, idle)\n"
    "        gt = self.gl\n"
    "        listener = hub.add(hub.READ if events & 1 else hub.WRITE, self.fd,\n"
    "                           gt.switch, gt.throw, None)\n"
    "        try:\n"
    "            hub.switch()\n"
    "            return 0\n"
    "        except Expired:\n"
    "            return 1\n"
    "        finally:\n"
    "            hub.remove(listener)\n"
    "            self.end(idle)\n"
    "\n"
    "    def arm(self, seconds):\n"
    "        t = Timer(seconds, self.expired)\n"
    "        _hub.add_timer(t)\n"
    "        return t\n"
    "\n"
    "    def disarm(self, timer):\n"
    "        timer.cancel()\n"
    "\n"

    "    def close(self):\n"
    "        self.drop_timer()\n"
    "        notify_close(self.fd)\n"
    "\n"
    "class EventletCrew(Crew):\n"
    "    spawn = staticmethod(greenthread.spawn)\n"
    "    current = token = staticmethod(greenlet.getcurrent)\n"
    "\n"
    "    def __init__(self, hub, serve, max_conns):\n"
    "        Crew.__init__(self, serve, Semaphore(max_conns))\n"
    "        self.hub = hub\n"
    "\n"
    "    def park(self, me):\n"
    "        return self.hub.switch()\n"
    "\n"
    "    def wake(self, gt, c):\n"
    "        self.hub.schedule_call_global(0, gt.switch, c)\n"
    "\n"
    "def run(fds, accept, serve, tick, max_conns, graceful_timeout, wake_fd, linger, drain_max):\n"
    "    global _hub\n"
    "    _hub = hub = get_hub()\n"
    "    stop = Event()\n"
    "    crew = EventletCrew(hub, serve, max_conns)\n"
    "    ticking = [True]\n"
    "\n"
    "    def check(*unused):\n"
    "        if tick() and not stop.ready():\n"
    "            stop.send()\n"
    "\n"
    "    def on_tick():\n"
    "        if ticking[0]:\n"
    "            check()\n"
    "            hub.schedule_call_global(TICK, on_tick)\n"
    "\n"
    "    def next_conn(fd):\n"
    "        while True:\n"
    "            c = accept(fd)\n"
    "            if c:\n"
    "                return c\n"
    "            if c is None:\n"
    "                trampoline(fd, read=True)\n"
    "            else:\n"
    "                eventlet.sleep(0.5)\n"
    "\n"
    "    def accept_loop(fd):\n"
    "        while True:\n"
    "            crew.slots.acquire()\n"
    "            try:\n"
    "                c = next_conn(fd)\n"
    "            except BaseException:\n"
    "                crew.slots.release()\n"
    "                raise\n"
    "            crew.start(c)\n"
    "\n"
    "    hub.schedule_call_global(TICK, on_tick)\n"
    "    wake = hub.add(hub.READ, wake_fd, check, check, None)\n"
    "    acceptors = [greenthread.spawn(accept_loop, fd) for fd in fds]\n"
    "    try:\n"
    "        stop.wait()\n"
    "    finally:\n"
    "        for gt in acceptors:\n"
    "            gt.kill()\n"
    "        if tick() == 1:\n"
    "            crew.linger(fds, accept, drain_max, linger)\n"
    "            with eventlet.Timeout(graceful_timeout, False):\n"
    "                while crew.busy:\n"
    "                    eventlet.sleep(0.05)\n"
    "        crew.stop()\n"
    "        for gt in list(crew.members):\n"
    "            gt.kill()\n"
    "        hub.remove(wake)\n"
    "        ticking[0] = False\n";

static const struct green_flavor eventlet_flavor = {
    .name = "eventlet",
    .package = "eventlet",
    .install = "apt-get install python3-eventlet, or pip install eventlet",
    .bootstrap = eventlet_bootstrap,
};

static int
eventlet_prepare(struct qln_worker *w, char *err, size_t errlen)
{
    return green_prepare(&eventlet_flavor, w, err, errlen);
}

static int
eventlet_run(struct qln_worker *w)
{
    return green_run(&eventlet_flavor, w);
}

static const struct qln_worker_ops eventlet_ops = {
    .size = sizeof(struct qln_worker_ops),
    .flags = QLN_WORKER_GREEN,
    .run = eventlet_run,
    .prepare = eventlet_prepare,
};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "eventlet", .version = QLN_VERSION,
                  .description = "green threads on eventlet's hub; the HTTP work stays in C",
                  .requires = (const char *const[]){"python3", NULL}, .worker = &eventlet_ops);
