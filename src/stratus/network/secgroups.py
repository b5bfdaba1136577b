"""Security groups and their rules, with the per-project ``default`` group made on demand.

``SecurityGroupService`` (``core.security_groups``) owns the sessions and
queries of both resources. A project's ``default`` group (Neutron's four
default rules) exists from the first time the project lists groups or rules,
or makes a port or a group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stratus.common.timeutil import new_id, utcnow
from stratus.network import models as m
from stratus.network import views
from stratus.network.settings import neutron

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore


def add_rule(core: NetworkCore, s: Session, ctx: AuthContext, group: m.SecurityGroup,
             spec: dict[str, Any], description: str = "") -> m.SecurityGroupRule:
    """Add a rule to ``group``; 409 when the group has the same rule already."""
    if spec["remote_group_id"] is not None:
        remote = core.security_group(s, ctx, spec["remote_group_id"])
        spec = {**spec, "remote_group_id": remote.id}
    same = {**spec, "remote_ip_prefix": views.normalized_cidr(spec["remote_ip_prefix"])}
    for rule in s.scalars(sa.select(m.SecurityGroupRule).where(
            m.SecurityGroupRule.security_group_id == group.id)):
        # 10.0.0.5/24 and 10.0.0.0/24 are one rule (the same normalized_cidr)
        have = {k: getattr(rule, k) for k in spec}
        have["remote_ip_prefix"] = views.normalized_cidr(rule.remote_ip_prefix)
        if have == same:
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


def find_rule(core: NetworkCore, s: Session, ctx: AuthContext, rule_id: str
              ) -> m.SecurityGroupRule:
    rule = s.get(m.SecurityGroupRule, rule_id)
    if rule is None or not core.owns(ctx, rule.project_id):
        raise neutron(NotFound, "SecurityGroupRuleNotFound",
                      f"Security group rule {rule_id} does not exist")
    return rule


class SecurityGroupService:
    """The security group and security group rule resources over the database."""

    def __init__(self, core: NetworkCore) -> None:
        self.core = core

    def ensure_default(self, ctx: AuthContext) -> None:
        """A project's `default` group exists from the first time the project looks."""
        project = ctx.project_id
        if not project:
            return
        with self.core.db.session() as s:
            found = s.scalar(sa.select(m.SecurityGroup.id).where(
                m.SecurityGroup.default_for == project))
        if found is None:
            self.core.transaction(lambda s: self.core.default_security_group(s, project))

    # ---- groups ------------------------------------------------------------------------

    def visible(self, ctx: AuthContext) -> list[dict[str, Any]]:
        """The caller's groups (all: admin), its ``default`` group made first if missing."""
        self.ensure_default(ctx)
        q = sa.select(m.SecurityGroup)
        if not ctx.is_admin:
            q = q.where(m.SecurityGroup.project_id == ctx.project_id)
        with self.core.db.session() as s:
            return views.security_groups(s, list(s.scalars(q)))

    def create(self, ctx: AuthContext, obj: dict[str, Any], name: str) -> dict[str, Any]:
        """Create a group named ``name`` with the two egress rules Neutron gives one."""
        core = self.core

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
                add_rule(core, s, ctx, group, {"direction": "egress", "ethertype": ethertype,
                                         "protocol": None, "port_range_min": None,
                                         "port_range_max": None, "remote_ip_prefix": None,
                                         "remote_group_id": None})
            s.flush()
            return views.security_groups(s, [group])[0]

        return core.transaction(work)

    def show(self, ctx: AuthContext, group_id: str) -> dict[str, Any]:
        with self.core.db.session() as s:
            group = self.core.security_group(s, ctx, group_id)
            return views.security_groups(s, [group])[0]

    def update(self, ctx: AuthContext, group_id: str, obj: dict[str, Any]) -> dict[str, Any]:
        core = self.core

        def work(s: Session) -> dict[str, Any]:
            group = core.security_group(s, ctx, group_id)
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

        return core.transaction(work)

    def delete(self, ctx: AuthContext, group_id: str) -> None:
        """Delete a group; 409 while a port uses it, or for ``default`` (unless admin)."""
        core = self.core

        def work(s: Session) -> None:
            group = core.security_group(s, ctx, group_id)
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

    def visible_rules(self, ctx: AuthContext) -> list[dict[str, Any]]:
        """The caller's rules (all: admin), its ``default`` group made first if missing."""
        self.ensure_default(ctx)
        q = sa.select(m.SecurityGroupRule)
        if not ctx.is_admin:
            q = q.where(m.SecurityGroupRule.project_id == ctx.project_id)
        with self.core.db.session() as s:
            return views.rules(list(s.scalars(q)))

    def create_rules(self, ctx: AuthContext, specs: list[tuple[dict[str, Any], dict[str, Any]]]
                     ) -> list[dict[str, Any]]:
        """Add rules, each given as (request object, parsed rule), in one transaction."""
        core = self.core

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
                made.append(add_rule(core, s, ctx, group, spec, views.text(obj, "description")))
            s.flush()
            return views.rules(made)

        return core.transaction(work)

    def show_rule(self, ctx: AuthContext, rule_id: str) -> dict[str, Any]:
        with self.core.db.session() as s:
            return views.rules([find_rule(self.core, s, ctx, rule_id)])[0]

    def delete_rule(self, ctx: AuthContext, rule_id: str) -> None:
        core = self.core

        def work(s: Session) -> None:
            rule = find_rule(core, s, ctx, rule_id)
            core.require_member(ctx, "delete_security_group_rule")
            group = s.get(m.SecurityGroup, rule.security_group_id)
            if group is not None:
                group.revision_number += 1
            s.delete(rule)

        core.transaction(work)
