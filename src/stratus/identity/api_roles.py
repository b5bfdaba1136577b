"""Identity HTTP routes: roles and implied roles."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from stratus.common.app import Req, Router
from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.api_resources import (
    admin,
    require_domain,
    stored,
)
from stratus.identity.core import GLOBAL, Identity, new_id


def add_routes(router: Router, identity: Identity) -> None:
    get = identity.get

    # ---- roles ---------------------------------------------------------------------------

    @router.add("GET", "/v3/roles")
    def list_roles(req: Req) -> dict[str, Any]:
        admin(req, "list_roles")
        q = sa.select(m.Role).order_by(m.Role.name)
        q = q.where(m.Role.domain_id == req.query.get("domain_id", GLOBAL))
        if "name" in req.query:
            q = q.where(m.Role.name == req.query["name"])
        with identity.db.session() as s:
            items = [views.role(req.base_url, r) for r in s.scalars(q)]
        return views.collection(req.base_url, "/v3/roles", "roles", items)

    @router.add("POST", "/v3/roles", status=201)
    def create_role(req: Req) -> dict[str, Any]:
        admin(req, "create_role")
        obj = views.entity(req.body, "role")
        name = views.text(obj, "name", required=True)
        with identity.db.session() as s:
            domain_id = views.text(obj, "domain_id", max_len=64) or GLOBAL
            if domain_id != GLOBAL:
                require_domain(s, domain_id)
            if (
                s.scalar(
                    sa.select(m.Role).where(m.Role.domain_id == domain_id, m.Role.name == name)
                )
                is not None
            ):
                raise Conflict(
                    f"Conflict occurred attempting to store role - a role named "
                    f"{name!r} already exists."
                )
            role = m.Role(
                id=new_id(),
                name=name,
                domain_id=domain_id,
                description=views.text(obj, "description", allow_empty=True, max_len=65535),
                extra=views.extras(obj),
            )
            with stored(s, f"role {name!r}"):
                s.add(role)
            return {"role": views.role(req.base_url, role)}

    @router.add("GET", "/v3/roles/{role_id}")
    def show_role(req: Req) -> dict[str, Any]:
        admin(req, "get_role")
        with identity.db.session() as s:
            return {"role": views.role(req.base_url, get(s, m.Role, req.params["role_id"], "role"))}

    @router.add("PATCH", "/v3/roles/{role_id}")
    def update_role(req: Req) -> dict[str, Any]:
        admin(req, "update_role")
        obj = views.entity(req.body, "role")
        with identity.db.session() as s:
            role = get(s, m.Role, req.params["role_id"], "role")
            if "name" in obj:
                role.name = views.text(obj, "name", required=True) or role.name
            if "description" in obj:
                role.description = views.text(obj, "description", allow_empty=True, max_len=65535)
            role.extra = {**(role.extra or {}), **views.extras(obj)}
            with stored(s, f"role {role.name!r}"):
                pass
            return {"role": views.role(req.base_url, role)}

    @router.add("DELETE", "/v3/roles/{role_id}")
    def delete_role(req: Req) -> None:
        admin(req, "delete_role")
        with identity.db.session() as s:
            role = get(s, m.Role, req.params["role_id"], "role")
            s.execute(sa.delete(m.Assignment).where(m.Assignment.role_id == role.id))
            s.execute(
                sa.delete(m.ImpliedRole).where(
                    sa.or_(
                        m.ImpliedRole.prior_role_id == role.id,
                        m.ImpliedRole.implied_role_id == role.id,
                    )
                )
            )
            s.delete(role)

    def inference(base: str, prior: m.Role, implied: m.Role | list[m.Role]) -> dict[str, Any]:
        def short(r: m.Role) -> dict[str, Any]:
            return {"id": r.id, "name": r.name, "links": {"self": f"{base}/v3/roles/{r.id}"}}

        implies = [short(r) for r in implied] if isinstance(implied, list) else short(implied)
        return {"prior_role": short(prior), "implies": implies}

    @router.add("PUT", "/v3/roles/{prior_id}/implies/{implied_id}", status=201, body=False)
    def create_implied(req: Req) -> dict[str, Any]:
        admin(req, "create_implied_role")
        with identity.db.session() as s:
            prior = get(s, m.Role, req.params["prior_id"], "role")
            implied = get(s, m.Role, req.params["implied_id"], "role")
            if prior.id in identity.expand_implied(s, [implied.id]):
                raise BadRequest(
                    f"Role {implied.name} already implies {prior.name}; "
                    "an implied-role loop is not allowed."
                )
            if s.get(m.ImpliedRole, (prior.id, implied.id)) is None:
                with stored(s, "implied role"):
                    s.add(m.ImpliedRole(prior_role_id=prior.id, implied_role_id=implied.id))
            return {"role_inference": inference(req.base_url, prior, implied)}

    @router.add("GET", "/v3/roles/{prior_id}/implies")
    def list_implied(req: Req) -> dict[str, Any]:
        admin(req, "list_implied_roles")
        with identity.db.session() as s:
            prior = get(s, m.Role, req.params["prior_id"], "role")
            implied = s.scalars(
                sa.select(m.Role)
                .join(m.ImpliedRole, m.ImpliedRole.implied_role_id == m.Role.id)
                .where(m.ImpliedRole.prior_role_id == prior.id)
            ).all()
            return {"role_inference": inference(req.base_url, prior, list(implied))}

    @router.add("DELETE", "/v3/roles/{prior_id}/implies/{implied_id}")
    def delete_implied(req: Req) -> None:
        admin(req, "delete_implied_role")
        with identity.db.session() as s:
            row = s.get(m.ImpliedRole, (req.params["prior_id"], req.params["implied_id"]))
            if row is None:
                raise NotFound("That role does not imply the other.")
            s.delete(row)

    @router.add("GET", "/v3/role_inferences")
    def role_inferences(req: Req) -> dict[str, Any]:
        admin(req, "list_role_inference_rules")
        with identity.db.session() as s:
            rows = s.scalars(sa.select(m.ImpliedRole)).all()
            roles = {r.id: r for r in s.scalars(sa.select(m.Role))}
            grouped: dict[str, list[m.Role]] = {}
            for row in rows:
                grouped.setdefault(row.prior_role_id, []).append(roles[row.implied_role_id])
            items = [inference(req.base_url, roles[p], imp) for p, imp in grouped.items()]
        return {"role_inferences": items, "links": {"self": f"{req.base_url}/v3/role_inferences"}}
