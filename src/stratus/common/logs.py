"""Logging of the agents: what a person reads at INFO.

An agent talks to its API several times every few seconds (long-polls, heartbeats,
reports); httpx logs each request at INFO, which buried the lines that matter. The
agents log state changes and errors at INFO and the HTTP traffic at DEBUG: httpx's (and
httpcore's) records are lowered to DEBUG, so they show only with ``[DEFAULT] debug``.
"""

from __future__ import annotations

import logging
import sys
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
