"""Identity HTTP routes: role grants on projects/domains and /v3/role_assignments."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.app import Req, Router
from stratus.common.errors import BadRequest, Forbidden, NotFound
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.api_resources import admin, stored
from stratus.identity.core import Identity

TARGETS = {"projects": ("Project", m.Project, "project"), "domains": ("Domain", m.Domain, "domain")}
ACTORS = {"users": ("User", m.User, "user"), "groups": ("Group", m.Group, "group")}


def add_routes(router: Router, identity: Identity) -> None:
    for tpath, (tkind, tmodel, tname) in TARGETS.items():
        for apath, (akind, amodel, aname) in ACTORS.items():
            _grant_routes(
                router, identity, tpath, apath, f"{akind}{tkind}", (tmodel, tname), (amodel, aname)
            )

    @router.add("GET", "/v3/role_assignments")
    def role_assignments(req: Req) -> dict[str, Any]:
        q = req.query
        ctx = req.ctx
        if not ctx.is_admin and q.get("user.id") != ctx.user_id:
            raise Forbidden(
                "You are not authorized to perform the requested action: "
                "identity:list_role_assignments (a user may list only their own, "
                "with user.id=<own id>)."
            )
        effective = "effective" in q
        include_names = views.query_bool(q.get("include_names"), "include_names") or False
        if effective and "group.id" in q:
            raise BadRequest("'effective' and 'group.id' cannot be combined.")
        if "scope.project.id" in q and "scope.domain.id" in q:
            raise BadRequest("Give at most one of scope.project.id and scope.domain.id.")
        with identity.db.session() as s:
            rows = list(s.scalars(sa.select(m.Assignment)))
            if effective:
                rows = _effective(identity, s, rows)
            rows = [r for r in rows if _matches(r, q)]
            names = _names(s, rows) if include_names else {}
            items = [_assignment_view(req.base_url, r, names) for r in rows]
        return views.collection(req.base_url, "/v3/role_assignments", "role_assignments", items)


def _grant_routes(
    router: Router,
    identity: Identity,
    tpath: str,
    apath: str,
    kind: str,
    target: tuple[Any, str],
    actor: tuple[Any, str],
) -> None:
    base = f"/v3/{tpath}/{{target_id}}/{apath}/{{actor_id}}/roles"
    action = f"{actor[1]}_{target[1]}_grant"

    def resolve(req: Req, s: Session) -> tuple[str, str]:
        tgt = identity.get(s, target[0], req.params["target_id"], target[1])
        act = identity.get(s, actor[0], req.params["actor_id"], actor[1])
        return tgt.id, act.id

    def role_of(req: Req, s: Session) -> m.Role:
        return identity.get(s, m.Role, req.params["role_id"], "role")

    def list_grants(req: Req) -> dict[str, Any]:
        admin(req, f"list_{action}s")
        with identity.db.session() as s:
            tid, aid = resolve(req, s)
            roles = s.scalars(
                sa.select(m.Role)
                .join(m.Assignment, m.Assignment.role_id == m.Role.id)
                .where(
                    m.Assignment.type == kind,
                    m.Assignment.actor_id == aid,
                    m.Assignment.target_id == tid,
                )
            ).all()
            items = [views.role(req.base_url, r) for r in roles]
        return views.collection(
            req.base_url, f"/v3/{tpath}/{tid}/{apath}/{aid}/roles", "roles", items
        )

    def grant(req: Req) -> None:
        admin(req, f"create_{action}")
        with identity.db.session() as s:
            tid, aid = resolve(req, s)
            role = role_of(req, s)
            if s.get(m.Assignment, (kind, aid, tid, role.id)) is None:
                with stored(s, "role assignment"):
                    s.add(m.Assignment(type=kind, actor_id=aid, target_id=tid, role_id=role.id))

    def check(req: Req) -> None:
        admin(req, f"check_{action}")
        with identity.db.session() as s:
            tid, aid = resolve(req, s)
            role = role_of(req, s)
            if s.get(m.Assignment, (kind, aid, tid, role.id)) is None:
                raise NotFound(
                    f"Could not find role assignment with role: {role.id}, "
                    f"{actor[1]}: {aid}, {target[1]}: {tid}."
                )

    def revoke(req: Req) -> None:
        admin(req, f"revoke_{action}")
        with identity.db.session() as s:
            tid, aid = resolve(req, s)
            role = role_of(req, s)
            row = s.get(m.Assignment, (kind, aid, tid, role.id))
            if row is None:
                raise NotFound(
                    f"Could not find role assignment with role: {role.id}, "
                    f"{actor[1]}: {aid}, {target[1]}: {tid}."
                )
            s.delete(row)

    for fn in (list_grants, grant, check, revoke):
        fn.__name__ = f"{fn.__name__}_{kind}"
    router.add("GET", base)(list_grants)
    router.add("PUT", f"{base}/{{role_id}}", status=204, body=False)(grant)
    router.add("HEAD", f"{base}/{{role_id}}")(check)
    router.add("GET", f"{base}/{{role_id}}")(check)
    router.add("DELETE", f"{base}/{{role_id}}")(revoke)


def _effective(identity: Identity, s: Session, rows: list[m.Assignment]) -> list[m.Assignment]:
    """Group grants expanded to each member, and implied roles added."""
    members: dict[str, list[str]] = {}
    for mem in s.scalars(sa.select(m.Membership)):
        members.setdefault(mem.group_id, []).append(mem.user_id)
    out: dict[tuple[str, str, str, str], m.Assignment] = {}
    for row in rows:
        users = members.get(row.actor_id, []) if row.type.startswith("Group") else [row.actor_id]
        kind = "User" + row.type.removeprefix("Group").removeprefix("User")
        for role_id in identity.expand_implied(s, [row.role_id]):
            for uid in users:
                key = (kind, uid, row.target_id, role_id)
                out.setdefault(
                    key,
                    m.Assignment(type=kind, actor_id=uid, target_id=row.target_id, role_id=role_id),
                )
    return list(out.values())


def _matches(row: m.Assignment, q: Any) -> bool:
    actor_kind = "User" if row.type.startswith("User") else "Group"
    target_kind = "Project" if row.type.endswith("Project") else "Domain"
    checks = (
        ("user.id", actor_kind == "User"),
        ("group.id", actor_kind == "Group"),
        ("scope.project.id", target_kind == "Project"),
        ("scope.domain.id", target_kind == "Domain"),
    )
    for key, kind_ok in checks:
        if key in q:
            value = row.actor_id if key.split(".")[0] in ("user", "group") else row.target_id
            if not kind_ok or value != q[key]:
                return False
    return "role.id" not in q or row.role_id == q["role.id"]


def _names(s: Session, rows: list[m.Assignment]) -> dict[str, dict[str, Any]]:
    ids = {r.actor_id for r in rows} | {r.target_id for r in rows} | {r.role_id for r in rows}
    domains = {d.id: d for d in s.scalars(sa.select(m.Domain))}
    names: dict[str, dict[str, Any]] = {}
    model: Any
    for model in (m.User, m.Group, m.Project):
        for obj in s.scalars(sa.select(model).where(model.id.in_(ids))):
            dom = domains.get(obj.domain_id)
            names[obj.id] = {
                "name": obj.name,
                "domain": {"id": obj.domain_id, "name": dom.name if dom else ""},
            }
    for role in s.scalars(sa.select(m.Role).where(m.Role.id.in_(ids))):
        names[role.id] = {"name": role.name}
    for dom in domains.values():
        names.setdefault(dom.id, {"name": dom.name})
    return names


def _assignment_view(
    base: str, row: m.Assignment, names: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    def ident(obj_id: str) -> dict[str, Any]:
        return {"id": obj_id, **names.get(obj_id, {})}

    actor = "user" if row.type.startswith("User") else "group"
    target = "project" if row.type.endswith("Project") else "domain"
    return {
        "role": ident(row.role_id),
        actor: ident(row.actor_id),
        "scope": {target: ident(row.target_id)},
        "links": {
            "assignment": f"{base}/v3/{target}s/{row.target_id}/{actor}s/"
            f"{row.actor_id}/roles/{row.role_id}"
        },
    }
