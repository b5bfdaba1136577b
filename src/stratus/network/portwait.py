"""The long-poll on a port's status: the compute agent waits for ACTIVE without polling.

A port becomes ACTIVE when its host's network agent reports it plugged and filtered
(``PUT /v2.0/stratus-agent/hosts/{host}/ports``, ``hosts.py``). The compute agent
starts a guest only once its ports are ACTIVE; instead of asking once a second it
long-polls ``GET /v2.0/stratus-agent/ports/{port_id}/status?wait=<s>``
(``api/port_wait.py``), which answers as soon as the port is ACTIVE.

:class:`PortStatusWatch` maps that onto :class:`stratus.common.longpoll.KeyedWatch`:
the "counter" of a port is 1 while it is ACTIVE and 0 otherwise, so a waiter with
``since=0`` wakes when the port turns ACTIVE, and one read of every waited-on port
per ``longpoll.POLL_INTERVAL`` serves every waiter of the process (none when nobody
waits). A port that does not exist has no counter: its waiter wakes at once.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

import sqlalchemy as sa

from stratus.common.longpoll import KeyedWatch
from stratus.network import models as m

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore

ACTIVE = "ACTIVE"


class PortStatusWatch:
    """Ports' statuses for the long-poll (see the module docstring)."""

    def __init__(self, core: NetworkCore) -> None:
        self.core = core
        self.watch: KeyedWatch[str] = KeyedWatch(self._read)

    def _read(self, port_ids: frozenset[str]) -> Mapping[str, int]:
        with self.core.db.session() as s:
            rows = s.execute(sa.select(m.Port.id, m.Port.status)
                             .where(m.Port.id.in_(sorted(port_ids))))
            return {pid: int(status == ACTIVE) for pid, status in rows}

    def status(self, port_id: str) -> str | None:
        """The port's status now, None when there is no such port."""
        with self.core.db.session() as s:
            return s.scalar(sa.select(m.Port.status).where(m.Port.id == port_id))

    async def wait_active(self, port_id: str, timeout: float) -> None:
        """Return once the port is ACTIVE, gone, or ``timeout`` seconds passed."""
        await self.watch.wait(port_id, 0, timeout)


_WATCHES: weakref.WeakKeyDictionary[NetworkCore, PortStatusWatch] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def watch_of(core: NetworkCore) -> PortStatusWatch:
    """The one :class:`PortStatusWatch` of ``core`` (made on first use)."""
    with _LOCK:
        found = _WATCHES.get(core)
        if found is None:
            found = _WATCHES[core] = PortStatusWatch(core)
        return found
