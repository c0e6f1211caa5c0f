"""--log-config (an ini file), --log-config-json and logconfig_dict: qilin's
error and access lines go through Python's logging, under the logger names
"gunicorn.error" and "gunicorn.access", configured as gunicorn configures
them: the user's dict is laid over gunicorn's defaults (stderr for the
error lines, stdout for the access lines), and an ini file gets
"__file__" and "here" as defaults.

--logger-class: an instance of a class with gunicorn's Logger interface
takes the lines instead, called as gunicorn calls it: made with the
configuration (cfg), error lines to its critical/error/warning/info/debug,
each request to access(resp, req, environ, request_time), USR1 to
reopen_files(), and a HUP that changed the logging settings to setup(cfg)."""
import ast
import datetime
import importlib
import io
import json
import logging
import logging.config
import os
import pwd
import grp
import traceback

CONFIG_DEFAULTS = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"],
                           "propagate": True, "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"],
                            "propagate": True, "qualname": "gunicorn.access"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic",
                    "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                          "stream": "ext://sys.stderr"},
    },
    "formatters": {
        "generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
                    "datefmt": "[%Y-%m-%d %H:%M:%S %z]", "class": "logging.Formatter"},
    },
}

ERROR = logging.getLogger("gunicorn.error")
ACCESS = logging.getLogger("gunicorn.access")


def _load(ini, dict_text, json_path):
    """Reads the one configuration given (dict, then JSON, then ini, as
    gunicorn picks) without applying it: ("dict", DICT) or ("ini", TEXT,
    PATH). Raises ValueError with one line naming the setting."""
    what = ("logconfig_dict" if dict_text else
            "--log-config-json %s" % json_path if json_path else "--log-config %s" % ini)
    try:
        if dict_text:
            config = dict(CONFIG_DEFAULTS)
            config.update(ast.literal_eval(dict_text))
            return ("dict", config), what
        if json_path:
            if not os.path.exists(json_path):
                raise FileNotFoundError("not found")
            config = dict(CONFIG_DEFAULTS)
            with open(json_path) as f:
                config.update(json.load(f))
            return ("dict", config), what
        if not os.path.exists(ini):
            raise FileNotFoundError("not found")
        with open(ini) as f:
            return ("ini", f.read(), ini), what
    except Exception as exc:
        raise ValueError("%s: %s" % (what, _why(exc))) from exc


def _why(exc):
    cause = exc.__cause__ or exc.__context__
    detail = "%s: %s" % (type(exc).__name__, exc)
    if cause is not None and str(cause) and str(cause) not in str(exc):
        detail += " (%s)" % cause
    return detail


def _apply(spec, what):
    try:
        if spec[0] == "dict":
            logging.config.dictConfig(spec[1])
        else:
            defaults = dict(CONFIG_DEFAULTS)
            defaults["__file__"] = spec[2]
            defaults["here"] = os.path.dirname(spec[2])
            logging.config.fileConfig(io.StringIO(spec[1]), defaults=defaults,
                                      disable_existing_loggers=False)
    except Exception as exc:
        raise ValueError("%s: %s" % (what, _why(exc))) from exc


_applied = None  # the configuration in force, as _load() read it


def configure(ini, dict_text, json_path, level):
    """Reads and applies the configuration. Raises ValueError with one line."""
    global _applied
    ERROR.setLevel(level)
    ACCESS.setLevel(logging.INFO)
    spec, what = _load(ini, dict_text, json_path)
    _apply(spec, what)
    _applied = spec


def signature(ini, dict_text, json_path):
    """What a change of the settings or of the files they name looks like."""
    stamps = []
    for path in (ini, json_path):
        try:
            st = os.stat(path) if path else None
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino) if st else None)
        except OSError:
            stamps.append(None)
    if _logger is not None:
        try:
            return (LoggerConfig().key(), tuple(stamps))
        except Exception:
            return None
    return (ini, dict_text, json_path, tuple(stamps))


def reconfigure(ini, dict_text, json_path, level):
    """HUP: applies the new configuration; when it cannot be read, or fails
    to apply, the one in force stays (applied again from what was read), as
    gunicorn 26.1 keeps the old one. None, or the line saying why."""
    global _applied
    if _logger is not None:
        return _setup_again()
    try:
        spec, what = _load(ini, dict_text, json_path)
        ERROR.setLevel(level)
        _apply(spec, what)
        _applied = spec
        return None
    except ValueError as exc:
        if _applied is not None and "spec" in locals():
            _apply(_applied, "the previous configuration")
        return str(exc)


def error(level, msg):
    if _logger is None:
        ERROR.log(level, msg)
    else:
        getattr(_logger, _METHODS.get(level, "error"))(msg)


def access(line, *request):
    """The access line; under --logger-class also the request, from which
    gunicorn's resp, req, environ and request_time are made. False when
    the core should write the line itself."""
    if _logger is None:
        ACCESS.info(line)
        return True
    status, headers, sent, duration_us, method, head, environ = request
    resp = _conf.Response(status)
    resp.headers, resp.sent, resp.response_length = headers, sent, sent
    uri = head[0]
    path, _, query = uri.partition("?")
    req = _conf.Request({"method": method, "path": path, "query": query}, head)
    try:
        _logger.access(resp, req, environ, datetime.timedelta(microseconds=duration_us))
        return True
    except Exception:
        why = ("--logger-class %s: access() failed; qilin wrote the access line itself:\n%s"
               % (_spec, traceback.format_exc().rstrip("\n")))
        try:
            _logger.error(why)
        except Exception:
            _conf_log(40, why)
        return False


def reopen():
    """USR1: the logger's reopen_files(), or, under --log-config, every
    file handler reopened (as gunicorn's Logger.reopen_files does), so
    that logrotate's renamed files are let go."""
    if _logger is not None:
        fn = getattr(_logger, "reopen_files", None)
        if fn is not None:
            fn()
        return
    for log in [logging.root] + [logging.getLogger(n) for n in logging.root.manager.loggerDict]:
        for h in getattr(log, "handlers", ()):
            if isinstance(h, logging.FileHandler):
                h.acquire()
                try:
                    if h.stream:
                        h.close()
                        h.stream = h._open()
                finally:
                    h.release()


# --------------------------------------------------------------- --logger-class

_METHODS = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}
_NEEDS = ("critical", "error", "warning", "info", "debug", "access")
# What gunicorn's Logger.setup reads, as gunicorn's cfg has them.
_LOGGING_SETTINGS = (
    "loglevel", "errorlog", "accesslog", "access_log_format", "capture_output",
    "syslog", "syslog_addr", "syslog_prefix", "syslog_facility",
    "disable_redirect_access_to_syslog", "logconfig", "logconfig_dict",
    "logconfig_json", "user", "group", "proc_name")

_logger = None  # the instance, under --logger-class
_spec = None
_cfg_in_force = None
_conf = _conf_log = None


def _account(value, db, field):
    """gunicorn's cfg.user and cfg.group are numbers: a name is looked up,
    unset is this process's own."""
    if value is None or value == "":
        return os.geteuid() if db is pwd else os.getegid()
    if str(value).isdigit():
        return int(value)
    return getattr(db.getpwnam(value) if db is pwd else db.getgrnam(value), field)


class LoggerConfig:
    """The cfg a logger class gets: the logging settings as they were when
    it was made (gunicorn hands setup() the configuration of that moment,
    and the previous one back when a new one fails), any other setting read
    live, by gunicorn's name."""

    def __init__(self):
        cfg = _conf.CFG
        v = {name: getattr(cfg, name) for name in _LOGGING_SETTINGS}
        v["logconfig_dict"] = ast.literal_eval(v["logconfig_dict"]) if v["logconfig_dict"] else {}
        v["errorlog"] = v["errorlog"] or "-"
        v["loglevel"] = v["loglevel"] or "info"
        v["user"] = _account(v["user"], pwd, "pw_uid")
        v["group"] = _account(v["group"], grp, "gr_gid")
        v["proc_name"] = (v["proc_name"] or cfg.wsgi_app or cfg.paste or "qilin")
        self.__dict__["_values"] = v

    def __getattr__(self, name):
        values = self.__dict__["_values"]
        if name in values:
            return values[name]
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(_conf.CFG, name)

    def __setattr__(self, name, value):
        self.__dict__["_values"][name] = value

    def key(self):
        """What a HUP that changed the logging settings looks like."""
        return repr(sorted(self.__dict__["_values"].items()))


def _load_class(spec):
    """gunicorn's load_class: "module.Class", "module:Class", or
    "egg:DIST#NAME" (an entry point of group gunicorn.loggers)."""
    if spec.startswith("egg:"):
        from importlib.metadata import distribution
        dist, _, name = spec[4:].partition("#")
        for ep in distribution(dist).entry_points:
            if ep.group == "gunicorn.loggers" and ep.name == name:
                return ep.load()
        raise ImportError("no entry point %s in group gunicorn.loggers of %s" % (name, dist))
    if ":" in spec:
        module, _, attr = spec.partition(":")
    else:
        module, _, attr = spec.rpartition(".")
    if not module or not attr:
        raise ImportError("'%s' is not module.Class" % spec)
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def start_logger(spec, cls):
    """Makes the logger from CLS (logger_class = SomeClass in a config
    file) or SPEC. Raises ValueError with one line naming the setting."""
    global _logger, _spec, _cfg_in_force, _conf, _conf_log
    import qilin.conf as conf_module
    from qilin._conf import log
    _conf, _conf_log, _spec = conf_module, log, spec
    # The config file's class, unless the command line named another.
    if cls is not None and "%s.%s" % (cls.__module__, cls.__qualname__) != spec:
        cls = None
    try:
        cls = cls if cls is not None else _load_class(spec)
        cfg = LoggerConfig()
        logger = cls(cfg)
    except Exception as exc:
        raise ValueError("--logger-class %s: %s" % (spec, _why(exc))) from exc
    missing = [m for m in _NEEDS if not callable(getattr(logger, m, None))]
    if missing:
        raise ValueError("--logger-class %s: the object has no %s(): a logger class needs "
                         "gunicorn's Logger methods (%s)" % (spec, missing[0], ", ".join(_NEEDS)))
    fn = getattr(logger, "close_on_exec", None)
    if fn is not None:
        fn()
    _logger, _cfg_in_force = logger, cfg


def _setup_again():
    """HUP: the logger's setup() with the new settings; when it fails, with
    the previous ones again, as gunicorn 26.1 does. None, or why."""
    global _cfg_in_force
    setup = getattr(_logger, "setup", None)
    try:
        cfg = LoggerConfig()
    except Exception as exc:
        return "--logger-class %s: %s" % (_spec, _why(exc))
    if setup is None:
        return None
    try:
        setup(cfg)
        _cfg_in_force = cfg
        return None
    except Exception as exc:
        try:
            setup(_cfg_in_force)
        except Exception:
            pass
        return "--logger-class %s: setup() failed: %s" % (_spec, _why(exc))
