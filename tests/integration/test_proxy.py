"""--forwarded-allow-ips (issue 3): gunicorn's secure scheme headers set
wsgi.url_scheme only when the peer is trusted (addresses, CIDR networks,
`*`, or $FORWARDED_ALLOW_IPS when the option is unset); from any other peer
they are ignored, contradictions included. A bad value is one error line at
startup."""
import json
import unittest

from qilintest import Server, run_qilin

HTTPS = [("X-Forwarded-Proto", "https")]
CONFLICT = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")]


def scheme(srv, headers):
    resp = srv.get("/environ", headers=headers)
    assert resp.status == 200, resp
    return json.loads(resp.body)["wsgi.url_scheme"]


class ForwardedAllowIps(unittest.TestCase):
    def test_untrusted_peer_headers_ignored(self):
        with Server(["--forwarded-allow-ips", "10.0.0.0/8, 192.168.1.1"]) as srv:
            self.assertEqual(scheme(srv, HTTPS), "http")
            # Not trusted, so not read at all: no 400 for the contradiction.
            self.assertEqual(scheme(srv, CONFLICT), "http")

    def test_trusted_network(self):
        with Server(["--forwarded-allow-ips", "127.0.0.0/8"]) as srv:
            self.assertEqual(scheme(srv, HTTPS), "https")
            self.assertEqual(scheme(srv, [("X-Forwarded-Ssl", "on")]), "https")
            self.assertEqual(scheme(srv, []), "http")
            self.assertEqual(srv.get("/environ", headers=CONFLICT).status, 400)
            srv.wait_log(r"Invalid request from ip=127\.0\.0\.1: Contains contradictory scheme")

    def test_star_trusts_everyone(self):
        with Server(["--forwarded-allow-ips", "*"]) as srv:
            self.assertEqual(scheme(srv, HTTPS), "https")

    def test_environment_variable_when_option_unset(self):
        with Server([], env={"FORWARDED_ALLOW_IPS": "10.1.2.3"}) as srv:
            self.assertEqual(scheme(srv, HTTPS), "http")
        with Server(["--forwarded-allow-ips", "127.0.0.1"],
                    env={"FORWARDED_ALLOW_IPS": "10.1.2.3"}) as srv:
            self.assertEqual(scheme(srv, HTTPS), "https")

    def test_bad_value_is_one_error_line(self):
        res = run_qilin(["-b", "127.0.0.1:0", "--chdir", "/", "--forwarded-allow-ips",
                         "127.0.0.1,bogus", "testapp:app"])
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("--forwarded-allow-ips: 'bogus' is not an IP address or network",
                      res.output)


if __name__ == "__main__":
    unittest.main()
