"""The loggers gunicorn configures, which applications use as their own.

Flask's and Django's deployment guides say "app.logger.handlers =
logging.getLogger('gunicorn.error').handlers". install() gives both a
handler that hands each record to qilin's logs: "gunicorn.error" to the
error log, in its line format and at the record's level, and
"gunicorn.access" to the access log as it is. "gunicorn.error" is at
--log-level, as gunicorn sets it. errors.c passes the two writers.
"""

import logging

class QilinHandler(logging.Handler):
    def __init__(self, write):
        logging.Handler.__init__(self)
        self.write = write

    def emit(self, record):
        try:
            self.write(record.levelno, self.format(record))
        except Exception:
            self.handleError(record)

def install(write_error, write_access, level):
    for name, write, lvl in (('gunicorn.error', write_error, level),
                             ('gunicorn.access', write_access, logging.INFO)):
        log = logging.getLogger(name)
        log.handlers = [QilinHandler(write)]
        log.setLevel(lvl)
        log.propagate = False
