/*
 * Worker plugin `gevent`: thousands of mostly-waiting connections per worker
 * on gevent's hub. The core still does all HTTP work in C (green.c); this
 * file holds the gevent side as a small Python bootstrap. Worker process,
 * and the master for monkey-patching under preload_app.
 */
#include "qlnconfig.h"

#include <stddef.h>

#include <qilin/plugin.h>

#include "green.h"

/*
 * Waits use io watchers made once per connection (hub.loop.io) and
 * hub.wait(), the way gevent's own sockets wait; their timeout is the
 * connection's TimedWaiter timer (green.c), not a gevent.Timeout per wait
 * (hello: 86k -> 103k req/s).
 * The connection greenlets are a Crew (green.c): a parked one waits on a
 * gevent Waiter, which the accept loop fills through a hub callback.
 * Before it accepts, the accept loop waits for a free worker_connections
 * slot, so a full worker leaves new connections to the kernel queue (and
 * to other workers).
 *
 * Unless GEVENT_LOOP names a loop, the hub runs PreciseLoop: gevent's libev
 * loop, plus a timerfd that ends its waits on time. libev's epoll backend
 * waits whole milliseconds, rounded up, so each timer fired up to 1 ms late
 * (0.5 ms on average: 1 % of a 50 ms sleep). libev shows no one its timer
 * heap, so the loop keeps its own: a timer made for less than HORIZON is a
 * PreciseTimer, which goes on that heap each time it starts, and a prepare
 * watcher, run after gevent's own, arms the timerfd to the earliest timer
 * still running. A longer timer keeps libev's millisecond, at most 0.1 % of
 * its length, and stays off the heap, where timeouts of seconds, mostly
 * cancelled long before they are due, would pile up.
 */
static const char gevent_bootstrap[] =
    "import os\n"
    "from heapq import heappop, heappush, heapreplace\n"
    "import gevent\n"
    "from gevent._hub_local import get_hub_if_exists\n"
    "from gevent.event import Event\n"
    "from gevent.hub import Waiter as HubWaiter, get_hub\n"
    "from gevent.lock import Semaphore\n"
    "\n"
    "TICK = 0.25\n"
    "HORIZON = 1.0\n"
    "_hub = _loop = None\n"
    "\n"
    "class Closed(Exception):\n"
    "    pass\n"
    "\n"
    "try:\n"
    "    from gevent.libev.corecext import loop as _libev_loop, timer as _libev_timer\n"
    "except ImportError:\n"
    "    PreciseLoop = None\n"
    "else:\n"
    "    class PreciseTimer(_libev_timer):\n"
    "        __module__ = 'qilin.gevent'\n"
    "        __slots__ = ()\n"
    "\n"
    "        def start(self, callback, *args, **kwargs):\n"
    "            _libev_timer.start(self, callback, *args, **kwargs)\n"
    "            self.loop._fresh.append(self)\n"
    "\n"
    "        def again(self, callback, *args, **kwargs):\n"
    "            _libev_timer.again(self, callback, *args, **kwargs)\n"
    "            self.loop._fresh.append(self)\n"
    "\n"
    "    class PreciseLoop(_libev_loop):\n"
    "        __module__ = 'qilin.gevent'\n"
    "\n"
    "        def __init__(self, *args, **kwargs):\n"
    "            _libev_loop.__init__(self, *args, **kwargs)\n"
    "            self._fresh = []\n"
    "            self._due = []\n"
    "            self._armed = 0.0\n"
    "            self._clock_fd = -1\n"
    "            self._open_clock()\n"
    "            self._arming = self.prepare(ref=False, priority=-2)\n"
    "            self._arming.start(self._arm)\n"
    "\n"
    "        def _open_clock(self):\n"
    "            self._clock_fd = timerfd_open()\n"
    "            self._armed = 0.0\n"
    "            self._ring = self.io(self._clock_fd, 1, ref=False)\n"
    "            self._ring.start(self._rung)\n"
    "\n"
    "        def _close_clock(self):\n"
    "            if self._clock_fd >= 0:\n"
    "                self._ring.close()\n"
    "                os.close(self._clock_fd)\n"
    "                self._clock_fd = -1\n"
    "\n"
    "        def _rung(self):\n"
    "            try:\n"
    "                os.read(self._clock_fd, 8)\n"
    "            except BlockingIOError:\n"
    "                pass\n"
    "            self._armed = 0.0\n"
    "\n"
    "        def timer(self, after, repeat=0.0, ref=True, priority=None):\n"
    "            if after < HORIZON:\n"
    "                return PreciseTimer(self, after, repeat, ref, priority)\n"
    "            return _libev_loop.timer(self, after, repeat, ref, priority)\n"
    "\n"
    "        def _arm(self):\n"
    "            due = self._due\n"
    "            fresh = self._fresh\n"
    "            if fresh:\n"
    "                for t in fresh:\n"
    "                    if t.active:\n"
    "                        heappush(due, (t.at, id(t), t))\n"
    "                fresh.clear()\n"
    "            while due:\n"
    "                at, key, t = due[0]\n"
    "                if not t.active:\n"
    "                    heappop(due)\n"
    "                elif t.at != at:\n"
    "                    heapreplace(due, (t.at, key, t))\n"
    "                else:\n"
    "                    if at != self._armed and self._clock_fd >= 0:\n"
    "                        timerfd_arm(self._clock_fd, at, True)\n"
    "                        self._armed = at\n"
    "                    return\n"
    "\n"
    "        def reinit(self):\n"
    "            _libev_loop.reinit(self)\n"
    "            self._close_clock()\n"
    "            self._open_clock()\n"
    "\n"
    "        def destroy(self):\n"
    "            self._close_clock()\n"
    "            self._arming.close()\n"
    "            return _libev_loop.destroy(self)\n"
    "\n"
    "def prepare():\n"
    "    from gevent import monkey\n"
    "    if monkey.is_module_patched('socket'):\n"
    "        gevent.reinit()\n"
    "        return\n"
    "    if PreciseLoop is not None and not os.environ.get('GEVENT_LOOP') \\\n"
    "            and get_hub_if_exists() is None:\n"
    "        gevent.config.loop = PreciseLoop\n"
    "    monkey.patch_all()\n"
    "\n"
    "class Waiter(TimedWaiter):\n"
    "    __slots__ = ('fd', 'rd', 'wr')\n"
    "\n"
    "    def __init__(self, fd):\n"
    "        TimedWaiter.__init__(self)\n"
    "        self.fd = fd\n"
    "        self.rd = self.wr = None\n"
    "\n"
    "    def wait(self, events, seconds, idle):\n"
    "        if events == 1:\n"
    "            w = self.rd\n"
    "            if w is None:\n"
    "                w = self.rd = _loop.io(self.fd, 1)\n"
    "        elif events == 2:\n"
    "            w = self.wr\n"
    "            if w is None:\n"
    "                w = self.wr = _loop.io(self.fd, 2)\n"
    "        else:\n"
    "            w = _loop.io(self.fd, events)\n"
    "        self.begin(seconds, idle)\n"
    "        try:\n"
    "            _hub.wait(w)\n"
    "            return 0\n"
    "        except Expired:\n"
    "            return 1\n"
    "        finally:\n"
    "            self.end(idle)\n"
    "            if events == 3:\n"
    "                w.close()\n"
    "\n"
    "    def arm(self, seconds):\n"
    "        t = _loop.timer(seconds)\n"
    "        t.start(self.expired)\n"
    "        return t\n"
    "\n"
    "    def disarm(self, timer):\n"
    "        timer.close()\n"
    "\n"
    "    def close(self):\n"
    "        self.drop_timer()\n"
    "        for w in (self.rd, self.wr):\n"
    "            if w is not None:\n"
    "                _hub.cancel_wait(w, Closed(), True)\n"
    "        self.rd = self.wr = None\n"
    "\n"
    "class GeventCrew(Crew):\n"
    "    spawn = staticmethod(gevent.spawn)\n"
    "    current = staticmethod(gevent.getcurrent)\n"
    "    token = HubWaiter\n"
    "\n"
    "    def __init__(self, serve, max_conns):\n"
    "        Crew.__init__(self, serve, Semaphore(max_conns))\n"
    "        self.quiet = Event()\n"
    "\n"
    "    def park(self, waiter):\n"
    "        return waiter.get()\n"
    "\n"
    "    def wake(self, waiter, c):\n"
    "        _loop.run_callback(waiter.switch, c)\n"
    "\n"
    "    def drained(self):\n"
    "        self.quiet.set()\n"
    "\n"
    "def _accept_loop(fd, accept, crew):\n"
    "    io = _loop.io(fd, 1)\n"
    "    try:\n"
    "        while True:\n"
    "            crew.slots.wait()\n"
    "            c = accept(fd)\n"
    "            if c is None:\n"
    "                _hub.wait(io)\n"
    "            elif c is False:\n"
    "                gevent.sleep(0.5)\n"
    "            else:\n"
    "                crew.slots.acquire()\n"
    "                crew.start(c)\n"
    "    finally:\n"
    "        io.close()\n"
    "\n"
    "def run(fds, accept, serve, tick, max_conns, graceful_timeout, wake_fd, linger, drain_max):\n"
    "    global _hub, _loop\n"
    "    _hub = get_hub()\n"
    "    _loop = _hub.loop\n"
    "    stop = Event()\n"
    "    crew = GeventCrew(serve, max_conns)\n"
    "\n"
    "    def on_tick():\n"
    "        if tick() and not stop.is_set():\n"
    "            stop.set()\n"
    "\n"
    "    timer = _loop.timer(TICK, TICK)\n"
    "    timer.start(on_tick)\n"
    "    wake = _loop.io(wake_fd, 1)\n"
    "    wake.start(on_tick)\n"
    "    acceptors = [gevent.spawn(_accept_loop, fd, accept, crew) for fd in fds]\n"
    "    try:\n"
    "        stop.wait()\n"
    "    finally:\n"
    "        gevent.killall(acceptors)\n"
    "        if tick() == 1:\n"
    "            crew.linger(fds, accept, drain_max, linger)\n"
    "            if crew.busy:\n"
    "                crew.quiet.wait(graceful_timeout)\n"
    "        crew.stop()\n"
    "        gevent.killall(list(crew.members), timeout=1)\n"
    "        wake.close()\n"
    "        timer.close()\n";

static const struct green_flavor gevent_flavor = {
    .name = "gevent",
    .package = "gevent",
    .install = "apt-get install python3-gevent, or pip install gevent",
    .bootstrap = gevent_bootstrap,
};

static int
gevent_prepare(struct qln_worker *w, char *err, size_t errlen)
{
    return green_prepare(&gevent_flavor, w, err, errlen);
}

static int
gevent_run(struct qln_worker *w)
{
    return green_run(&gevent_flavor, w);
}

static const struct qln_worker_ops gevent_ops = {
    .size = sizeof(struct qln_worker_ops),
    .flags = QLN_WORKER_GREEN,
    .run = gevent_run,
    .prepare = gevent_prepare,
};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "gevent", .version = QLN_VERSION,
                  .description = "green threads on gevent's hub; the HTTP work stays in C",
                  .requires = (const char *const[]){"python3", NULL}, .worker = &gevent_ops);
