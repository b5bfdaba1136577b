"""Logging of the services and the agents: what a person reads at INFO.

The API services log one line per request (the access log); :class:`LineFormatter` and
:func:`setup_service_logging` keep that line cheap.

An agent talks to its API several times every few seconds (long-polls, heartbeats,
reports); httpx logs each request at INFO, which buried the lines that matter. The
agents log state changes and errors at INFO and the HTTP traffic at DEBUG: httpx's (and
httpcore's) records are lowered to DEBUG, so they show only with ``[DEFAULT] debug``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HTTP_LOGGERS = ("httpx", "httpcore")


class TrafficToDebug(logging.Filter):
    """Lowers a record of the HTTP client's to DEBUG (and drops it unless DEBUG is on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def quiet_http_traffic() -> None:
    """Log the HTTP client's requests at DEBUG (idempotent)."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TrafficToDebug) for f in logger.filters):
            logger.addFilter(TrafficToDebug())


def setup_agent_logging(debug: bool, stream: TextIO | None = None) -> None:
    """An agent's logging: INFO (DEBUG with ``debug``) to stderr, HTTP traffic at DEBUG."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        stream=stream or sys.stderr, format=FORMAT)
    quiet_http_traffic()


SERVICE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"


class LineFormatter(logging.Formatter):
    """The services' log line. The time stamp's date and seconds are formatted once a
    second, not for every line (an API answers thousands of requests a second, each with
    an access-log line); the text is the standard ``2026-12-07 06:20:01,123``."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._second
        if second != int(record.created):
            second = int(record.created)
            text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
            self._second = (second, text)
        return f"{text},{int(record.msecs):03d}"


def setup_service_logging(debug: bool = False, stream: TextIO | None = None) -> None:
    """INFO (DEBUG with ``debug``) to stderr in :data:`SERVICE_FORMAT`. The line names no
    source file, function or thread, so logging is told not to look them up for each
    record (``logging._srcfile``, ``logThreads``, ``logMultiprocessing``: the logging
    HOWTO's "Optimization"); that look-up was a third of an access-log line's cost."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LineFormatter(SERVICE_FORMAT))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler])
