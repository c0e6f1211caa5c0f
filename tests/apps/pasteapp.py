"""A Pyramid-style PasteDeploy app factory for test_paste.py: main(global_config,
**settings) returns a WSGI app that answers with what it was configured with,
and logs through the logger the .ini file configures."""
import json
import logging

log = logging.getLogger("pasteapp")


def main(global_config, **settings):
    def app(environ, start_response):
        log.warning("served %s", environ["PATH_INFO"])
        body = json.dumps({"global": {k: v for k, v in global_config.items()
                                      if k not in ("__file__", "here")},
                           "settings": settings,
                           "here": global_config.get("here")}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return app
