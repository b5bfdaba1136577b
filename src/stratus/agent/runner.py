"""Running host commands, optionally inside a given network namespace.

The real drivers never call ``subprocess`` themselves: they go through a
:class:`Runner`, so the whole agent can be pointed at a network namespace
playing a host (``[agent] host_netns``, used by the multi-host tests).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence

LOG = logging.getLogger(__name__)


class CommandError(Exception):
    """A host command failed. ``temporary`` errors are retried next cycle."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, temporary: bool = True):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        self.temporary = temporary
        super().__init__(f"{' '.join(self.argv)} exited {returncode}: {self.stderr}")


class Runner:
    """Runs commands on the host (or inside ``netns`` when set)."""

    def __init__(self, netns: str | None = None, timeout: float = 30.0,
                 env: dict[str, str] | None = None):
        self.netns = netns or None
        self.timeout = timeout
        self.env = {**os.environ, **env} if env else None

    def wrap(self, argv: Sequence[str]) -> list[str]:
        if self.netns:
            return ["ip", "netns", "exec", self.netns, *argv]
        return list(argv)

    def run(self, argv: Sequence[str], check: bool = True, input: str | None = None,
            wrap: bool = True) -> str:
        """Run and return stdout. ``wrap=False`` runs outside ``netns``: named
        namespaces must be added/deleted from the initial mount namespace,
        which ``ip netns exec`` leaves."""
        full = self.wrap(argv) if wrap else list(argv)
        LOG.debug("run: %s", " ".join(full))
        try:
            proc = subprocess.run(
                full, input=input, capture_output=True, text=True, timeout=self.timeout,
                env=self.env,
            )
        except FileNotFoundError as exc:
            raise CommandError(full, 127, str(exc), temporary=False) from None
        except subprocess.TimeoutExpired:
            raise CommandError(full, -1, "timed out") from None
        if check and proc.returncode != 0:
            raise CommandError(full, proc.returncode, proc.stderr or proc.stdout)
        return proc.stdout

    def ok(self, argv: Sequence[str]) -> bool:
        """True when the command succeeds (used for existence checks)."""
        return subprocess.run(self.wrap(argv), capture_output=True, timeout=self.timeout,
                              env=self.env).returncode == 0

    def spawn(self, argv: Sequence[str], log_path: str) -> int:
        """Start a long-running process detached from the agent; returns its pid."""
        full = self.wrap(argv)
        LOG.debug("spawn: %s", " ".join(full))
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                full, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                env=self.env,
            )
        return proc.pid
