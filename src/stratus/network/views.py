"""Request validation (Neutron's wording for stratus.common.validation) and the JSON shapes
of network resources (Neutron v2.0 shapes)."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.validation import Dialect, Fields
from stratus.network import models as m

# ---- input ----------------------------------------------------------------------------
# Neutron's wording and rules for stratus.common.validation's one reader; the functions
# below keep the signatures the network service layer calls.

NEUTRON = Dialect(
    body="Resource body required: a JSON object with a '{key}' object.",
    unknown="Unrecognized attribute(s) '{names}' for {kind}.",
    required="Invalid input for operation: '{key}' is required.",
    not_string="Invalid input for {key}. Reason: '{value!r}' is not a valid string.",
    nul="Invalid input for {key}. Reason: NUL characters are not allowed.",
    too_long="Invalid input for {key}. Reason: '{head}...' exceeds maximum length of {max_len}.",
    not_boolean="Invalid input for {key}. Reason: '{value!r}' is not a valid boolean value.",
    not_integer="Invalid input for {key}. Reason: '{value!r}' is not an integer.",
    out_of_range="Invalid input for {key}. Reason: {value} is not in the range {lo}-{hi}.",
    not_id="Invalid input for {key}. Reason: '{value!r}' is not a valid ID.",
    not_strings="Invalid input for {key}. Reason: a list of strings is expected.",
    bulk_items="'{plural}' must be a non-empty list of {singular} objects.",
    bulk_max="At most {most} {plural} can be created in one request.",
    true_words=("true",),
    false_words=("false",),
    int_rule="digits",
)
FIELDS = Fields(NEUTRON)


def entity(body: Any, key: str) -> dict[str, Any]:
    """The object under ``key`` in a request body, or a 400 saying what is expected."""
    return FIELDS.body(body, key)


def entities(body: Any, singular: str, plural: str) -> tuple[list[dict[str, Any]], bool]:
    """One object (``{"network": {...}}``) or a bulk list (``{"networks": [...]}``)."""
    return FIELDS.bulk(body, singular, plural)


def only(obj: dict[str, Any], allowed: set[str], kind: str) -> None:
    FIELDS.only(obj, allowed, kind)


def text(obj: dict[str, Any], key: str, default: str = "", max_len: int = 255) -> str:
    return FIELDS.text(obj, key, default=default, max_len=max_len)


def boolean(obj: dict[str, Any], key: str, default: bool) -> bool:
    return FIELDS.boolean(obj, key, default)


def integer(obj: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    return FIELDS.integer(obj, key, lo, hi)


def id_value(obj: dict[str, Any], key: str, required: bool = False) -> str | None:
    return FIELDS.ident(obj, key, required=required)


def string_list(obj: dict[str, Any], key: str) -> list[str] | None:
    return FIELDS.strings(obj, key)


# ---- output ---------------------------------------------------------------------------


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def standard(obj: Any) -> dict[str, Any]:
    return {
        "description": obj.description,
        "created_at": ts(obj.created_at),
        "updated_at": ts(obj.updated_at),
        "revision_number": obj.revision_number,
        "tags": [],
    }


def owner(project_id: str) -> dict[str, Any]:
    return {"project_id": project_id, "tenant_id": project_id}


def networks(s: Session, nets: list[m.Network], admin: bool) -> list[dict[str, Any]]:
    subnet_ids: dict[str, list[str]] = defaultdict(list)
    if nets:
        rows = s.execute(
            sa.select(m.Subnet.network_id, m.Subnet.id)
            .where(m.Subnet.network_id.in_([n.id for n in nets]))
            .order_by(m.Subnet.created_at, m.Subnet.id)
        )
        for net_id, sub_id in rows:
            subnet_ids[net_id].append(sub_id)
    out = []
    for n in nets:
        view = {
            "id": n.id,
            "name": n.name,
            **owner(n.project_id),
            "admin_state_up": n.admin_state_up,
            "status": n.status,
            "subnets": subnet_ids[n.id],
            "shared": n.shared,
            "router:external": n.external,
            "mtu": n.mtu,
            "port_security_enabled": n.port_security_enabled,
            "availability_zone_hints": [],
            "availability_zones": ["nova"],
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "l2_adjacency": True,
            "is_default": False,
            **standard(n),
        }
        if admin:
            view.update({
                "provider:network_type": n.network_type,
                "provider:physical_network": n.physical_network,
                "provider:segmentation_id": n.segmentation_id,
            })
        out.append(view)
    return out


def subnets(subs: list[m.Subnet], external: Collection[str] = ()) -> list[dict[str, Any]]:
    """Subnets; ``external``: the ids of external networks (``router:external`` of a subnet,
    the subnet-external-network extension)."""
    return [
        {
            "id": sub.id,
            "name": sub.name,
            **owner(sub.project_id),
            "network_id": sub.network_id,
            "ip_version": sub.ip_version,
            "cidr": sub.cidr,
            "gateway_ip": sub.gateway_ip,
            "allocation_pools": [{"start": a, "end": b} for a, b in sub.allocation_pools],
            "dns_nameservers": list(sub.dns_nameservers),
            "host_routes": [dict(r) for r in sub.host_routes],
            "enable_dhcp": sub.enable_dhcp,
            "ipv6_ra_mode": sub.ipv6_ra_mode,
            "ipv6_address_mode": sub.ipv6_address_mode,
            "subnetpool_id": sub.subnetpool_id,
            "segment_id": None,
            "service_types": [],
            "router:external": sub.network_id in external,
            **standard(sub),
        }
        for sub in subs
    ]


def subnetpools(pools: list[m.SubnetPool]) -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "name": p.name,
            **owner(p.project_id),
            "ip_version": p.ip_version,
            "prefixes": list(p.prefixes),
            "default_prefixlen": p.default_prefixlen,
            "min_prefixlen": p.min_prefixlen,
            "max_prefixlen": p.max_prefixlen,
            "shared": p.shared,
            "is_default": p.default_for is not None,
            "address_scope_id": None,
            "default_quota": None,
            **standard(p),
        }
        for p in pools
    ]


def fixed_ips_of(s: Session, port_ids: list[str]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    if port_ids:
        rows = s.execute(
            sa.select(m.IPAllocation.port_id, m.IPAllocation.subnet_id, m.IPAllocation.ip_address)
            .where(m.IPAllocation.port_id.in_(port_ids))
            .order_by(m.IPAllocation.id)
        )
        for port_id, subnet_id, ip in rows:
            out[port_id].append({"subnet_id": subnet_id, "ip_address": ip})
    return out


def groups_of(s: Session, port_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    if port_ids:
        rows = s.execute(
            sa.select(m.PortSecurityGroup.port_id, m.PortSecurityGroup.security_group_id).where(
                m.PortSecurityGroup.port_id.in_(port_ids)
            )
        )
        for port_id, sg_id in rows:
            out[port_id].append(sg_id)
    return out


def ports(s: Session, items: list[m.Port]) -> list[dict[str, Any]]:
    ids = [p.id for p in items]
    fixed = fixed_ips_of(s, ids)
    groups = groups_of(s, ids)
    out = []
    for p in items:
        out.append({
            "id": p.id,
            "name": p.name,
            **owner(p.project_id),
            "network_id": p.network_id,
            "mac_address": p.mac_address,
            "admin_state_up": p.admin_state_up,
            "status": p.status,
            "device_id": p.device_id,
            "device_owner": p.device_owner,
            "fixed_ips": fixed[p.id],
            "security_groups": sorted(groups[p.id]),
            "allowed_address_pairs": [dict(a) for a in p.allowed_address_pairs],
            "port_security_enabled": p.port_security_enabled,
            "binding:host_id": p.host_id,
            "binding:vif_type": "ovs" if p.host_id else "unbound",
            "binding:vif_details": {"port_filter": True} if p.host_id else {},
            "binding:vnic_type": "normal",
            "binding:profile": {},
            "extra_dhcp_opts": [dict(o) for o in p.extra_dhcp_opts or []],
            **standard(p),
        })
    return out


def routers(s: Session, items: list[m.Router]) -> list[dict[str, Any]]:
    gw_ids = [r.gw_port_id for r in items if r.gw_port_id]
    fixed = fixed_ips_of(s, gw_ids)
    gw_nets = (
        dict(s.execute(sa.select(m.Port.id, m.Port.network_id).where(m.Port.id.in_(gw_ids))).all())
        if gw_ids
        else {}
    )
    out = []
    for r in items:
        gw = None
        if r.gw_port_id:
            gw = {
                "network_id": gw_nets.get(r.gw_port_id),
                "enable_snat": r.enable_snat,
                "external_fixed_ips": fixed[r.gw_port_id],
            }
        out.append({
            "id": r.id,
            "name": r.name,
            **owner(r.project_id),
            "admin_state_up": r.admin_state_up,
            "status": r.status,
            "external_gateway_info": gw,
            "routes": [dict(x) for x in r.routes],
            "distributed": False,
            "ha": False,
            "availability_zone_hints": [],
            "availability_zones": ["nova"],
            "flavor_id": None,
            **standard(r),
        })
    return out


def floatingips(items: list[m.FloatingIP]) -> list[dict[str, Any]]:
    return [
        {
            "id": f.id,
            **owner(f.project_id),
            "floating_network_id": f.floating_network_id,
            "floating_ip_address": f.floating_ip_address,
            "fixed_ip_address": f.fixed_ip_address,
            "port_id": f.fixed_port_id,
            "router_id": f.router_id,
            "status": f.status,
            "port_details": None,
            "dns_domain": "",
            "dns_name": "",
            "qos_policy_id": None,
            "port_forwardings": [],
            **standard(f),
        }
        for f in items
    ]


def normalized_cidr(prefix: str | None) -> str | None:
    """The network a rule's remote_ip_prefix means (10.0.0.5/24 -> 10.0.0.0/24), as
    Neutron's security-groups-normalized-cidr shows it; the agents filter on it."""
    return None if prefix is None else str(ipaddress.ip_network(prefix, strict=False))


def rules(items: list[m.SecurityGroupRule]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            **owner(r.project_id),
            "security_group_id": r.security_group_id,
            "direction": r.direction,
            "ethertype": r.ethertype,
            "protocol": r.protocol,
            "port_range_min": r.port_range_min,
            "port_range_max": r.port_range_max,
            "remote_ip_prefix": r.remote_ip_prefix,
            "remote_group_id": r.remote_group_id,
            "remote_address_group_id": None,
            "normalized_cidr": normalized_cidr(r.remote_ip_prefix),
            "belongs_to_default_sg": None,
            **standard(r),
        }
        for r in items
    ]


def security_groups(s: Session, items: list[m.SecurityGroup]) -> list[dict[str, Any]]:
    by_group: dict[str, list[m.SecurityGroupRule]] = defaultdict(list)
    if items:
        for rule in s.scalars(
            sa.select(m.SecurityGroupRule)
            .where(m.SecurityGroupRule.security_group_id.in_([g.id for g in items]))
            .order_by(m.SecurityGroupRule.created_at, m.SecurityGroupRule.id)
        ):
            by_group[rule.security_group_id].append(rule)
    return [
        {
            "id": g.id,
            "name": g.name,
            **owner(g.project_id),
            "stateful": g.stateful,
            "shared": False,
            "security_group_rules": rules(by_group[g.id]),
            **standard(g),
        }
        for g in items
    ]
