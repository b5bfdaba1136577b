"""``/v2.0/security-group-rules``: list, create (one or bulk), show, delete.

A rule is parsed and checked here (direction, ethertype, protocol, port range
or ICMP type/code, remote prefix or group) before the service layer adds it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.network import listing, views
from stratus.network.core import NetworkCore

routes = Routes()

RULE_ATTRS = {
    "description", "project_id", "tenant_id", "security_group_id", "direction", "ethertype",
    "protocol", "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id",
    "remote_address_group_id",
}
PROTOCOL_NUMBERS = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58,
    "igmp": 2, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58,
    "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46,
    "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}
PORT_PROTOCOLS = {"tcp", "udp", "sctp", "udplite", "dccp", "6", "17", "132", "136", "33"}
ICMP_PROTOCOLS = {"icmp", "icmpv6", "ipv6-icmp", "1", "58"}


def parse_protocol(value: Any) -> str | None:
    if value is None or value in ("any", ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise BadRequest(f"Security group rule protocol {value!r} not supported. Only protocol "
                         f"values {sorted(PROTOCOL_NUMBERS)} and integer representations "
                         "[0 to 255] are supported.")
    low = value.lower()
    if low in PROTOCOL_NUMBERS:
        return low
    if low.isdigit() and 0 <= int(low) <= 255:
        return str(int(low))
    raise BadRequest(f"Security group rule protocol {value} not supported. Only protocol values "
                     f"{sorted(PROTOCOL_NUMBERS)} and integer representations [0 to 255] are "
                     "supported.")


def parse_rule(obj: dict[str, Any]) -> dict[str, Any]:
    views.only(obj, RULE_ATTRS, "security_group_rule")
    direction = obj.get("direction")
    if direction not in ("ingress", "egress"):
        raise BadRequest(f"Invalid input for direction. Reason: {direction!r} is not in "
                         "['ingress', 'egress'].")
    ethertype = obj.get("ethertype") or "IPv4"
    if not isinstance(ethertype, str) or ethertype.lower() not in ("ipv4", "ipv6"):
        raise BadRequest(f"Invalid input for ethertype. Reason: {ethertype!r} is not in "
                         "['IPv4', 'IPv6'].")
    ethertype = "IPv4" if ethertype.lower() == "ipv4" else "IPv6"
    protocol = parse_protocol(obj.get("protocol"))
    # Any integer is read; the range each protocol allows is checked below with Neutron's
    # wording ("Invalid value for port N", "Invalid value for ICMP type ..."), which
    # Tempest's negative tests match.
    pmin = views.integer(obj, "port_range_min", -(2**31), 2**31)
    pmax = views.integer(obj, "port_range_max", -(2**31), 2**31)
    if protocol not in ICMP_PROTOCOLS:
        for val in (pmin, pmax):
            if val is not None and not 0 <= val <= 65535:
                raise BadRequest(f"Invalid value for port {val}.")
    if (pmin is not None or pmax is not None) and protocol is None:
        raise BadRequest("Must also specify protocol if port range is given.")
    if protocol in PORT_PROTOCOLS:
        if pmin is None and pmax is not None:
            raise BadRequest("For TCP/UDP protocols, port_range_min must be <= "
                             "port_range_max (port_range_max is given without a "
                             "port_range_min).")
        if pmin is not None:
            pmax = pmin if pmax is None else pmax
            if pmin == 0 or pmax == 0:
                raise BadRequest("Invalid value for port 0.")
            if pmin > pmax:
                raise BadRequest("For TCP/UDP protocols, port_range_min must be <= "
                                 "port_range_max")
    elif protocol in ICMP_PROTOCOLS:
        for key, val in (("type", pmin), ("code", pmax)):
            if val is not None and not 0 <= val <= 255:
                raise BadRequest(f"Invalid value for ICMP {key} {val}: it must be 0-255.")
        if pmax is not None and pmin is None:
            raise BadRequest("ICMP code (port-range-max) is provided but ICMP type "
                             "(port-range-min) is missing.")
    elif pmin is not None or pmax is not None:
        raise BadRequest(f"Invalid protocol {protocol} for port range: only TCP, UDP, SCTP "
                         "and ICMP rules take ports.")
    prefix = obj.get("remote_ip_prefix")
    if prefix is not None:
        if not isinstance(prefix, str):
            raise BadRequest(f"Invalid input for remote_ip_prefix. Reason: {prefix!r} is not "
                             "a CIDR.")
        try:
            net = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            raise BadRequest(f"Invalid input for remote_ip_prefix. Reason: '{prefix}' is not "
                             "a valid IP prefix.") from None
        if (net.version == 4) != (ethertype == "IPv4"):
            raise BadRequest(f"Conflicting value ethertype {ethertype} for CIDR {prefix}")
        # As Neutron: kept as given, with the mask added when absent (10.0.0.5 ->
        # 10.0.0.5/32); the network it means is the rule's normalized_cidr (views.py).
        prefix = str(ipaddress.ip_interface(prefix))
    remote_group = views.id_value(obj, "remote_group_id")
    if prefix is not None and remote_group is not None:
        raise BadRequest("Only remote_ip_prefix or remote_group_id may be provided.")
    if obj.get("remote_address_group_id") is not None:
        raise BadRequest("remote_address_group_id is not supported.")
    return {"direction": direction, "ethertype": ethertype, "protocol": protocol,
            "port_range_min": pmin, "port_range_max": pmax, "remote_ip_prefix": prefix,
            "remote_group_id": remote_group}


@routes.add("GET", "/v2.0/security-group-rules")
def list_rules(req: Req, svc: NetworkCore) -> dict[str, Any]:
    items = svc.security_groups.visible_rules(req.ctx)
    return listing.apply(items, req.query, req.base_url, "/v2.0/security-group-rules",
                         "security_group_rules")


@routes.add("POST", "/v2.0/security-group-rules", status=201)
def create_rules(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    svc.require_member(ctx, "create_security_group_rule")
    objs, bulk = views.entities(req.body, "security_group_rule", "security_group_rules")
    specs = [(obj, parse_rule(obj)) for obj in objs]
    made = svc.security_groups.create_rules(ctx, specs)
    return {"security_group_rules": made} if bulk else {"security_group_rule": made[0]}


@routes.add("GET", "/v2.0/security-group-rules/{rule_id}")
def show_rule(req: Req, svc: NetworkCore) -> dict[str, Any]:
    rule = svc.security_groups.show_rule(req.ctx, req.params["rule_id"])
    return {"security_group_rule": listing.trim(rule, req.query)}


@routes.add("DELETE", "/v2.0/security-group-rules/{rule_id}")
def delete_rule(req: Req, svc: NetworkCore) -> None:
    svc.security_groups.delete_rule(req.ctx, req.params["rule_id"])
