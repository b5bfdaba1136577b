"""Identity HTTP routes: regions, services and endpoints (the service catalog)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from stratus.common.app import Req, Router
from stratus.common.errors import BadRequest, Conflict
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.api_resources import admin, stored
from stratus.identity.core import INTERFACES, Identity, new_id


def interface_value(obj: dict[str, Any], required: bool) -> str | None:
    value = views.text(obj, "interface", required=required, max_len=8)
    if value is not None and value not in INTERFACES:
        raise BadRequest(f"interface {value!r} is not one of {', '.join(INTERFACES)}.")
    return value


def add_routes(router: Router, identity: Identity) -> None:
    get = identity.get

    # ---- regions -------------------------------------------------------------------------

    @router.add("GET", "/v3/regions")
    def list_regions(req: Req) -> dict[str, Any]:
        req.ctx  # any valid token may read the regions  # noqa: B018
        q = sa.select(m.Region).order_by(m.Region.id)
        if "parent_region_id" in req.query:
            q = q.where(m.Region.parent_region_id == req.query["parent_region_id"])
        with identity.db.session() as s:
            items = [views.region(req.base_url, r) for r in s.scalars(q)]
        return views.collection(req.base_url, "/v3/regions", "regions", items)

    @router.add("POST", "/v3/regions", status=201)
    def create_region(req: Req) -> dict[str, Any]:
        admin(req, "create_region")
        obj = views.entity(req.body, "region")
        region_id = views.text(obj, "id") or new_id()
        with identity.db.session() as s:
            parent = views.text(obj, "parent_region_id")
            if parent is not None:
                get(s, m.Region, parent, "region")
            if s.get(m.Region, region_id) is not None:
                raise Conflict(
                    f"Conflict occurred attempting to store region - region "
                    f"{region_id!r} already exists."
                )
            region = m.Region(
                id=region_id,
                parent_region_id=parent,
                description=views.text(
                    obj, "description", allow_empty=True, max_len=65535, default=""
                )
                or "",
            )
            with stored(s, f"region {region_id!r}"):
                s.add(region)
            return {"region": views.region(req.base_url, region)}

    @router.add("GET", "/v3/regions/{region_id}")
    def show_region(req: Req) -> dict[str, Any]:
        req.ctx  # noqa: B018
        with identity.db.session() as s:
            return {
                "region": views.region(
                    req.base_url, get(s, m.Region, req.params["region_id"], "region")
                )
            }

    @router.add("PATCH", "/v3/regions/{region_id}")
    def update_region(req: Req) -> dict[str, Any]:
        admin(req, "update_region")
        obj = views.entity(req.body, "region")
        with identity.db.session() as s:
            region = get(s, m.Region, req.params["region_id"], "region")
            if "description" in obj:
                region.description = (
                    views.text(obj, "description", allow_empty=True, max_len=65535, default="")
                    or ""
                )
            if "parent_region_id" in obj:
                parent = views.text(obj, "parent_region_id")
                if parent is not None:
                    if parent == region.id:
                        raise BadRequest("A region cannot be its own parent.")
                    get(s, m.Region, parent, "region")
                region.parent_region_id = parent
            return {"region": views.region(req.base_url, region)}

    @router.add("DELETE", "/v3/regions/{region_id}")
    def delete_region(req: Req) -> None:
        admin(req, "delete_region")
        with identity.db.session() as s:
            region = get(s, m.Region, req.params["region_id"], "region")
            if s.scalar(sa.select(m.Region.id).where(m.Region.parent_region_id == region.id)):
                raise Conflict(f"Region {region.id} has child regions; delete them first.")
            s.execute(
                sa.update(m.Endpoint)
                .where(m.Endpoint.region_id == region.id)
                .values(region_id=None)
            )
            s.delete(region)

    # ---- services ------------------------------------------------------------------------

    @router.add("GET", "/v3/services")
    def list_services(req: Req) -> dict[str, Any]:
        admin(req, "list_services")
        q = sa.select(m.Service).order_by(m.Service.type)
        for key, col in (("type", m.Service.type), ("name", m.Service.name)):
            if key in req.query:
                q = q.where(col == req.query[key])
        with identity.db.session() as s:
            items = [views.service(req.base_url, x) for x in s.scalars(q)]
        return views.collection(req.base_url, "/v3/services", "services", items)

    @router.add("POST", "/v3/services", status=201)
    def create_service(req: Req) -> dict[str, Any]:
        admin(req, "create_service")
        obj = views.entity(req.body, "service")
        svc = m.Service(
            id=new_id(),
            type=views.text(obj, "type", required=True),
            name=views.text(obj, "name", default="") or "",
            description=views.text(obj, "description", allow_empty=True, max_len=65535, default="")
            or "",
            enabled=views.boolean(obj, "enabled", True),
        )
        with identity.db.session() as s:
            with stored(s, "service"):
                s.add(svc)
            return {"service": views.service(req.base_url, svc)}

    @router.add("GET", "/v3/services/{service_id}")
    def show_service(req: Req) -> dict[str, Any]:
        admin(req, "get_service")
        with identity.db.session() as s:
            return {
                "service": views.service(
                    req.base_url, get(s, m.Service, req.params["service_id"], "service")
                )
            }

    @router.add("PATCH", "/v3/services/{service_id}")
    def update_service(req: Req) -> dict[str, Any]:
        admin(req, "update_service")
        obj = views.entity(req.body, "service")
        with identity.db.session() as s:
            svc = get(s, m.Service, req.params["service_id"], "service")
            for key in ("type", "name"):
                if key in obj:
                    setattr(svc, key, views.text(obj, key, required=key == "type") or "")
            if "description" in obj:
                svc.description = (
                    views.text(obj, "description", allow_empty=True, max_len=65535, default="")
                    or ""
                )
            enabled = views.boolean(obj, "enabled")
            if enabled is not None:
                svc.enabled = enabled
            return {"service": views.service(req.base_url, svc)}

    @router.add("DELETE", "/v3/services/{service_id}")
    def delete_service(req: Req) -> None:
        admin(req, "delete_service")
        with identity.db.session() as s:
            svc = get(s, m.Service, req.params["service_id"], "service")
            s.execute(sa.delete(m.Endpoint).where(m.Endpoint.service_id == svc.id))
            s.delete(svc)

    # ---- endpoints -----------------------------------------------------------------------

    @router.add("GET", "/v3/endpoints")
    def list_endpoints(req: Req) -> dict[str, Any]:
        admin(req, "list_endpoints")
        q = sa.select(m.Endpoint).order_by(m.Endpoint.service_id, m.Endpoint.interface)
        for key, col in (
            ("interface", m.Endpoint.interface),
            ("service_id", m.Endpoint.service_id),
            ("region_id", m.Endpoint.region_id),
        ):
            if key in req.query:
                q = q.where(col == req.query[key])
        with identity.db.session() as s:
            items = [views.endpoint(req.base_url, e) for e in s.scalars(q)]
        return views.collection(req.base_url, "/v3/endpoints", "endpoints", items)

    @router.add("POST", "/v3/endpoints", status=201)
    def create_endpoint(req: Req) -> dict[str, Any]:
        admin(req, "create_endpoint")
        obj = views.entity(req.body, "endpoint")
        service_id = views.text(obj, "service_id", required=True, max_len=64)
        interface = interface_value(obj, required=True)
        url = views.url_value(obj, "url")
        region_id = views.text(obj, "region_id") or views.text(obj, "region")
        with identity.db.session() as s:
            if s.get(m.Service, service_id) is None:
                raise BadRequest(
                    f"service_id {service_id!r} does not refer to an existing service."
                )
            if region_id is not None and s.get(m.Region, region_id) is None:
                raise BadRequest(f"region_id {region_id!r} does not refer to an existing region.")
            ep = m.Endpoint(
                id=new_id(),
                service_id=service_id,
                interface=interface,
                url=url,
                region_id=region_id,
                enabled=views.boolean(obj, "enabled", True),
            )
            with stored(s, "endpoint"):
                s.add(ep)
            return {"endpoint": views.endpoint(req.base_url, ep)}

    @router.add("GET", "/v3/endpoints/{endpoint_id}")
    def show_endpoint(req: Req) -> dict[str, Any]:
        admin(req, "get_endpoint")
        with identity.db.session() as s:
            return {
                "endpoint": views.endpoint(
                    req.base_url, get(s, m.Endpoint, req.params["endpoint_id"], "endpoint")
                )
            }

    @router.add("PATCH", "/v3/endpoints/{endpoint_id}")
    def update_endpoint(req: Req) -> dict[str, Any]:
        admin(req, "update_endpoint")
        obj = views.entity(req.body, "endpoint")
        with identity.db.session() as s:
            ep = get(s, m.Endpoint, req.params["endpoint_id"], "endpoint")
            if "interface" in obj:
                ep.interface = interface_value(obj, required=True) or ep.interface
            if "url" in obj:
                ep.url = views.url_value(obj, "url") or ep.url
            if "service_id" in obj:
                sid = views.text(obj, "service_id", required=True, max_len=64) or ""
                if s.get(m.Service, sid) is None:
                    raise BadRequest(f"service_id {sid!r} does not refer to an existing service.")
                ep.service_id = sid
            if "region_id" in obj:
                rid = views.text(obj, "region_id")
                if rid is not None and s.get(m.Region, rid) is None:
                    raise BadRequest(f"region_id {rid!r} does not refer to an existing region.")
                ep.region_id = rid
            enabled = views.boolean(obj, "enabled")
            if enabled is not None:
                ep.enabled = enabled
            return {"endpoint": views.endpoint(req.base_url, ep)}

    @router.add("DELETE", "/v3/endpoints/{endpoint_id}")
    def delete_endpoint(req: Req) -> None:
        admin(req, "delete_endpoint")
        with identity.db.session() as s:
            s.delete(get(s, m.Endpoint, req.params["endpoint_id"], "endpoint"))
