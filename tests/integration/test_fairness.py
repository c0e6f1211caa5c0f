"""Keep-alive connections take turns, on every worker class: a client that
sends its next request as soon as it has the previous answer (while the
app's close() still runs) does not keep the worker from a client that was
waiting: it is answered within a few of the busy client's requests, where
a worker that served the busy connection's requests back to back would
answer it only once the busy client stopped."""
import select
import unittest

from qilintest import Conn, Server, per_worker_class

HOT = 40  # the busy client's requests at most
TURNS = 4  # of them, at most, before the waiting client has its answer


class FairnessTest(unittest.TestCase):
    def test_waiting_client_gets_its_turn(self):
        with Server(["--keep-alive", "30"], app="fairapp:app") as srv:
            with Conn(srv.port) as hot, Conn(srv.port) as other:
                self.assertEqual(hot.request("GET", "/hot").body, b"hot")
                other.send_request("GET", "/other")
                answered_after = None
                for n in range(1, HOT + 1):
                    self.assertEqual(hot.request("GET", "/hot").body, b"hot")
                    if select.select([other.sock], [], [], 0)[0]:
                        answered_after = n
                        break
                self.assertIsNotNone(answered_after,
                                     "the waiting client had no answer after %d requests of the "
                                     "busy one" % HOT)
                self.assertLessEqual(answered_after, TURNS)
                self.assertEqual(other.read_response().body, b"other")


per_worker_class(globals(), FairnessTest)

if __name__ == "__main__":
    unittest.main()
