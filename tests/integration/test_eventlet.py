"""The eventlet worker (-k eventlet): the same behaviour as the gevent
worker (the shared tests live in test_gevent.py)."""
import unittest

from qilintest import Server, worker_built
from test_gevent import GreenWorkerTests, asan_env, installed


@unittest.skipUnless(worker_built("eventlet"),
                     "the eventlet plugin is not built (configure --disable-eventlet)")
@unittest.skipUnless(installed("eventlet"), "eventlet is not installed (Debian: python3-eventlet)")
class EventletWorkerTest(GreenWorkerTests, unittest.TestCase):
    WORKER = "eventlet"

    @staticmethod
    def env():
        # eventlet imports dnspython, which loads OpenSSL and cryptography's
        # Rust extension; they keep allocations past interpreter
        # finalization, reached through frames LeakSanitizer cannot unwind.
        # The C bridge is gevent's, whose tests keep leak checking.
        env = asan_env()
        env["ASAN_OPTIONS"] += ":detect_leaks=0"
        return env

    def test_gunicorn_class_path_alias(self):
        with Server(["-k", "gunicorn.workers.geventlet.EventletWorker"],
                    app="greenapp:app", env=self.env()) as srv:
            body = srv.get("/socket").body.decode()
            self.assertIn("Using worker: eventlet", srv.log_text())
        self.assertIn("eventlet", body)

    def test_precise_hub_by_default(self):
        # eventlet's epoll hub wakes for timers in whole milliseconds; the
        # worker's hub ends each wait on a timerfd instead. Its timers all
        # fire, in order, and a far-off one is accepted.
        # Under --preload the master's hub is dropped in the worker, and its
        # timerfd closed: the worker holds as many timerfds either way.
        timerfds = []
        for extra in ([], ["--preload"]):
            with self.subTest(extra=extra), \
                    self.server(extra) as srv:
                body = srv.get("/hub").body.decode()
                timerfds.append(int(srv.get("/timerfds").body))
            self.assertEqual(body, "qilin.eventlet.PreciseHub [0.0002, 0.0005, 0.0011]")
        self.assertEqual(timerfds[0], timerfds[1])
        self.assertGreaterEqual(timerfds[0], 1)

    def test_users_hub_choice_is_kept(self):
        env = self.env()
        env["EVENTLET_HUB"] = "poll"
        with Server(["-k", self.WORKER], app="greenapp:app", env=env) as srv:
            body = srv.get("/hub").body.decode()
        self.assertEqual(body, "eventlet.hubs.poll.Hub [0.0002, 0.0005, 0.0011]")


if __name__ == "__main__":
    unittest.main()
