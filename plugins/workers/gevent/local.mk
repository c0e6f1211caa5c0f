# Worker plugin gevent (issue 6).
