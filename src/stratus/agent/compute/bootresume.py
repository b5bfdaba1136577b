"""Resuming the guests a host boot stopped (like Nova's ``resume_guests_state_on_host_boot``).

The agent records the host's boot identity in its state directory (``instances_path/_boot_id``):
the kernel's boot id (``/proc/sys/kernel/random/boot_id``, new on every kernel boot) and the
start time of the init process it sees as PID 1 (``/proc/1/stat``), because a host that is
a container (systemd as PID 1 in podman, as the molecule scenarios run it) boots again
without a new kernel: its kernel boot id stays, its init is a new process. When the agent
starts and finds a different recorded identity, the host has booted since its last run:
every server the API still sees as running (``vm_state`` active, no task, desired power
running) whose domain is now shut off is started again, before the agent reports anything
about it. Servers a user stopped are ``stopped`` in the API and stay so. The new identity is
recorded only once every such server has been handled, so an agent killed half-way resumes
the rest when it restarts. A first start (nothing recorded) records it and resumes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

from stratus.contracts.compute import Assignment

LOG = logging.getLogger("stratus.agent.compute.bootresume")
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
INIT_STAT_PATH = "/proc/1/stat"


def read_boot_id(path: str = BOOT_ID_PATH) -> str:
    """This boot's id ('' when the kernel does not say)."""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def read_init_start(path: str = INIT_STAT_PATH) -> str:
    """When PID 1 started, in clock ticks after the kernel's boot (field 22 of its stat
    line); '' when it cannot be read (e.g. /proc mounted with hidepid)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return ""
    # "1 (systemd) S 0 1 ...": the command may hold spaces and parentheses, so the fields
    # are counted after its last ")" (which is followed by field 3, the state)
    fields = text[text.rfind(")") + 1:].split()
    return fields[19] if len(fields) > 19 and fields[19].isdigit() else ""


def boot_identity(boot_id_path: str = BOOT_ID_PATH, init_stat_path: str = INIT_STAT_PATH) -> str:
    """``<kernel boot id> init=<PID 1's start time>``: new on a kernel boot and on a
    container's (new init, same kernel); just the kernel's id when PID 1 cannot be read."""
    kernel = read_boot_id(boot_id_path)
    init = read_init_start(init_stat_path)
    return f"{kernel} init={init}" if kernel and init else kernel


def same_boot(recorded: str, current: str) -> bool:
    """Whether a recorded identity is this boot's. A record of an older agent (the kernel's
    id alone) is compared on the kernel's id only, so an upgrade is not taken for a boot."""
    if " " not in recorded:
        return recorded == current.split(" ", 1)[0]
    return recorded == current


class BootResume:
    """Which servers to start again after a host boot, decided once per boot."""

    def __init__(self, state_dir: str, enabled: bool, boot_id_path: str = BOOT_ID_PATH,
                 init_stat_path: str = INIT_STAT_PATH):
        self._record = Path(state_dir) / "_boot_id"  # "_": the agent's own file, no server's
        self._current = boot_identity(boot_id_path, init_stat_path)
        self._lock = threading.Lock()
        self._pending: set[str] | None = None  # None: not decided yet
        try:
            recorded = self._record.read_text().strip()
        except OSError:
            recorded = ""
        self.booted = bool(enabled and recorded and self._current
                           and not same_boot(recorded, self._current))
        if not self.booted:
            self._pending = set()
            self._save()
        else:
            LOG.info("the host booted since the agent last ran: resuming the servers that "
                     "were running (resume_guests_state_on_host_boot)")

    def decide(self, servers: list[Assignment]) -> None:
        """The first pass after a boot: the servers the API sees running."""
        with self._lock:
            if self._pending is not None:
                return
            self._pending = {a.id for a in servers
                             if a.vm_state == "active" and not a.task_state and not a.deleting
                             and (a.desired_power or "running") == "running"}
            if not self._pending:
                self._save()

    def take(self, server_id: str) -> bool:
        """Whether this server is to be started again (asked once per server)."""
        with self._lock:
            return self._pending is not None and server_id in self._pending

    def done(self, server_id: str) -> None:
        """The server was handled: once all are, record this boot."""
        with self._lock:
            if self._pending is None or server_id not in self._pending:
                return
            self._pending.discard(server_id)
            if not self._pending:
                self._save()

    def _save(self) -> None:
        if not self._current:
            return
        tmp = self._record.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            self._record.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(self._current + "\n")
            os.replace(tmp, self._record)
