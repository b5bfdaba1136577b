"""Identity service layer: the service catalog — regions, services, endpoints,
and the catalog a scoped token carries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.errors import BadRequest, Conflict
from stratus.common.timeutil import new_hex_id
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.rows import get, stored

if TYPE_CHECKING:
    from stratus.identity.core import Identity


# Keystone's templated endpoint URLs: the token's project replaces these.
_PROJECT_PLACEHOLDERS = ("%(project_id)s", "$(project_id)s", "%(tenant_id)s", "$(tenant_id)s")


def endpoint_url(url: str, project_id: str | None) -> str | None:
    """``url`` with the project's id in place of ``%(project_id)s`` (or ``$(...)s``,
    ``tenant_id``), as Keystone renders a catalog; None when the URL needs a project
    and the token has none (Keystone leaves such an endpoint out)."""
    if not any(ph in url for ph in _PROJECT_PLACEHOLDERS):
        return url
    if not project_id:
        return None
    for ph in _PROJECT_PLACEHOLDERS:
        url = url.replace(ph, project_id)
    return url


def catalog_entries(session: Session, project_id: str | None = None) -> list[dict[str, Any]]:
    """The enabled services with their enabled endpoints, as a token scoped to
    ``project_id`` shows them (templated URLs rendered by :func:`endpoint_url`)."""
    services = session.scalars(
        sa.select(m.Service).where(m.Service.enabled.is_(True)).order_by(m.Service.type)
    ).all()
    endpoints = session.scalars(sa.select(m.Endpoint).where(m.Endpoint.enabled.is_(True))).all()
    by_service: dict[str, list[m.Endpoint]] = {}
    for ep in endpoints:
        by_service.setdefault(ep.service_id, []).append(ep)
    return [
        {
            "id": svc.id,
            "type": svc.type,
            "name": svc.name,
            "endpoints": [
                {
                    "id": ep.id,
                    "interface": ep.interface,
                    "region": ep.region_id,
                    "region_id": ep.region_id,
                    "url": url,
                }
                for ep in by_service.get(svc.id, [])
                if (url := endpoint_url(ep.url, project_id)) is not None
            ],
        }
        for svc in services
    ]


def _ensure_region(s: Session, region_id: str | None) -> None:
    """Make the region an endpoint names when it does not exist (Keystone does)."""
    if region_id is not None and s.get(m.Region, region_id) is None:
        s.add(m.Region(id=region_id, parent_region_id=None, description=""))
        s.flush()


def _description(obj: dict[str, Any]) -> str:
    return views.text(obj, "description", allow_empty=True, max_len=65535, default="") or ""


class Regions:
    """Regions over the identity database."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def find(self, filters: dict[str, str]) -> list[m.Region]:
        q = sa.select(m.Region).order_by(m.Region.id)
        if "parent_region_id" in filters:
            q = q.where(m.Region.parent_region_id == filters["parent_region_id"])
        with self.core.db.session() as s:
            return list(s.scalars(q))

    def show(self, region_id: str) -> m.Region:
        with self.core.db.session() as s:
            region: m.Region = get(s, m.Region, region_id, "region")
            return region

    def create(self, region_id: str, parent: str | None, obj: dict[str, Any]) -> m.Region:
        with self.core.db.session() as s:
            if parent is not None:
                get(s, m.Region, parent, "region")
            if s.get(m.Region, region_id) is not None:
                raise Conflict(
                    f"Conflict occurred attempting to store region - region "
                    f"{region_id!r} already exists."
                )
            region = m.Region(id=region_id, parent_region_id=parent, description=_description(obj))
            with stored(s, f"region {region_id!r}"):
                s.add(region)
            return region

    def update(self, region_id: str, obj: dict[str, Any]) -> m.Region:
        with self.core.db.session() as s:
            region: m.Region = get(s, m.Region, region_id, "region")
            if "description" in obj:
                region.description = _description(obj)
            if "parent_region_id" in obj:
                parent = views.text(obj, "parent_region_id")
                if parent is not None:
                    if parent == region.id:
                        raise BadRequest("A region cannot be its own parent.")
                    get(s, m.Region, parent, "region")
                region.parent_region_id = parent
            return region

    def delete(self, region_id: str) -> None:
        """Delete a region without children; its endpoints lose their region."""
        with self.core.db.session() as s:
            region = get(s, m.Region, region_id, "region")
            if s.scalar(sa.select(m.Region.id).where(m.Region.parent_region_id == region.id)):
                raise Conflict(f"Region {region.id} has child regions; delete them first.")
            s.execute(
                sa.update(m.Endpoint)
                .where(m.Endpoint.region_id == region.id)
                .values(region_id=None)
            )
            s.delete(region)


class Services:
    """Catalog services over the identity database."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def find(self, filters: dict[str, str]) -> list[m.Service]:
        q = sa.select(m.Service).order_by(m.Service.type)
        for key, col in (("type", m.Service.type), ("name", m.Service.name)):
            if key in filters:
                q = q.where(col == filters[key])
        with self.core.db.session() as s:
            return list(s.scalars(q))

    def show(self, service_id: str) -> m.Service:
        with self.core.db.session() as s:
            svc: m.Service = get(s, m.Service, service_id, "service")
            return svc

    def create(
        self, type_: str | None, name: str, description: str, enabled: bool | None
    ) -> m.Service:
        svc = m.Service(
            id=new_hex_id(), type=type_, name=name, description=description, enabled=enabled
        )
        with self.core.db.session() as s:
            with stored(s, "service"):
                s.add(svc)
            return svc

    def update(self, service_id: str, obj: dict[str, Any]) -> m.Service:
        with self.core.db.session() as s:
            svc: m.Service = get(s, m.Service, service_id, "service")
            for key in ("type", "name"):
                if key in obj:
                    setattr(svc, key, views.text(obj, key, required=key == "type") or "")
            if "description" in obj:
                svc.description = _description(obj)
            enabled = views.boolean(obj, "enabled")
            if enabled is not None:
                svc.enabled = enabled
            return svc

    def delete(self, service_id: str) -> None:
        """Delete a service with its endpoints."""
        with self.core.db.session() as s:
            svc = get(s, m.Service, service_id, "service")
            s.execute(sa.delete(m.Endpoint).where(m.Endpoint.service_id == svc.id))
            s.delete(svc)


class Endpoints:
    """Catalog endpoints over the identity database."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def find(self, filters: dict[str, str]) -> list[m.Endpoint]:
        q = sa.select(m.Endpoint).order_by(m.Endpoint.service_id, m.Endpoint.interface)
        for key, col in (
            ("interface", m.Endpoint.interface),
            ("service_id", m.Endpoint.service_id),
            ("region_id", m.Endpoint.region_id),
        ):
            if key in filters:
                q = q.where(col == filters[key])
        with self.core.db.session() as s:
            return list(s.scalars(q))

    def show(self, endpoint_id: str) -> m.Endpoint:
        with self.core.db.session() as s:
            ep: m.Endpoint = get(s, m.Endpoint, endpoint_id, "endpoint")
            return ep

    def create(
        self,
        service_id: str | None,
        interface: str | None,
        url: str | None,
        region_id: str | None,
        obj: dict[str, Any],
    ) -> m.Endpoint:
        """A new endpoint of an existing service; a region it names that does not
        exist yet is made, as Keystone does."""
        with self.core.db.session() as s:
            if s.get(m.Service, service_id) is None:
                raise BadRequest(
                    f"service_id {service_id!r} does not refer to an existing service."
                )
            _ensure_region(s, region_id)
            ep = m.Endpoint(
                id=new_hex_id(),
                service_id=service_id,
                interface=interface,
                url=url,
                region_id=region_id,
                enabled=views.boolean(obj, "enabled", True),
            )
            with stored(s, "endpoint"):
                s.add(ep)
            return ep

    def update(self, endpoint_id: str, obj: dict[str, Any]) -> m.Endpoint:
        with self.core.db.session() as s:
            ep: m.Endpoint = get(s, m.Endpoint, endpoint_id, "endpoint")
            if "interface" in obj:
                ep.interface = views.interface_value(obj, required=True) or ep.interface
            if "url" in obj:
                ep.url = views.url_value(obj, "url") or ep.url
            if "service_id" in obj:
                sid = views.text(obj, "service_id", required=True, max_len=64) or ""
                if s.get(m.Service, sid) is None:
                    raise BadRequest(f"service_id {sid!r} does not refer to an existing service.")
                ep.service_id = sid
            for key in ("region_id", "region"):  # "region" is the legacy name
                if key in obj:
                    rid = views.text(obj, key)
                    _ensure_region(s, rid)
                    ep.region_id = rid
                    break
            enabled = views.boolean(obj, "enabled")
            if enabled is not None:
                ep.enabled = enabled
            return ep

    def delete(self, endpoint_id: str) -> None:
        with self.core.db.session() as s:
            s.delete(get(s, m.Endpoint, endpoint_id, "endpoint"))
