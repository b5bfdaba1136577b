"""Rebuild (``POST /servers/{id}/action {"rebuild": ...}``): the server keeps its id, host,
ports and addresses and gets a fresh root disk from the (new) image.

The API checks the image against the server's flavor, records what changes (image, name,
metadata, key, user data, description, access addresses), sets ``task_state`` to
``rebuilding`` and raises the server's ``rebuild_generation``; the host's agent, woken by
``ComputeCore.bump``, sees the generation above the one it last rebuilt at and rebuilds
(``agent/compute/converge.py``, ``ServerWork._rebuild``), then reports the generation done,
which ends the task. Everything the agent needs is in the row, so a crash of the API after
the transaction, or of the agent half-way, leaves nothing stuck: the agent rebuilds again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict
from stratus.common.timeutil import utcnow
from stratus.compute import models as m
from stratus.compute.instance_actions import record as record_action
from stratus.compute.quotas import check_metadata_items
from stratus.compute.server_actions import check_state
from stratus.compute.server_checks import ServerChecks
from stratus.compute.server_reads import ServerReads, ServerShown

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

REBUILD_STATES = ("active", "stopped", "error")  # Nova: ACTIVE, SHUTOFF, ERROR


@dataclass
class RebuildRequest:
    """What a rebuild asks for; a key in ``changes`` is set (its value may be None: the
    key pair, user data or description removed), one absent is kept."""

    image_id: str
    changes: dict[str, Any] = field(default_factory=dict)
    reimage_volume: bool = False  # 2.93: a volume-backed server's rebuild is asked for


class ServerRebuild(ServerChecks, ServerReads):
    """Part of :class:`stratus.compute.servers.ServerFlow`: rebuilding a server."""

    core: ComputeCore

    def rebuild(self, ctx: AuthContext, sid: str, req: RebuildRequest) -> ServerShown:
        """Check and record the rebuild, wake the host's agent; returns the server to show
        (task ``rebuilding``)."""
        core = self.core

        def lookups(s: Session) -> tuple[m.Flavor, m.KeyPair | None]:
            srv = core.server(s, ctx, sid)
            check_state(srv, "rebuild", REBUILD_STATES, srv.task_state is not None)
            if not srv.image_id and req.reimage_volume:
                # 2.93: Nova's 409 when the server's host cannot re-image its boot volume
                raise Conflict("Rebuilding a volume-backed server is not supported by the "
                               "compute service of its host: Stratus cannot re-image the "
                               "boot volume (make a new server from the image instead).")
            if not srv.image_id:
                raise BadRequest("Unable to rebuild with a different image for a "
                                 "volume-backed server.")
            if "metadata" in req.changes:  # the server's project's limit (quota class)
                check_metadata_items(core.quota_limits(s, srv.project_id),
                                     len(req.changes["metadata"] or {}))
            f = srv.flavor
            flavor = m.Flavor(id=srv.flavor_id, name=f.get("name") or srv.flavor_id,
                              ram=int(f.get("ram") or 0), disk=int(f.get("disk") or 0),
                              vcpus=int(f.get("vcpus") or 1))
            key = None
            name = req.changes.get("key_name")
            if name is not None:
                key = s.scalars(sa.select(m.KeyPair).where(
                    m.KeyPair.user_id == ctx.user_id, m.KeyPair.name == name)).first()
                if key is None:
                    raise BadRequest(f"Invalid key_name provided: key pair {name} could not "
                                     "be found.")
            return flavor, key

        flavor, key = core.transaction(lookups)
        image = self.check_image(ctx, req.image_id, flavor)  # outside a transaction

        def record(s: Session) -> ServerShown:
            srv = core.server(s, ctx, sid)
            check_state(srv, "rebuild", REBUILD_STATES, srv.task_state is not None)
            ch = req.changes
            srv.image_id, srv.image = req.image_id, image
            if "name" in ch:
                srv.name = ch["name"]
            if "metadata" in ch:
                srv.meta = dict(ch["metadata"])
            if "key_name" in ch:
                srv.key_name = key.name if key else None
                srv.key_data = key.public_key if key else None
                srv.key_type = key.type if key else None
            if "user_data" in ch:
                srv.user_data = ch["user_data"]
            if "description" in ch:
                srv.description = ch["description"]
            if "hostname" in ch:  # 2.90
                srv.hostname = ch["hostname"]
            if "disk_config" in ch:  # OS-DCF:diskConfig
                srv.disk_config = ch["disk_config"]
            if "accessIPv4" in ch:
                srv.access_ip_v4 = ch["accessIPv4"]
            if "accessIPv6" in ch:
                srv.access_ip_v6 = ch["accessIPv6"]
            srv.desired_power = "shutdown" if srv.vm_state == "stopped" else "running"
            srv.task_state = "rebuilding"
            srv.rebuild_generation = (srv.rebuild_generation or 0) + 1
            srv.updated_at = utcnow()
            core.bump(s, srv.host)
            record_action(s, ctx, srv, "rebuild")  # compute/instance_actions.py
            s.flush()
            return self._shown(s, ctx, srv)

        return self._with_floating(core.transaction(record))
