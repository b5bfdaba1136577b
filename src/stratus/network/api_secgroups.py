"""Security group and rule HTTP routes, with the per-project `default` group made on demand."""

from __future__ import annotations

import ipaddress
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.app import Req, Router
from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stratus.network import listing, views
from stratus.network import models as m
from stratus.network.core import NetworkCore, neutron, new_id, utcnow

SG_ATTRS = {"name", "description", "project_id", "tenant_id", "tags", "stateful"}
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
    pmin = views.integer(obj, "port_range_min", 0, 65535)
    pmax = views.integer(obj, "port_range_max", 0, 65535)
    if (pmin is not None or pmax is not None) and protocol is None:
        raise BadRequest("Must also specify protocol if port range is given.")
    if protocol in PORT_PROTOCOLS:
        if pmin is None and pmax is not None:
            raise BadRequest("Security group rule for protocol requires port_range_min when "
                             "port_range_max is given.")
        if pmin is not None:
            pmax = pmin if pmax is None else pmax
            if pmin == 0 or pmax == 0:
                raise BadRequest("Invalid value for port 0.")
            if pmin > pmax:
                raise BadRequest("For TCP/UDP protocols, port_range_min must be <= "
                                 "port_range_max")
    elif protocol in ICMP_PROTOCOLS:
        for key, val in (("type", pmin), ("code", pmax)):
            if val is not None and val > 255:
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
        prefix = str(net)
    remote_group = views.id_value(obj, "remote_group_id")
    if prefix is not None and remote_group is not None:
        raise BadRequest("Only remote_ip_prefix or remote_group_id may be provided.")
    if obj.get("remote_address_group_id") is not None:
        raise BadRequest("remote_address_group_id is not supported.")
    return {"direction": direction, "ethertype": ethertype, "protocol": protocol,
            "port_range_min": pmin, "port_range_max": pmax, "remote_ip_prefix": prefix,
            "remote_group_id": remote_group}


def add_routes(router: Router, core: NetworkCore) -> None:

    def ensure_default(ctx: AuthContext) -> None:
        """A project's `default` group exists from the first time the project looks."""
        project = ctx.project_id
        if not project:
            return
        with core.db.session() as s:
            found = s.scalar(sa.select(m.SecurityGroup.id).where(
                m.SecurityGroup.default_for == project))
        if found is None:
            core.transaction(lambda s: core.default_security_group(s, project))

    def add_rule(s: Session, ctx: AuthContext, group: m.SecurityGroup, spec: dict[str, Any],
                 description: str = "") -> m.SecurityGroupRule:
        if spec["remote_group_id"] is not None:
            remote = core.security_group(s, ctx, spec["remote_group_id"])
            spec = {**spec, "remote_group_id": remote.id}
        for rule in s.scalars(sa.select(m.SecurityGroupRule).where(
                m.SecurityGroupRule.security_group_id == group.id)):
            if all(getattr(rule, k) == v for k, v in spec.items()):
                raise neutron(Conflict, "SecurityGroupRuleExists",
                              f"Security group rule already exists. Rule id is {rule.id}.")
        core.check_quota(s, group.project_id, "security_group_rule")
        now = utcnow()
        rule = m.SecurityGroupRule(id=new_id(), project_id=group.project_id,
                                   security_group_id=group.id, description=description,
                                   created_at=now, updated_at=now, revision_number=0, **spec)
        s.add(rule)
        s.flush()
        group.revision_number += 1
        return rule

    # ---- groups ------------------------------------------------------------------------

    @router.add("GET", "/v2.0/security-groups")
    def list_groups(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        ensure_default(ctx)
        q = sa.select(m.SecurityGroup)
        if not ctx.is_admin:
            q = q.where(m.SecurityGroup.project_id == ctx.project_id)
        with core.db.session() as s:
            items = views.security_groups(s, list(s.scalars(q)))
        return listing.apply(items, req.query, req.base_url, "/v2.0/security-groups",
                             "security_groups")

    @router.add("POST", "/v2.0/security-groups", status=201)
    def create_group(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        core.require_member(ctx, "create_security_group")
        obj = views.entity(req.body, "security_group")
        views.only(obj, SG_ATTRS, "security_group")
        name = views.text(obj, "name")
        if name == "default":
            raise neutron(Conflict, "SecurityGroupDefaultAlreadyExists",
                          "Default security group already exists.")

        def work(s: Session) -> dict[str, Any]:
            project = core.target_project(ctx, obj)
            core.default_security_group(s, project)
            core.check_quota(s, project, "security_group")
            now = utcnow()
            group = m.SecurityGroup(id=new_id(), project_id=project, name=name,
                                    description=views.text(obj, "description"),
                                    stateful=views.boolean(obj, "stateful", True),
                                    default_for=None, created_at=now, updated_at=now,
                                    revision_number=0)
            s.add(group)
            s.flush()
            for ethertype in ("IPv4", "IPv6"):
                add_rule(s, ctx, group, {"direction": "egress", "ethertype": ethertype,
                                         "protocol": None, "port_range_min": None,
                                         "port_range_max": None, "remote_ip_prefix": None,
                                         "remote_group_id": None})
            s.flush()
            return views.security_groups(s, [group])[0]

        return {"security_group": core.transaction(work)}

    @router.add("GET", "/v2.0/security-groups/{group_id}")
    def show_group(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        with core.db.session() as s:
            group = core.security_group(s, ctx, req.params["group_id"])
            return {"security_group": listing.trim(views.security_groups(s, [group])[0],
                                                   req.query)}

    @router.add("PUT", "/v2.0/security-groups/{group_id}")
    def update_group(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        obj = views.entity(req.body, "security_group")
        views.only(obj, SG_ATTRS, "security_group")

        def work(s: Session) -> dict[str, Any]:
            group = core.security_group(s, ctx, req.params["group_id"])
            core.require_member(ctx, "update_security_group")
            name = views.text(obj, "name", group.name)
            if group.default_for and name != "default":
                raise neutron(Conflict, "SecurityGroupCannotUpdateDefault",
                              "Updating default security group not allowed.")
            if not group.default_for and name == "default":
                raise neutron(Conflict, "SecurityGroupDefaultAlreadyExists",
                              "Default security group already exists.")
            group.name = name
            group.description = views.text(obj, "description", group.description)
            group.stateful = views.boolean(obj, "stateful", group.stateful)
            group.updated_at = utcnow()
            group.revision_number += 1
            s.flush()
            return views.security_groups(s, [group])[0]

        return {"security_group": core.transaction(work)}

    @router.add("DELETE", "/v2.0/security-groups/{group_id}")
    def delete_group(req: Req) -> None:
        ctx = req.ctx

        def work(s: Session) -> None:
            group = core.security_group(s, ctx, req.params["group_id"])
            core.require_member(ctx, "delete_security_group")
            if group.default_for and not ctx.is_admin:
                raise neutron(Conflict, "SecurityGroupCannotRemoveDefault",
                              "Removing default security group not allowed.")
            used = s.scalar(sa.select(m.PortSecurityGroup.port_id).where(
                m.PortSecurityGroup.security_group_id == group.id))
            if used is not None:
                raise neutron(Conflict, "SecurityGroupInUse",
                              f"Security Group {group.id} in use.")
            s.delete(group)

        core.transaction(work)

    # ---- rules -------------------------------------------------------------------------

    @router.add("GET", "/v2.0/security-group-rules")
    def list_rules(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        ensure_default(ctx)
        q = sa.select(m.SecurityGroupRule)
        if not ctx.is_admin:
            q = q.where(m.SecurityGroupRule.project_id == ctx.project_id)
        with core.db.session() as s:
            items = views.rules(list(s.scalars(q)))
        return listing.apply(items, req.query, req.base_url, "/v2.0/security-group-rules",
                             "security_group_rules")

    @router.add("POST", "/v2.0/security-group-rules", status=201)
    def create_rules(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        core.require_member(ctx, "create_security_group_rule")
        objs, bulk = views.entities(req.body, "security_group_rule", "security_group_rules")
        specs = [(obj, parse_rule(obj)) for obj in objs]

        def work(s: Session) -> list[dict[str, Any]]:
            made = []
            for obj, spec in specs:
                group = core.security_group(
                    s, ctx, views.id_value(obj, "security_group_id", required=True))
                wanted = obj.get("project_id") or obj.get("tenant_id")
                if wanted is not None and wanted != group.project_id:
                    raise BadRequest("The rule's project must be its security group's project.")
                if not core.owns(ctx, group.project_id):
                    raise Forbidden("rule:create_security_group_rule is disallowed by policy")
                made.append(add_rule(s, ctx, group, spec, views.text(obj, "description")))
            s.flush()
            return views.rules(made)

        made = core.transaction(work)
        return {"security_group_rules": made} if bulk else {"security_group_rule": made[0]}

    def find_rule(s: Session, ctx: AuthContext, rule_id: str) -> m.SecurityGroupRule:
        rule = s.get(m.SecurityGroupRule, rule_id)
        if rule is None or not core.owns(ctx, rule.project_id):
            raise neutron(NotFound, "SecurityGroupRuleNotFound",
                          f"Security group rule {rule_id} does not exist")
        return rule

    @router.add("GET", "/v2.0/security-group-rules/{rule_id}")
    def show_rule(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        with core.db.session() as s:
            rule = find_rule(s, ctx, req.params["rule_id"])
            return {"security_group_rule": listing.trim(views.rules([rule])[0], req.query)}

    @router.add("DELETE", "/v2.0/security-group-rules/{rule_id}")
    def delete_rule(req: Req) -> None:
        ctx = req.ctx

        def work(s: Session) -> None:
            rule = find_rule(s, ctx, req.params["rule_id"])
            core.require_member(ctx, "delete_security_group_rule")
            group = s.get(m.SecurityGroup, rule.security_group_id)
            if group is not None:
                group.revision_number += 1
            s.delete(rule)

        core.transaction(work)


