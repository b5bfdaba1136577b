"""addFloatingIp / removeFloatingIp (Nova's deprecated server actions, below 2.44): a
floating IP associated with one of the server's fixed IPs, or taken off it, through the
network API with the caller's token (the network API decides what the caller may touch).
Nothing is kept in the compute database: the server's addresses read its floating IPs
from the network API each time.

Nova's answers: the server unknown 404; a fixed address given that is not the server's,
or a server without a fixed IPv4 address (when none is given), 400; no floating IP of
that address the caller can see 404; a floating IP that is not on this server (remove)
409; the network API refusing the association 400 (403 kept), unreachable 503.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, Protocol, cast

import sqlalchemy as sa

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
)
from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore


class FloatingIpCalls(Protocol):
    """What these actions ask of the network API (compute/downstream.py)."""

    def list_floatingips(self, token: str, **filters: Any) -> list[dict[str, Any]]: ...
    def update_floatingip(self, token: str, fip_id: str, body: dict[str, Any]
                          ) -> dict[str, Any]: ...


def _error(exc: ServiceError, what: str) -> ApiError:
    if exc.temporary:
        return ServiceUnavailable(f"The network API failed: {exc}")
    if exc.status == 403:
        return Forbidden(f"{what}: {exc}")
    return BadRequest(f"{what}: {exc}")


class ServerFloatingIps:
    """``ComputeCore``'s server floating-IP actions."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    @property
    def ds(self) -> FloatingIpCalls:
        return cast(FloatingIpCalls, self.core.downstream)

    def _ports(self, ctx: AuthContext, sid: str) -> list[m.ServerPort]:
        """The server's ports (404 for a server the caller cannot see)."""
        with self.core.db.session() as s:
            self.core.server(s, ctx, sid)
            rows = list(s.scalars(sa.select(m.ServerPort).where(
                m.ServerPort.server_id == sid).order_by(m.ServerPort.position)))
            s.expunge_all()
            return rows

    def _find(self, ctx: AuthContext, address: str) -> dict[str, Any]:
        try:
            found = self.ds.list_floatingips(str(ctx.token), floating_ip_address=address)
        except ServiceError as exc:
            raise _error(exc, f"Floating IP {address} could not be read") from None
        fip = next((f for f in found if f.get("floating_ip_address") == address), None)
        if fip is None:
            raise NotFound(f"floating IP not found: no floating IP {address} is visible to "
                           "you.")
        return fip

    def add(self, ctx: AuthContext, sid: str, address: str, fixed: str | None) -> None:
        """Associate the floating IP ``address`` with the server's fixed IP ``fixed``
        (else its first fixed IPv4 address)."""
        ports = self._ports(ctx, sid)
        pairs = [(p.port_id, str(ip["ip_address"])) for p in ports for ip in p.fixed_ips or []]
        if fixed is not None:
            target = next(((p, a) for p, a in pairs if a == fixed), None)
            if target is None:
                raise BadRequest(f"Specified fixed address {fixed} is not assigned to "
                                 f"instance {sid}; its fixed addresses: "
                                 f"{', '.join(a for _, a in pairs) or 'none'}.")
        else:
            target = next(((p, a) for p, a in pairs
                           if ipaddress.ip_address(a).version == 4), None)
            if target is None:
                raise BadRequest(f"Unable to associate floating IP {address} to any fixed IPs "
                                 f"for instance {sid}. Instance has no fixed IPv4 addresses "
                                 "to associate.")
        fip = self._find(ctx, address)
        try:
            self.ds.update_floatingip(str(ctx.token), fip["id"], {
                "port_id": target[0], "fixed_ip_address": target[1]})
        except ServiceError as exc:
            raise _error(exc, f"Unable to associate floating IP {address} to fixed IP "
                         f"{target[1]} for instance {sid}") from None

    def remove(self, ctx: AuthContext, sid: str, address: str) -> None:
        """Take the floating IP ``address`` off the server (409 when it is not on it)."""
        ports = {p.port_id for p in self._ports(ctx, sid)}
        fip = self._find(ctx, address)
        if fip.get("port_id") not in ports:
            raise Conflict(f"Floating IP {address} is not associated with instance {sid}.")
        try:
            self.ds.update_floatingip(str(ctx.token), fip["id"], {"port_id": None})
        except ServiceError as exc:
            raise _error(exc, f"Unable to disassociate floating IP {address} from instance "
                         f"{sid}") from None
