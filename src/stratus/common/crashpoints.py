"""Named crash points for fault-injection tests (``[debug] crash_at``).

A service calls :func:`arm` once at start with its configuration; :func:`crash_point`
then kills the process with SIGKILL when it reaches the point named by ``[debug]
crash_at`` (``STRATUS_DEBUG__CRASH_AT``), as a power cut or ``kill -9`` would. The
setting is empty by default, and then every call is a no-op: nothing is armed unless a
test asks for it. docs/crash-recovery.md lists the points.
"""

from __future__ import annotations

import logging
import os
import signal

from stratus.common.config import Config

LOG = logging.getLogger("stratus.crash")
_armed: str = ""


def arm(config: Config) -> str:
    """Read ``[debug] crash_at``; returns the armed point ("" when none)."""
    global _armed
    _armed = config.get("debug", "crash_at").strip()
    if _armed:
        LOG.warning("TEST ONLY: this process kills itself at crash point %s", _armed)
    return _armed


def disarm() -> None:
    """No crash point (tests that armed one in-process)."""
    global _armed
    _armed = ""


def crash_point(name: str) -> None:
    """SIGKILL this process if ``name`` is the armed crash point."""
    if _armed and _armed == name:
        LOG.warning("crash point %s reached: SIGKILL", name)
        os.kill(os.getpid(), signal.SIGKILL)
