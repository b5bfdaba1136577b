"""Interfaces attached to and detached from a server (``os-interface``).

An attach takes the user's port (it must be free: no device) or makes one on the network
asked for (with the fixed IP asked for and the server's security groups), binds it to the
server's host as a create does (``Placement.make_port``), records it on the server and
wakes the host's agent, which hot-plugs the tap into the domain
(``agent/compute/converge.py``, ``ServerWork._converge_interfaces``). A detach removes the
record (the agent unplugs the tap on its next pass) and then deletes the port made for the
server, or frees the user's (device, owner and binding cleared), as Nova does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.common.timeutil import utcnow
from stratus.compute import models as m
from stratus.compute.instance_actions import record as record_action
from stratus.compute.server_actions import check_state

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore
    from stratus.compute.downstream import Downstream

INTERFACE_STATES = ("active", "stopped", "paused")  # Nova: ACTIVE, PAUSED, SHUTOFF


@dataclass
class AttachRequest:
    """What ``POST os-interface`` asks for: a port, or a network (and an address)."""

    port_id: str | None = None
    net_id: str | None = None
    fixed_ip: str | None = None
    tag: str | None = None


class ServerInterfaces:
    """Part of :class:`stratus.compute.servers.ServerFlow`: interfaces of a server."""

    core: ComputeCore
    ds: Downstream

    if TYPE_CHECKING:  # from Placement (placement.py) and ServerChecks (server_checks.py)
        def make_port(self, token: str | None, project: str, sid: str, host: str, az: str,
                      spec: dict[str, str], sg_ids: list[str]) -> dict[str, Any]: ...

        def drop_ports(self, ports: list[dict[str, Any]]) -> list[str]: ...

        def resolve_groups(self, ctx: AuthContext, names: list[str]) -> list[str]: ...

    def attach_interface(self, ctx: AuthContext, sid: str, req: AttachRequest
                         ) -> tuple[m.Server, m.ServerPort]:
        """Attach a port to the server (made on ``net_id`` or the user's ``port_id``);
        returns the server and the recorded port."""
        core = self.core
        with core.db.session() as s:
            srv = core.server(s, ctx, sid)
            check_state(srv, "attach_interface", INTERFACE_STATES,
                        srv.task_state is not None)
            host = str(srv.host)
            az = srv.availability_zone or core.settings.default_availability_zone
            project, groups = srv.project_id, list(srv.security_groups)
            position = 1 + max([p.position for p in s.scalars(sa.select(m.ServerPort).where(
                m.ServerPort.server_id == sid))], default=-1)
        spec: dict[str, str] = {}
        sg_ids: list[str] = []
        try:
            if not req.port_id and not req.net_id:
                req.net_id = self._only_network(ctx)
            if req.port_id:
                port = self.ds.get_port(ctx.token, req.port_id)
                if port.get("device_id"):
                    raise Conflict(f"Port {req.port_id} is still in use.")
                spec["port_id"] = req.port_id
            else:
                assert req.net_id is not None
                self.ds.get_network(ctx.token, req.net_id)
                spec["network_id"] = req.net_id
                if req.fixed_ip:
                    spec["fixed_ip"] = req.fixed_ip
                sg_ids = self.resolve_groups(ctx, groups or ["default"])
            made = self.make_port(ctx.token, project, sid, host, az, spec, sg_ids)
        except ServiceError as exc:
            if exc.status == 404:
                what = f"Port {req.port_id}" if req.port_id else f"Network {req.net_id}"
                raise NotFound(f"{what} could not be found.") from None
            if exc.status in (400, 409):
                raise (Conflict if exc.status == 409 else BadRequest)(
                    f"The network API refused the interface: {exc}") from None
            raise

        def record(s: Session) -> tuple[m.Server, m.ServerPort]:
            srv = core.server(s, ctx, sid)
            if srv.host != host:
                raise Conflict(f"Instance {sid} moved while the interface was attached.")
            row = m.ServerPort(server_id=sid, position=position, tag=req.tag, **made)
            s.add(row)
            for ip in made["fixed_ips"]:
                s.add(m.ServerAddress(network_id=made["network_id"],
                                      ip_address=ip["ip_address"], server_id=sid))
            srv.updated_at = utcnow()
            core.bump(s, host)
            record_action(s, ctx, srv, "attach_interface")  # compute/instance_actions.py
            s.flush()
            return srv, row

        try:
            return core.transaction(record)
        except Exception:
            self.drop_ports([made])  # nothing half-made: the port goes again
            raise

    def _only_network(self, ctx: AuthContext) -> str:
        """The one (not external) network the user can attach to; 400 when there are
        none or several (Nova's NetworkAmbiguous)."""
        nets = [n for n in self.ds.list_networks(ctx.token or "")
                if not n.get("router:external")]
        if not nets:
            raise BadRequest("No network is available to attach an interface on; give "
                             "net_id or port_id.")
        if len(nets) > 1:
            raise BadRequest("Multiple possible networks found, use a Network ID to be "
                             "more specific.")
        return str(nets[0]["id"])

    def detach_interface(self, ctx: AuthContext, sid: str, port_id: str) -> None:
        """Detach the port: forget it on the server (the agent unplugs it), then delete
        the port made for the server or free the user's."""
        core = self.core

        def forget(s: Session) -> dict[str, Any]:
            srv = core.server(s, ctx, sid)
            check_state(srv, "detach_interface", INTERFACE_STATES,
                        srv.task_state is not None)
            row = s.get(m.ServerPort, port_id)
            if row is None or row.server_id != sid:
                raise NotFound(f"Port {port_id} is not attached to the instance.")
            s.execute(sa.delete(m.ServerAddress).where(
                m.ServerAddress.server_id == sid,
                m.ServerAddress.network_id == row.network_id,
                m.ServerAddress.ip_address.in_([ip["ip_address"] for ip in row.fixed_ips])))
            out = {"port_id": row.port_id, "created_by_us": row.created_by_us}
            s.delete(row)
            srv.updated_at = utcnow()
            core.bump(s, srv.host)
            record_action(s, ctx, srv, "detach_interface")
            return out

        self.drop_ports([core.transaction(forget)])
