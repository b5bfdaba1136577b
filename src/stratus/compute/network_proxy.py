"""Nova's nova-network proxy APIs over the network API: os-floating-ips, os-floating-ip-pools,
os-networks and os-tenant-networks. Every call is made with the caller's token (the network
API decides what the caller may see and do); nothing is kept here. A network API failure is
answered as Nova answers it, never as a 500."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    ServiceUnavailable,
)

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

EXTERNAL = "router:external"
# The keys os-networks shows an admin besides id, label and the addressing keys; nova-network
# is gone, so Nova answers every one of them null for a network API network (as here).
NETWORK_KEYS = ("cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "cidr_v6",
                "gateway_v6", "netmask_v6")
ADMIN_NETWORK_KEYS = (
    "created_at", "updated_at", "deleted_at", "deleted", "injected", "bridge", "vlan",
    "vpn_public_address", "vpn_public_port", "vpn_private_address", "dhcp_start",
    "project_id", "host", "bridge_interface", "multi_host", "priority", "rxtx_base", "mtu",
    "dhcp_server", "enable_dhcp", "share_address")


class NetworkCalls(Protocol):
    """What the proxies ask of the network API (compute/downstream.py's HttpDownstream)."""

    def get_network(self, token: str | None, network_id: str) -> dict[str, Any]: ...
    def list_networks(self, token: str, **filters: Any) -> list[dict[str, Any]]: ...
    def get_port(self, token: str | None, port_id: str) -> dict[str, Any]: ...
    def list_floatingips(self, token: str, **filters: Any) -> list[dict[str, Any]]: ...
    def get_floatingip(self, token: str, fip_id: str) -> dict[str, Any]: ...
    def create_floatingip(self, token: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def delete_floatingip(self, token: str, fip_id: str) -> None: ...


def neutron_type(exc: ServiceError) -> str:
    """The NeutronError type of a refusal ('' when the body has none)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("NeutronError")
    return str(err.get("type", "")) if isinstance(err, dict) else ""


def proxy_error(exc: ServiceError, what: str) -> ApiError:
    """A network API failure as Nova reports it: 404 stays 404, 403 stays 403, an unreachable
    or failing network API is a 503, anything else it refused a 400."""
    if exc.temporary:
        return ServiceUnavailable(f"The network API failed: {exc}")
    if exc.status == 404:
        return NotFound(f"{what} could not be found.")
    if exc.status == 403:
        return Forbidden(f"{what}: the network API does not allow it: {exc}")
    return BadRequest(f"{what}: {exc}")


def pool_name(network: dict[str, Any]) -> str:
    """A pool is an external network, named by its name, or its ID when it has none."""
    return str(network.get("name") or network["id"])


class NetworkProxy:
    """The proxies' service layer, one per request (it holds only the core)."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    @property
    def ds(self) -> NetworkCalls:
        calls: NetworkCalls = self.core.downstream  # type: ignore[assignment]
        return calls

    # ---- floating IPs -------------------------------------------------------------------

    def _pools(self, token: str) -> list[dict[str, Any]]:
        return self.ds.list_networks(token, **{EXTERNAL: True})

    def _shown(self, token: str, fips: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Nova's ``floating_ip``: id, ip, fixed_ip, instance_id (the device of the port it
        is on), pool (its network's name)."""
        names: dict[str, str] = {}
        for net in self._pools(token):
            names[str(net["id"])] = pool_name(net)
        out = []
        for fip in fips:
            net_id = str(fip.get("floating_network_id") or "")
            if net_id and net_id not in names:
                try:
                    names[net_id] = pool_name(self.ds.get_network(token, net_id))
                except ServiceError as exc:
                    if exc.temporary:
                        raise
                    names[net_id] = net_id  # not readable by the caller: named by its ID
            instance = None
            if fip.get("port_id"):
                try:
                    instance = self.ds.get_port(token, str(fip["port_id"])).get(
                        "device_id") or None
                except ServiceError as exc:
                    if exc.temporary:
                        raise
            out.append({"id": fip["id"], "ip": fip.get("floating_ip_address"),
                        "fixed_ip": fip.get("fixed_ip_address"), "instance_id": instance,
                        "pool": names.get(net_id) or None})
        return out

    def list_floating_ips(self, ctx: AuthContext) -> list[dict[str, Any]]:
        """The caller's project's floating IPs (an admin's too: Nova lists the project's)."""
        try:
            fips = self.ds.list_floatingips(ctx.token, project_id=ctx.project_id)
            return self._shown(ctx.token, fips)
        except ServiceError as exc:
            raise proxy_error(exc, "Floating IPs") from None

    def show_floating_ip(self, ctx: AuthContext, fip_id: str) -> dict[str, Any]:
        try:
            return self._shown(ctx.token, [self.ds.get_floatingip(ctx.token, fip_id)])[0]
        except ServiceError as exc:
            if exc.status == 404:
                raise NotFound(f"Floating IP not found for ID {fip_id}") from None
            raise proxy_error(exc, f"Floating IP {fip_id}") from None

    def find_pool(self, ctx: AuthContext, pool: str | None) -> dict[str, Any]:
        """The external network named (or with the ID) ``pool``; without one, the only
        external network there is."""
        try:
            pools = self._pools(ctx.token)
        except ServiceError as exc:
            raise proxy_error(exc, "Floating IP pools") from None
        if pool is None:
            if len(pools) == 1:
                return pools[0]
            names = ", ".join(sorted(pool_name(p) for p in pools)) or "none"
            raise BadRequest("Invalid input: give the floating IP's 'pool' (there is not "
                             f"exactly one; the pools are: {names}).")
        named = [p for p in pools if p.get("name") == pool]
        if len(named) > 1:
            raise BadRequest(f"Several floating IP pools are named {pool!r}; give the "
                             "pool's ID instead.")
        found = named or [p for p in pools if p.get("id") == pool]
        if not found:
            raise NotFound(f"Floating IP pool not found: {pool!r} is neither the name nor "
                           "the ID of an external network.")
        return found[0]

    def create_floating_ip(self, ctx: AuthContext, pool: str | None) -> dict[str, Any]:
        """Allocate an address from ``pool`` to the caller's project."""
        net = self.find_pool(ctx, pool)
        name = pool_name(net)
        try:
            fip = self.ds.create_floatingip(ctx.token, {"floating_network_id": net["id"]})
        except ServiceError as exc:
            kind = neutron_type(exc)
            if exc.status == 409 and kind == "OverQuota":
                raise Forbidden(f"IP allocation over quota in pool {name}.") from None
            if exc.status == 409:  # IpAddressGenerationFailure: the pool is exhausted
                raise NotFound(f"No more floating IPs in pool {name}.") from None
            raise proxy_error(exc, f"A floating IP from pool {name}") from None
        try:
            return self._shown(ctx.token, [fip])[0]
        except ServiceError as exc:
            raise proxy_error(exc, f"Floating IP {fip['id']}") from None

    def delete_floating_ip(self, ctx: AuthContext, fip_id: str) -> None:
        """Release the address (the network API disassociates it first)."""
        try:
            self.ds.get_floatingip(ctx.token, fip_id)
            self.ds.delete_floatingip(ctx.token, fip_id)
        except ServiceError as exc:
            if exc.status == 404:
                raise NotFound(f"Floating IP not found for ID {fip_id}") from None
            raise proxy_error(exc, f"Floating IP {fip_id}") from None

    def list_pools(self, ctx: AuthContext) -> list[dict[str, str]]:
        try:
            return [{"name": pool_name(p)} for p in self._pools(ctx.token)]
        except ServiceError as exc:
            raise proxy_error(exc, "Floating IP pools") from None

    # ---- networks -----------------------------------------------------------------------

    def networks(self, ctx: AuthContext) -> list[dict[str, Any]]:
        """Every network the caller may see (its own, shared and external ones)."""
        try:
            return self.ds.list_networks(ctx.token)
        except ServiceError as exc:
            raise proxy_error(exc, "Networks") from None

    def network(self, ctx: AuthContext, network_id: str) -> dict[str, Any]:
        try:
            return self.ds.get_network(ctx.token, network_id)
        except ServiceError as exc:
            if exc.status == 404:
                raise NotFound(f"Network {network_id} could not be found.") from None
            raise proxy_error(exc, f"Network {network_id}") from None


def nova_network(net: dict[str, Any], admin: bool) -> dict[str, Any]:
    """os-networks' view: the ID and the name (``label``); nova-network's addressing keys,
    and for an admin its host keys, are null."""
    out: dict[str, Any] = {"id": net["id"], "label": net.get("name") or ""}
    keys = NETWORK_KEYS + (ADMIN_NETWORK_KEYS if admin else ())
    out.update(dict.fromkeys(keys))
    return out


def tenant_network(net: dict[str, Any]) -> dict[str, Any]:
    """os-tenant-networks' view: id, label and cidr, which Nova renders as the string
    'None' for a network API network (it has no single cidr)."""
    return {"id": net["id"], "cidr": "None", "label": net.get("name") or ""}
