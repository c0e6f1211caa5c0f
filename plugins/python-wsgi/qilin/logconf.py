"""--log-config (an ini file), --log-config-json and logconfig_dict: qilin's
error and access lines go through Python's logging, under the logger names
"gunicorn.error" and "gunicorn.access", configured as gunicorn configures
them: the user's dict is laid over gunicorn's defaults (stderr for the
error lines, stdout for the access lines), and an ini file gets
"__file__" and "here" as defaults."""
import ast
import io
import json
import logging
import logging.config
import os

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
    return (ini, dict_text, json_path, tuple(stamps))


def reconfigure(ini, dict_text, json_path, level):
    """HUP: applies the new configuration; when it cannot be read, or fails
    to apply, the one in force stays (applied again from what was read), as
    gunicorn 26.1 keeps the old one. None, or the line saying why."""
    global _applied
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
    ERROR.log(level, msg)


def access(line):
    ACCESS.info(line)
