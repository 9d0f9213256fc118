"""Logging from a job: lines go to the runner's log, tagged with the job and run id.

``log.info("read %d series", n)`` or Python's own ``logging`` module (the SDK routes it
here, so ``logging.getLogger(__name__).warning(...)`` works as in a tglib service).
``print`` also reaches the runner's log, as the run's stdout, without a level.
"""

import logging as _py_logging

from wit_world.imports import logging as _host

Level = _host.Level


def _emit(level, message, args):
    text = str(message) % args if args else str(message)
    _host.log(level, text)


def trace(message, *args):
    _emit(Level.TRACE, message, args)


def debug(message, *args):
    _emit(Level.DEBUG, message, args)


def info(message, *args):
    _emit(Level.INFO, message, args)


def warn(message, *args):
    _emit(Level.WARN, message, args)


warning = warn


def error(message, *args):
    _emit(Level.ERROR, message, args)


class RunnerHandler(_py_logging.Handler):
    """A ``logging`` handler that writes records to the runner's log at their level."""

    def emit(self, record):
        if record.levelno >= _py_logging.ERROR:
            level = Level.ERROR
        elif record.levelno >= _py_logging.WARNING:
            level = Level.WARN
        elif record.levelno >= _py_logging.INFO:
            level = Level.INFO
        elif record.levelno >= _py_logging.DEBUG:
            level = Level.DEBUG
        else:
            level = Level.TRACE
        try:
            _host.log(level, self.format(record))
        except Exception:  # a log line must never end the run
            self.handleError(record)


def install():
    """Routes Python's root logger to the runner (every level: the runner filters)."""
    root = _py_logging.getLogger()
    if not any(isinstance(h, RunnerHandler) for h in root.handlers):
        root.addHandler(RunnerHandler())
    root.setLevel(_py_logging.NOTSET)
