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
 * hub.wait() under a gevent.Timeout, the way gevent's own sockets wait.
 * The connection greenlets are a Crew (green.c): a parked one waits on a
 * gevent Waiter, which the accept loop fills through a hub callback.
 * Before it accepts, the accept loop waits for a free worker_connections
 * slot, so a full worker leaves new connections to the kernel queue (and
 * to other workers).
 */
static const char gevent_bootstrap[] =
    "import gevent\n"
    "from gevent import Timeout\n"
    "from gevent.event import Event\n"
    "from gevent.hub import Waiter as HubWaiter, get_hub\n"
    "from gevent.lock import Semaphore\n"
    "\n"
    "TICK = 0.25\n"
    "_hub = _loop = None\n"
    "_idle = set()\n"
    "\n"
    "class Stopping(Exception):\n"
    "    pass\n"
    "\n"
    "class Closed(Exception):\n"
    "    pass\n"
    "\n"
    "def prepare():\n"
    "    from gevent import monkey\n"
    "    if monkey.is_module_patched('socket'):\n"
    "        gevent.reinit()\n"
    "    else:\n"
    "        monkey.patch_all()\n"
    "\n"
    "class Waiter(object):\n"
    "    __slots__ = ('fd', 'rd', 'wr')\n"
    "\n"
    "    def __init__(self, fd):\n"
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
    "        if idle:\n"
    "            _idle.add(w)\n"
    "        t = Timeout._start_new_or_dummy(seconds)\n"
    "        try:\n"
    "            _hub.wait(w)\n"
    "            return 0\n"
    "        except Timeout as ex:\n"
    "            if ex is not t:\n"
    "                raise\n"
    "            return 1\n"
    "        finally:\n"
    "            t.close()\n"
    "            if idle:\n"
    "                _idle.discard(w)\n"
    "            if events == 3:\n"
    "                w.close()\n"
    "\n"
    "    def close(self):\n"
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
    "def run(fds, accept, serve, tick, max_conns, graceful_timeout):\n"
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
    "    acceptors = [gevent.spawn(_accept_loop, fd, accept, crew) for fd in fds]\n"
    "    try:\n"
    "        stop.wait()\n"
    "    finally:\n"
    "        gevent.killall(acceptors)\n"
    "        crew.stop()\n"
    "        for w in list(_idle):\n"
    "            _hub.cancel_wait(w, Stopping())\n"
    "        if tick() == 1 and crew.busy:\n"
    "            crew.quiet.wait(graceful_timeout)\n"
    "        gevent.killall(list(crew.members), timeout=1)\n"
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
