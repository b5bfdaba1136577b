"""Nova's security-group proxy (os-security-groups, os-security-group-rules): the network
API's security groups and rules in Nova's shapes, every call made with the caller's token
(the network API decides what the caller may see and do)."""

from __future__ import annotations

import ipaddress
import uuid
from typing import TYPE_CHECKING, Any

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import ApiError, BadRequest, NotFound, ServiceUnavailable
from stratus.compute.server_security_groups import nova_security_group

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

PROTOCOLS = ("tcp", "udp", "icmp")


def proxy_error(exc: ServiceError, what: str) -> ApiError:
    """A network API failure as Nova reports it: 404 stays 404, an unreachable network
    API is a 503, anything else it refused (in use, a duplicate rule, a quota) a 400."""
    if exc.temporary:
        return ServiceUnavailable(f"The network API failed: {exc}")
    if exc.status == 404:
        return NotFound(f"{what} not found: {exc}")
    return BadRequest(f"{what}: {exc}")


def rule_body(data: dict[str, Any], parent: str) -> dict[str, Any]:
    """The network API's rule for Nova's ``security_group_rule`` request (checked here:
    protocol, ports, cidr or group)."""
    proto = data.get("ip_protocol")
    group_id = data.get("group_id")
    cidr = data.get("cidr")
    if cidr is not None and group_id is not None:
        raise BadRequest("Invalid input: give either cidr or group_id, not both.")
    if proto is not None:
        if not isinstance(proto, str) or proto.lower() not in PROTOCOLS:
            raise BadRequest(f"Invalid IP protocol {proto!r}; use one of tcp, udp, icmp.")
        proto = proto.lower()
    ports: list[int | None] = []
    for key in ("from_port", "to_port"):
        value = data.get(key)
        if value is None or value == "":
            ports.append(None)
            continue
        try:
            ports.append(int(value))
        except (TypeError, ValueError):
            raise BadRequest(f"Invalid input for {key}: {value!r} is not an integer.") \
                from None
    low, high = ports
    if proto is None and (low is not None or high is not None):
        raise BadRequest("Invalid input: ports need an ip_protocol (tcp, udp or icmp).")
    if proto in ("tcp", "udp") and (low is None or high is None
                                    or not 1 <= low <= high <= 65535):
        raise BadRequest(f"Invalid port range {low}:{high}: for {proto}, from_port and "
                         "to_port are 1 to 65535 with from_port <= to_port.")
    if proto == "icmp":
        low = -1 if low is None else low
        high = -1 if high is None else high
        if not -1 <= low <= 255 or not -1 <= high <= 255:
            raise BadRequest(f"Invalid ICMP type/code {low}:{high}: each is -1 to 255.")
        low, high = (None, None) if low == -1 else (low, None if high == -1 else high)
    body: dict[str, Any] = {"security_group_id": parent, "direction": "ingress",
                            "protocol": proto, "port_range_min": low,
                            "port_range_max": high, "ethertype": "IPv4"}
    if group_id is not None:
        if not isinstance(group_id, str) or not group_id:
            raise BadRequest("Invalid input for group_id: a security group ID is expected.")
        body["remote_group_id"] = group_id
    else:
        try:
            net = ipaddress.ip_network(str(cidr or "0.0.0.0/0"), strict=False)
        except ValueError:
            raise BadRequest(f"Invalid cidr {cidr!r}: an IPv4 or IPv6 network is "
                             "expected.") from None
        # As given (the network API keeps it, Neutron's normalized_cidr is the network)
        body["remote_ip_prefix"] = str(cidr or "0.0.0.0/0")
        body["ethertype"] = f"IPv{net.version}"
    return body



def _uuid_like(value: str) -> bool:
    """A UUID in any of its usual spellings (the network API's group ids are UUIDs)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True

class SecurityGroupProxy:
    """The proxy's service layer; it keeps nothing itself."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    @property
    def ds(self) -> Any:
        return self.core.downstream

    def _shown(self, token: str, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        known = {str(g["id"]): g for g in groups}
        remote = {str(r["remote_group_id"]) for g in groups
                  for r in g.get("security_group_rules") or [] if r.get("remote_group_id")}
        for gid in remote - set(known):
            try:
                known[gid] = self.ds.get_security_group(token, gid)
            except ServiceError:
                continue  # another project's group: shown by its id
        return [nova_security_group(g, known) for g in groups]

    def list(self, ctx: AuthContext, all_projects: bool) -> list[dict[str, Any]]:
        """The caller's project's groups (an admin's ``all_tenants``: every group)."""
        filters = {} if all_projects and ctx.is_admin else {"project_id": ctx.project_id}
        try:
            groups = self.ds.list_security_groups(ctx.token, **filters)
            return self._shown(ctx.token, groups)
        except ServiceError as exc:
            raise proxy_error(exc, "Security groups") from None

    def show(self, ctx: AuthContext, gid: str) -> dict[str, Any]:
        try:
            return self._shown(ctx.token, [self.ds.get_security_group(ctx.token, gid)])[0]
        except ServiceError as exc:
            raise proxy_error(exc, f"Security group {gid}") from None

    def create(self, ctx: AuthContext, name: str, description: str) -> dict[str, Any]:
        try:
            group = self.ds.create_security_group(ctx.token, {"name": name,
                                                              "description": description})
            return self._shown(ctx.token, [group])[0]
        except ServiceError as exc:
            raise proxy_error(exc, f"Security group {name} cannot be created") from None

    def update(self, ctx: AuthContext, gid: str, name: str, description: str
               ) -> dict[str, Any]:
        try:
            current = self.ds.get_security_group(ctx.token, gid)
            if current.get("name") == "default" and name != "default":
                raise BadRequest("The default security group cannot be renamed.")
            group = self.ds.update_security_group(ctx.token, gid, {
                "name": name, "description": description})
            return self._shown(ctx.token, [group])[0]
        except ServiceError as exc:
            raise proxy_error(exc, f"Security group {gid}") from None

    def delete(self, ctx: AuthContext, gid: str) -> None:
        try:
            current = self.ds.get_security_group(ctx.token, gid)
            if current.get("name") == "default":
                raise BadRequest("The default security group cannot be deleted.")
            self.ds.delete_security_group(ctx.token, gid)
        except ServiceError as exc:
            raise proxy_error(exc, f"Security group {gid}") from None

    def create_rule(self, ctx: AuthContext, data: dict[str, Any]) -> dict[str, Any]:
        """Add an ingress rule to ``parent_group_id``; the rule in Nova's shape."""
        parent = data.get("parent_group_id")
        if not isinstance(parent, str | int) or isinstance(parent, bool) or parent == "":
            raise BadRequest("Invalid input: 'parent_group_id' is a required property (a "
                             "security group ID).")
        parent = str(parent)
        if not _uuid_like(parent):  # Nova's check before asking the network API
            raise BadRequest(f"Invalid input: parent_group_id {parent!r} is not a security "
                             "group ID (a UUID).")
        try:
            self.ds.get_security_group(ctx.token, parent)
        except ServiceError as exc:
            raise proxy_error(exc, f"Security group {parent}") from None
        body = rule_body(data, parent)
        try:
            rule = self.ds.create_security_group_rule(ctx.token, body)
            group = self.ds.get_security_group(ctx.token, parent)
            shown = self._shown(ctx.token, [{**group, "security_group_rules": [rule]}])[0]
        except ServiceError as exc:
            if exc.status == 409:
                raise BadRequest(f"This rule already exists in group {parent}: {exc}") \
                    from None
            raise proxy_error(exc, f"A rule of security group {parent}") from None
        out: dict[str, Any] = shown["rules"][0]
        return out

    def delete_rule(self, ctx: AuthContext, rid: str) -> None:
        try:
            self.ds.get_security_group_rule(ctx.token, rid)
            self.ds.delete_security_group_rule(ctx.token, rid)
        except ServiceError as exc:
            raise proxy_error(exc, f"Security group rule {rid}") from None
