"""ASGI in the python3 plugin (module qilin.asgi): the event loop and lifespan.

HTTP requests are served by the plugin's C half (asgi.c), whose module
qilin._asgi gives these functions (attach is re-exported for the worker):

  attach(loop, hub)   the asyncio worker's running loop and its hub greenlet,
                      which request tasks run on; attach(None, None) at the end
  going_away()        the worker stops: open WebSockets close with 1001
  app()               the application as an ASGI 3 callable (ASGI 2 wrapped)
  setting(name)       a qilin setting's value (asgi_loop, asgi_lifespan ...)
  set_state(d)        the lifespan state dict each request scope gets a copy of
  log(level, msg[, exc])
                      a line in qilin's error log at LEVEL ('debug', 'info',
                      'warning', 'error', 'critical'), then EXC's traceback

new_loop() makes the loop --asgi-loop names: uvloop's or asyncio's; auto is
uvloop when it imports. Lifespan runs the ASGI lifespan protocol as
--asgi-lifespan says: on (a failure stops the worker), off, or auto (an app
that raises on the lifespan scope before it answers does not support it,
and the worker goes on without).

asyncio is imported by the functions that need it, in the asyncio worker:
this module is made in every interpreter, and asyncio imports ssl, which
loads OpenSSL into a master that may only read gunicorn.conf.py.
"""

from qilin._asgi import app, attach, going_away, log, set_state, setting

__all__ = ['attach', 'check_loop', 'going_away', 'new_loop', 'Lifespan']


def _uvloop(required):
    try:
        import uvloop
    except ImportError as e:
        if required:
            raise ImportError('--asgi-loop uvloop needs the uvloop package'
                              ' (apt-get install python3-uvloop, or pip install uvloop): %s' % e)
        return None
    return uvloop


def check_loop():
    if setting('asgi_loop') == 'uvloop':
        _uvloop(True)


def new_loop():
    import asyncio
    name = setting('asgi_loop')
    if name != 'asyncio':
        uvloop = _uvloop(name == 'uvloop')
        if uvloop is not None:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class Lifespan(object):
    def __init__(self, loop):
        import asyncio
        self.loop = loop
        self.mode = setting('asgi_lifespan')
        self.state = {}
        self.inbox = asyncio.Queue()
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.answered = False
        self.failed = None
        self.task = None

    async def startup(self):
        """Runs startup; False when the worker must not serve (the reason is logged)."""
        if self.mode == 'off':
            return True
        set_state(self.state)
        self.task = self.loop.create_task(self.main())
        await self.inbox.put({'type': 'lifespan.startup'})
        await self.started.wait()
        if self.failed is not None:
            log('error', 'Application startup failed: %s' % (self.failed or 'no message'))
            log('error', 'ASGI lifespan startup failed; the worker exits')
            return False
        if not self.answered and self.mode == 'on':
            log('error', 'ASGI lifespan startup failed: the application does not support the'
                ' lifespan protocol (--asgi-lifespan on)')
            return False
        return True

    async def shutdown(self):
        import asyncio
        if self.task is None or not self.answered:
            return
        await self.inbox.put({'type': 'lifespan.shutdown'})
        try:
            await asyncio.wait_for(self.stopped.wait(), 30)
        except asyncio.TimeoutError:
            log('warning', 'ASGI lifespan shutdown did not complete within 30 s')
        if self.failed is not None:
            log('error', 'Application shutdown failed: %s' % (self.failed or 'no message'))

    async def main(self):
        scope = {'type': 'lifespan', 'asgi': {'version': '3.0', 'spec_version': '2.3'},
                 'state': self.state}
        try:
            await app()(scope, self.receive, self.send)
        except BaseException as e:
            if self.answered or self.mode == 'on':
                log('error', 'Exception in ASGI lifespan', e)
                if not self.started.is_set():
                    self.failed = '%s: %s' % (type(e).__name__, e)
            else:
                log('info', "ASGI 'lifespan' protocol appears unsupported.")
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            self.started.set()
            self.stopped.set()

    async def receive(self):
        return await self.inbox.get()

    async def send(self, message):
        kind = message.get('type')
        if kind == 'lifespan.startup.complete':
            self.answered = True
            self.started.set()
        elif kind == 'lifespan.startup.failed':
            self.answered = True
            self.failed = message.get('message', '')
            self.started.set()
        elif kind == 'lifespan.shutdown.complete':
            self.stopped.set()
        elif kind == 'lifespan.shutdown.failed':
            self.failed = message.get('message', '')
            self.stopped.set()
        else:
            raise RuntimeError("Unexpected ASGI lifespan message '%s'" % kind)
