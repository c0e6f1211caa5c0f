"""The eventlet worker (-k eventlet): the same behaviour as the gevent
worker (the shared tests live in test_gevent.py)."""
import unittest

from qilintest import Server, green_asan_env, worker_built
from test_gevent import GreenWorkerTests, installed


@unittest.skipUnless(worker_built("eventlet"),
                     "the eventlet plugin is not built (configure --disable-eventlet)")
@unittest.skipUnless(installed("eventlet"), "eventlet is not installed (Debian: python3-eventlet)")
class EventletWorkerTest(GreenWorkerTests, unittest.TestCase):
    WORKER = "eventlet"
    PRECISE_CLOCK = "qilin.eventlet.PreciseHub"
    USERS_CLOCK = ("EVENTLET_HUB", "poll", "eventlet.hubs.poll.Hub")

    @staticmethod
    def env():
        return green_asan_env("eventlet")

    def test_gunicorn_class_path_alias(self):
        with Server(["-k", "gunicorn.workers.geventlet.EventletWorker"],
                    app="greenapp:app", env=self.env()) as srv:
            body = srv.get("/socket").body.decode()
            self.assertIn("Using worker: eventlet", srv.log_text())
        self.assertIn("eventlet", body)

    def test_a_busy_connection_does_not_pile_up_timers(self):
        # eventlet keeps a cancelled timer on its heap until half the heap is
        # cancelled; a timer per wait left one per request there, and their
        # garbage set off CPython's full collections. A connection's waits
        # share one timer.
        with self.server(["--keep-alive", "30"]) as srv, srv.connect() as c:
            for _ in range(300):
                self.assertEqual(c.request("GET", "/hello").body, b"hello")
            timers = int(c.request("GET", "/timers").body)
        self.assertLess(timers, 20)


if __name__ == "__main__":
    unittest.main()
