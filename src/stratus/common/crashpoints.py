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
from pathlib import Path

from stratus.common.config import Config
from stratus.common.handover import ENV_NOTIFY

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


def _handover_parent() -> int | None:
    """The hand-over parent above this worker (``common/handover.py``), if any: the first
    ancestor whose environment has no worker mark."""
    if not os.environ.get(ENV_NOTIFY):
        return None
    pid = os.getppid()
    for _ in range(4):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            status = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        if not any(v.startswith(ENV_NOTIFY.encode() + b"=") for v in env):
            return pid if pid > 1 else None
        pid = int(status.rsplit(")", 1)[1].split()[1])  # its parent
    return None


def crash_point(name: str) -> None:
    """SIGKILL the service if ``name`` is the armed crash point: this process and, under a
    hand-over parent, that parent too (a ``kill -9`` of the service, not only of a worker,
    which the parent would replace)."""
    if _armed and _armed == name:
        LOG.warning("crash point %s reached: SIGKILL", name)
        parent = _handover_parent()
        if parent is not None:
            os.kill(parent, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
