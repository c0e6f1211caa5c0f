"""gunicorn.conf.py support, called by conf.c.

load() runs a config file (or a python: module) and returns its globals
with the line each was last assigned at, from the file's syntax tree, so
that a bad value is reported as FILE:LINE; describe() is the one-line
description of an exception; call() runs a server hook with the Server,
Worker, Request and Response objects gunicorn's hooks receive. log and cfg
are conf.c's C functions: a line in qilin's error log, and the effective
value of a qilin setting.
"""

import ast
import http
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys

from qilin._conf import cfg as _cfg, log as _log

def _lines(tree):
    found = {}
    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                  ast.ClassDef)):
                found[getattr(child, 'name', '')] = child.lineno
                continue
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                found[child.id] = child.lineno
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                for a in child.names:
                    found[(a.asname or a.name).split('.')[0]] = child.lineno
            visit(child)
    visit(tree)
    return found

def load(location, fresh):
    # gunicorn puts the working directory on sys.path before it reads the
    # file, so the file may import the project's modules.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if location.startswith('python:'):
        name = location[7:]
        if fresh:
            sys.modules.pop(name, None)
        mod = importlib.import_module(name)
        path = getattr(mod, '__file__', None) or location
    else:
        path = location
        loader = importlib.machinery.SourceFileLoader('__config__', path)
        spec = importlib.util.spec_from_file_location('__config__', path, loader=loader)
        mod = importlib.util.module_from_spec(spec)
        sys.modules['__config__'] = mod
        spec.loader.exec_module(mod)
    try:
        with open(path, 'rb') as f:
            lines = _lines(ast.parse(f.read(), path))
    except (OSError, SyntaxError, ValueError):
        lines = {}
    return path, [(k, v, lines.get(k, 0)) for k, v in vars(mod).items()
                  if not k.startswith('_')]

def describe(exc, path):
    if isinstance(exc, SyntaxError):
        return '%s:%s: %s: %s' % (exc.filename or path, exc.lineno or 0,
                                  type(exc).__name__, exc.msg)
    where, inner, tb = None, None, exc.__traceback__
    while tb is not None:
        f = tb.tb_frame.f_code.co_filename
        if f != __file__ and not f.startswith(('<frozen ', os.path.dirname(importlib.__file__))):
            inner = (f, tb.tb_lineno)
            if f == path:
                where = inner
        tb = tb.tb_next
    where = where or inner
    text = '%s: %s' % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    return '%s:%d: %s' % (where[0], where[1], text) if where else '%s: %s' % (path, text)

def sync_environ(entries):
    data = os.environ._data
    data.clear()
    for e in entries:
        k, _, v = e.partition(b'=')
        data[k] = v

class Log:
    def _emit(self, level, msg, args):
        _log(level, str(msg) % args if args else str(msg))
    def debug(self, msg, *args, **kw): self._emit(10, msg, args)
    def info(self, msg, *args, **kw): self._emit(20, msg, args)
    def warning(self, msg, *args, **kw): self._emit(30, msg, args)
    warn = warning
    def error(self, msg, *args, **kw): self._emit(40, msg, args)
    def critical(self, msg, *args, **kw): self._emit(50, msg, args)
    def exception(self, msg, *args, **kw):
        import traceback
        self._emit(40, msg, args)
        _log(40, traceback.format_exc().rstrip('\n'))
    def log(self, lvl, msg, *args, **kw): self._emit(lvl, msg, args)

class Config:
    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)
        return _cfg(name)

LOG, CFG = Log(), Config()

class Server:
    def __init__(self, rec):
        self.pid = rec['pid']
        self.num_workers = rec.get('workers')
        self.proc_name = rec.get('name')
        self.cfg, self.log = CFG, LOG

class Worker:
    def __init__(self, rec):
        self.pid = rec['pid'] or None
        self.ppid = os.getppid() if self.pid == os.getpid() else os.getpid()
        self.age = rec['age']
        self.exitcode = rec.get('exit_code')
        self.cfg, self.log = CFG, LOG

class Request:
    def __init__(self, rec, head):
        self.method, self.path, self.query = rec['method'], rec['path'], rec['query']
        self.uri, self.version, self.headers = head

class Response:
    def __init__(self, code):
        self.status_code = code
        try:
            self.status = '%d %s' % (code, http.HTTPStatus(code).phrase)
        except ValueError:
            self.status = str(code)

def _arity(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return -1
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)

def call(fn, name, args, head, environ):
    if name == 'nworkers_changed':
        a = (Server(args[0]), args[1], args[2])
    elif name in ('pre_request', 'post_request'):
        a = (Worker(args[0]), Request(args[1], head))
        if name == 'post_request':
            a += (environ, Response(args[1]['status']))
            # As gunicorn: a post_request of two or three positional
            # parameters gets the first two or three arguments.
            a = a[:_arity(fn)] if _arity(fn) in (2, 3) else a
    elif name in ('post_worker_init', 'worker_int', 'worker_abort'):
        a = (Worker(args[0]),)
    elif len(args) == 2:
        a = (Server(args[0]), Worker(args[1]))
    else:
        a = (Server(args[0]),)
    fn(*a)
