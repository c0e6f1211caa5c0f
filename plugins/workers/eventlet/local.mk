# Worker plugin eventlet (issue 6).
