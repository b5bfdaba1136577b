"""addFixedIp / removeFixedIp (Nova's deprecated actions, below 2.44): one more fixed IP
on the server's port of a network, or one fewer, made in the network API with the
caller's token and recorded on the server's port (addresses, the metadata lookup)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import BadRequest
from stratus.common.timeutil import utcnow
from stratus.compute import models as m
from stratus.compute.instance_actions import record as record_action
from stratus.compute.server_checks import ServerChecks, downstream_error


class ServerFixedIps(ServerChecks):
    """Part of :class:`stratus.compute.servers.ServerFlow`: a server's extra fixed IPs."""

    def _fixed_ip_ports(self, ctx: AuthContext, sid: str) -> list[tuple[str, str]]:
        """(port id, network id) of the server's ports, in order."""
        with self.core.db.session() as s:
            self.core.server(s, ctx, sid)
            return [(p.port_id, p.network_id) for p in s.scalars(sa.select(m.ServerPort).where(
                m.ServerPort.server_id == sid).order_by(m.ServerPort.position))]

    def add_fixed_ip(self, ctx: AuthContext, sid: str, network_id: str) -> None:
        """Another address from the network's first subnet on the server's port there."""
        port_id = next((p for p, n in self._fixed_ip_ports(ctx, sid) if n == network_id), None)
        if port_id is None:
            raise BadRequest(f"Network {network_id} is not attached to instance {sid}.")
        try:
            subnets = self.ds.get_network(ctx.token, network_id).get("subnets") or []
            if not subnets:
                raise BadRequest(f"Network {network_id} has no subnet to take an address "
                                 "from.")
            current = list(self.ds.get_port(ctx.token, port_id).get("fixed_ips") or [])
            port = self.ds.update_port(ctx.token, port_id, {
                "fixed_ips": [*current, {"subnet_id": subnets[0]}]})
        except ServiceError as exc:
            raise downstream_error(exc, f"No fixed IP could be added to instance {sid}") \
                from None
        self._record(ctx, "addFixedIp", sid, port_id, network_id,
                     list(port.get("fixed_ips") or []))

    def remove_fixed_ip(self, ctx: AuthContext, sid: str, address: str) -> None:
        """Take ``address`` off the server's port that has it."""
        try:
            for port_id, network_id in self._fixed_ip_ports(ctx, sid):
                current = list(self.ds.get_port(ctx.token, port_id).get("fixed_ips") or [])
                kept = [ip for ip in current if ip.get("ip_address") != address]
                if len(kept) == len(current):
                    continue
                port = self.ds.update_port(ctx.token, port_id, {"fixed_ips": kept})
                self._record(ctx, "removeFixedIp", sid, port_id, network_id,
                             list(port.get("fixed_ips") or []))
                return
        except ServiceError as exc:
            raise downstream_error(exc, f"The fixed IP {address} could not be removed from "
                                   f"instance {sid}") from None
        raise BadRequest(f"Fixed IP address {address} is not associated with instance "
                         f"{sid}.")

    def _record(self, ctx: AuthContext, action: str, sid: str, port_id: str, network_id: str,
                fixed_ips: list[dict[str, Any]]) -> None:
        """The port's addresses as the network API now has them (and the instance
        action ``action``)."""
        core = self.core

        def work(s: Session) -> None:
            port = s.get(m.ServerPort, port_id)
            srv = s.get(m.Server, sid)
            if port is None or srv is None or srv.deleted:
                return
            port.fixed_ips = fixed_ips
            s.execute(sa.delete(m.ServerAddress).where(
                m.ServerAddress.server_id == sid, m.ServerAddress.network_id == network_id))
            s.flush()
            for ip in fixed_ips:
                s.add(m.ServerAddress(network_id=network_id, ip_address=ip["ip_address"],
                                      server_id=sid))
            srv.updated_at = utcnow()
            core.bump(s, srv.host)
            record_action(s, ctx, srv, action)  # compute/instance_actions.py

        core.transaction(work)
