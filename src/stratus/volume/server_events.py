"""External events owed to the compute API: Cinder's ``volume-extended``.

When an extend of an attached (``in-use``) volume is finished (the storage agent
reported the new size, ``volume/storage.py``), the same transaction writes one
``server_event`` row per server the volume is attached to. :class:`ServerEvents` sends
the pending rows to the compute API (``POST /v2.1/os-server-external-events``, as the
volume service's own service user, at microversion 2.51) and deletes the rows the compute
API answered; the compute API then has the host's agent grow the disk in the running
guest. The rows make this survive a kill -9: what was committed and not yet answered is
sent by the next flush (on the next report that finishes an extend, and at every sweep).
An answer that will never change (400, 404, 406, 409, 422) drops the rows with a
warning; no answer, 401/403 (a configuration to fix) or a 5xx keeps them for the next try.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.clients import ApiClient, Auth, ServiceError
from stratus.volume import models as m

if TYPE_CHECKING:
    from stratus.volume.core import VolumeCore

LOG = logging.getLogger("stratus.volume")
PATH = "/v2.1/os-server-external-events"
MICROVERSION = "2.51"  # the first with volume-extended
FINAL = (400, 404, 406, 409, 422)  # answers a retry will not change
BATCH = 100


class ComputeEvents(Protocol):
    """The compute API's external events (:class:`HttpComputeEvents`; a fake in tests)."""

    def send(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]: ...


class HttpComputeEvents:
    """``POST /v2.1/os-server-external-events`` with a service user's token."""

    def __init__(self, compute_url: str, auth: Auth | None, timeout: float = 30.0) -> None:
        self.client = ApiClient(compute_url, auth, timeout=timeout, service="compute")

    def send(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = self.client.post(PATH, json={"events": events}, headers={
            "OpenStack-API-Version": f"compute {MICROVERSION}",
            "X-OpenStack-Nova-API-Version": MICROVERSION})
        got = (out or {}).get("events", [])
        return got if isinstance(got, list) else []


class ServerEvents:
    """The pending events of one volume service process, and their sender."""

    def __init__(self, core: VolumeCore, compute: ComputeEvents | None = None) -> None:
        self.core = core
        self.compute = compute
        self.woken = threading.Event()
        self._lock = threading.Lock()

    def wake(self) -> None:
        """Ask the sender thread (``volume/app.py``) to flush now."""
        self.woken.set()

    def pending(self) -> list[m.ServerEvent]:
        with self.core.db.session() as s:
            return list(s.scalars(sa.select(m.ServerEvent).order_by(
                m.ServerEvent.created_at, m.ServerEvent.id).limit(BATCH)))

    def flush(self) -> int:
        """Send the pending events; returns how many the compute API answered (or were
        dropped). Without a compute API configured, events stay and a warning is logged."""
        with self._lock:
            rows = self.pending()
            if not rows:
                return 0
            if self.compute is None:
                LOG.warning("%d server event(s) pending, but no compute API is configured "
                            "([volume] compute_url): attached volumes' guests will not see "
                            "their new size until a reattach", len(rows))
                return 0
            events = [{"name": r.name, "server_uuid": r.server_uuid, "tag": r.tag}
                      for r in rows]
            try:
                answers = self.compute.send(events)
            except ServiceError as exc:
                if exc.status not in FINAL:
                    LOG.warning("server events not sent (%s): retried", exc)
                    return 0
                LOG.warning("server events refused by the compute API (%s): dropped %s",
                            exc, events)
                answers = []
            for ans in answers:
                if isinstance(ans, dict) and ans.get("code") != 200:
                    LOG.warning("server event %s for server %s: code %s", ans.get("name"),
                                ans.get("server_uuid"), ans.get("code"))
            ids = [r.id for r in rows]

            def work(s: Session) -> None:
                s.execute(sa.delete(m.ServerEvent).where(m.ServerEvent.id.in_(ids)))
            self.core.transaction(work)
            LOG.info("sent %d server event(s): %s", len(rows),
                     ", ".join(f"{r.name} {r.server_uuid} {r.tag}" for r in rows))
            return len(rows)
