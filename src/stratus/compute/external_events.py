"""Nova's server external events (``POST /os-server-external-events``), the service layer.

Other services tell the compute API that something happened to a server: Cinder's
``volume-extended`` (the event's ``tag`` is the volume id) after an extend of an attached
volume; Neutron's ``network-vif-plugged``, ``network-changed`` and the others. Stratus's
agents converge from their own APIs, so only ``volume-extended`` acts here: the attached
volume's new size is read from the volume API and stored, and the host's compute agent is
woken, which has QEMU re-read the disk's capacity (``virsh blockresize``) so the running
guest sees the new size without a reattach. Every other accepted event is acknowledged.

Each event is answered with its own ``code``, as Nova does: 200 (accepted), 404 (no such
server) or 422 (the server has no host yet).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa

from stratus.compute import models as m
from stratus.compute.core import ComputeCore
from stratus.compute.volumes import ServerVolumes

LOG = logging.getLogger("stratus.compute")


@dataclass
class Event:
    """One event of the request, and (after :func:`deliver`) its outcome."""

    name: str
    server_uuid: str
    status: str = "completed"
    tag: str | None = None
    code: int = 200


def deliver(core: ComputeCore, events: list[Event]) -> list[Event]:
    """Give each event its code (and act on ``volume-extended``); returns them in order."""
    ids = sorted({e.server_uuid for e in events})
    with core.db.session() as s:
        rows = s.scalars(sa.select(m.Server).where(m.Server.id.in_(ids),
                                                   m.Server.deleted.is_(False))).all()
        hosts = {srv.id: srv.host for srv in rows}
    volumes = ServerVolumes(core)
    for event in events:
        if event.server_uuid not in hosts:
            event.code, event.status = 404, "failed"
            continue
        if not hosts[event.server_uuid]:
            event.code, event.status = 422, "failed"
            continue
        if event.name == "volume-extended" and event.tag:
            volumes.volume_extended(event.server_uuid, event.tag)
        LOG.info("server %s: external event %s (%s) %s", event.server_uuid, event.name,
                 event.tag or "-", event.status)
    return events
