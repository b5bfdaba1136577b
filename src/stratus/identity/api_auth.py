"""Identity HTTP routes: version discovery and /v3/auth/* (tokens, catalog, scopes)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Router
from stratus.common.errors import Forbidden, NotFound, Unauthorized
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.core import Identity

V3_ID = "v3.14"
V3_UPDATED = "2020-04-07T00:00:00Z"


def version_doc(base: str) -> dict[str, Any]:
    return {
        "id": V3_ID,
        "status": "stable",
        "updated": V3_UPDATED,
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


def add_routes(router: Router, identity: Identity) -> None:
    @router.add("GET", "/")
    def versions(req: Req) -> Response:
        body = {"versions": {"values": [version_doc(req.base_url)]}}
        return JSONResponse(body, status_code=300)

    @router.add("GET", "/v3")
    def v3(req: Req) -> dict[str, Any]:
        return {"version": version_doc(req.base_url)}

    router.add("GET", "/v3/")(v3)

    @router.add("POST", "/v3/auth/tokens", status=201)
    def issue_token(req: Req) -> Response:
        token, validated = identity.authenticate(req.body)
        include_catalog = "nocatalog" not in req.query
        body = identity.token_body(None, validated, include_catalog)
        return JSONResponse(body, status_code=201, headers={"X-Subject-Token": token})

    def subject(req: Req) -> tuple[str, Any]:
        caller = req.ctx
        token = req.header("x-subject-token")
        if not token:
            raise NotFound("The X-Subject-Token header is missing.")
        validated = identity.validate(token)
        if not caller.is_admin and validated.user.id != caller.user_id:
            raise Forbidden(
                "You are not authorized to perform the requested action: identity:validate_token."
            )
        return token, validated

    @router.add("GET", "/v3/auth/tokens")
    def validate_token(req: Req) -> Response:
        token, validated = subject(req)
        body = identity.token_body(None, validated, "nocatalog" not in req.query)
        return JSONResponse(body, headers={"X-Subject-Token": token})

    @router.add("HEAD", "/v3/auth/tokens")
    def check_token(req: Req) -> Response:
        token, _ = subject(req)
        return Response(status_code=200, headers={"X-Subject-Token": token})

    @router.add("DELETE", "/v3/auth/tokens")
    def revoke_token(req: Req) -> None:
        _, validated = subject(req)
        with identity.db.session() as session:
            identity.revoke(session, audit_id=validated.payload.audit_ids[0])

    @router.add("GET", "/v3/auth/catalog")
    def auth_catalog(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        if not (ctx.project_id or ctx.domain_id or ctx.system):
            raise Forbidden("An unscoped token has no catalog; ask for a scoped token.")
        with identity.db.session() as session:
            catalog = identity.catalog(session)
        return {"catalog": catalog, "links": {"self": f"{req.base_url}/v3/auth/catalog"}}

    @router.add("GET", "/v3/auth/projects")
    def auth_projects(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        with identity.db.session() as session:
            projects = projects_of_user(identity, session, ctx.user_id)
            items = [views.project(req.base_url, p) for p in projects if p.enabled]
        return views.collection(req.base_url, "/v3/auth/projects", "projects", items)

    @router.add("GET", "/v3/auth/domains")
    def auth_domains(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        with identity.db.session() as session:
            actors = [ctx.user_id, *identity.group_ids(session, ctx.user_id)]
            ids = session.scalars(
                sa.select(m.Assignment.target_id).where(
                    m.Assignment.type.in_(("UserDomain", "GroupDomain")),
                    m.Assignment.actor_id.in_(actors),
                )
            ).all()
            domains = session.scalars(
                sa.select(m.Domain).where(m.Domain.id.in_(set(ids)), m.Domain.enabled.is_(True))
            ).all()
            items = [views.domain(req.base_url, d) for d in domains]
        return views.collection(req.base_url, "/v3/auth/domains", "domains", items)


def projects_of_user(identity: Identity, session: Any, user_id: str) -> list[m.Project]:
    actors = [user_id, *identity.group_ids(session, user_id)]
    ids = session.scalars(
        sa.select(m.Assignment.target_id).where(
            m.Assignment.type.in_(("UserProject", "GroupProject")),
            m.Assignment.actor_id.in_(actors),
        )
    ).all()
    if not ids:
        return []
    return list(
        session.scalars(
            sa.select(m.Project).where(m.Project.id.in_(set(ids))).order_by(m.Project.name)
        ).all()
    )


__all__ = ["Unauthorized", "add_routes", "projects_of_user", "version_doc"]
