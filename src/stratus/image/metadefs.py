"""Metadata definitions (Glance's metadefs): the service layer behind ``/v2/metadefs``.

Who may do what:

- a namespace is seen by admins, by everyone when it is ``public``, and by its
  owner project when ``private``; an unseen namespace is a 404;
- admins write any namespace and its contents; a project member may create, change
  and delete the ``private`` namespaces its project owns (never make one public nor
  give it away); anything else is a 403;
- a ``protected`` namespace cannot be deleted, nor can its objects, properties, tags
  or resource type associations (403) until ``protected`` is set to false.

Each write is one transaction (``Database.transaction``): a request that fails
leaves nothing of itself behind; two requests racing for one name end in a 409.
Namespaces are few (a catalogue, not per-resource data), so a list reads the
visible ones and pages in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common import policy
from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stratus.common.timeutil import utcnow
from stratus.image import metadef_views as mv
from stratus.image import models as m
from stratus.image.core import ImageService

T = TypeVar("T")
KINDS = {"object": "Metadata definition object", "property": "Metadata definition property",
         "tag": "Metadata definition tag", "resource_type": "Resource type association"}
MAX_LIMIT = 1000
DEFAULT_LIMIT = 25


def _write(svc: ImageService, work: Callable[[Session], T]) -> T:
    return svc.db.transaction(work, conflict_after=1)


def _find(s: Session, ctx: AuthContext, name: str) -> m.MetadefNamespace:
    ns = s.scalar(sa.select(m.MetadefNamespace).where(m.MetadefNamespace.namespace == name))
    if ns is None or not (ctx.is_admin or ns.visibility == "public"
                          or (ctx.project_id is not None and ns.owner == ctx.project_id)):
        raise NotFound(f"Metadata definition namespace={name} was not found.")
    return ns


def _check_write(ctx: AuthContext, owner: str | None, visibility: str, action: str) -> None:
    if ctx.is_admin:
        return
    if visibility != "private" or owner is None or owner != ctx.project_id \
            or not policy.has_role(ctx, "member"):
        raise Forbidden(f"You are not authorized to {action}: only admins write public "
                        "namespaces or those of other projects.")


def _writable(s: Session, ctx: AuthContext, name: str, action: str) -> m.MetadefNamespace:
    ns = _find(s, ctx, name)
    _check_write(ctx, ns.owner, ns.visibility, action)
    return ns


def _unprotected(ns: m.MetadefNamespace, what: str) -> None:
    if ns.protected:
        raise Forbidden(f"Namespace {ns.namespace} is protected; {what} cannot be deleted "
                        "until it is updated with protected=false.")


def _items(s: Session, ns: m.MetadefNamespace, kind: str) -> list[m.MetadefItem]:
    return list(s.scalars(
        sa.select(m.MetadefItem)
        .where(m.MetadefItem.namespace_id == ns.id, m.MetadefItem.kind == kind)
        .order_by(m.MetadefItem.created_at, m.MetadefItem.name)
    ))


def _item(s: Session, ns: m.MetadefNamespace, kind: str, name: str) -> m.MetadefItem:
    item = s.get(m.MetadefItem, (ns.id, kind, name))
    if item is None:
        raise NotFound(f"{KINDS[kind]} {name} was not found in namespace {ns.namespace}.")
    return item


def _add(s: Session, ns: m.MetadefNamespace, kind: str, name: str,
         body: dict[str, Any]) -> m.MetadefItem:
    if s.get(m.MetadefItem, (ns.id, kind, name)) is not None:
        raise Conflict(f"{KINDS[kind]} {name} already exists in namespace {ns.namespace}.")
    now = utcnow()
    item = m.MetadefItem(namespace_id=ns.id, kind=kind, name=name, body=json.dumps(body),
                         created_at=now, updated_at=now)
    s.add(item)
    s.flush()
    return item


def _replace(s: Session, ns: m.MetadefNamespace, kind: str, old: str, new: str,
             body: dict[str, Any]) -> m.MetadefItem:
    item = _item(s, ns, kind, old)
    if new == old:
        item.body = json.dumps(body)
        item.updated_at = utcnow()
        return item
    created = item.created_at
    s.delete(item)
    s.flush()
    renamed = _add(s, ns, kind, new, body)
    renamed.created_at = created
    return renamed


# ---- namespaces ----------------------------------------------------------------------------


def full_view(s: Session, ns: m.MetadefNamespace) -> dict[str, Any]:
    """A namespace with the definitions inside it (those it has)."""
    out = mv.namespace(ns)
    assoc = [mv.association(i) for i in _items(s, ns, "resource_type")]
    props = {i.name: mv.definition(i) for i in _items(s, ns, "property")}
    objects = [mv.object_(i, ns.namespace) for i in _items(s, ns, "object")]
    tags = [mv.tag(i) for i in _items(s, ns, "tag")]
    for key, value in (("resource_type_associations", assoc), ("properties", props),
                       ("objects", objects), ("tags", tags)):
        if value:
            out[key] = value
    return out


def _nested(body: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The definitions given inline in a namespace create body, validated."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for key, kind in (("resource_type_associations", "resource_type"), ("objects", "object"),
                      ("tags", "tag")):
        given = body.get(key) or []
        if not isinstance(given, list):
            raise BadRequest(f"'{key}' must be a list.")
        for entry in given:
            if kind == "resource_type":
                out.append((kind, *mv.association_request(entry)))
            elif kind == "object":
                out.append((kind, *mv.object_request(entry)))
            else:
                out.append((kind, mv.tag_rename(entry), {}))
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise BadRequest("'properties' must be an object of property definitions by name.")
    for name, definition in props.items():
        out.append(("property", *mv.property_request(definition, name=name)))
    return out


def create_namespace(svc: ImageService, ctx: AuthContext, body: Any) -> dict[str, Any]:
    fields = mv.namespace_fields(body, creating=True)
    fields.setdefault("owner", ctx.project_id)
    if fields["owner"] != ctx.project_id and not ctx.is_admin:
        raise Forbidden("Only admins may create a namespace owned by another project.")
    _check_write(ctx, fields["owner"], fields["visibility"], "create this namespace")
    nested = _nested(body)

    def work(s: Session) -> dict[str, Any]:
        if s.scalar(sa.select(m.MetadefNamespace.id)
                    .where(m.MetadefNamespace.namespace == fields["namespace"])) is not None:
            raise Conflict(f"Metadata definition namespace={fields['namespace']} already "
                           "exists.")
        now = utcnow()
        ns = m.MetadefNamespace(**fields, created_at=now, updated_at=now)
        s.add(ns)
        s.flush()
        for kind, name, definition in nested:
            _add(s, ns, kind, name, definition)
        return full_view(s, ns)

    return _write(svc, work)


def list_namespaces(svc: ImageService, ctx: AuthContext, query: Any) -> dict[str, Any]:
    visibility = query.get("visibility")
    if visibility is not None and visibility not in mv.NAMESPACE_VISIBILITIES:
        raise BadRequest(f"'visibility' must be one of {', '.join(mv.NAMESPACE_VISIBILITIES)}.")
    types = [t for t in (query.get("resource_types") or "").split(",") if t]
    limit = _limit(query.get("limit"))
    sort_key = query.get("sort_key", "created_at")
    sort_dir = query.get("sort_dir", "desc")
    if sort_key not in ("created_at", "updated_at", "namespace"):
        raise BadRequest("'sort_key' must be one of created_at, updated_at, namespace.")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest("'sort_dir' must be asc or desc.")
    with svc.db.session() as s:
        stmt = sa.select(m.MetadefNamespace)
        if not ctx.is_admin:
            stmt = stmt.where(sa.or_(m.MetadefNamespace.visibility == "public",
                                     m.MetadefNamespace.owner == ctx.project_id))
        if visibility:
            stmt = stmt.where(m.MetadefNamespace.visibility == visibility)
        if types:
            stmt = stmt.where(m.MetadefNamespace.id.in_(
                sa.select(m.MetadefItem.namespace_id)
                .where(m.MetadefItem.kind == "resource_type", m.MetadefItem.name.in_(types))))
        found = sorted(s.scalars(stmt), key=lambda n: (getattr(n, sort_key), n.namespace),
                       reverse=sort_dir == "desc")
        marker = query.get("marker")
        if marker is not None:
            names = [n.namespace for n in found]
            if marker not in names:
                raise BadRequest(f"marker {marker!r} is not a namespace you can see.")
            found = found[names.index(marker) + 1:]
        page = found[:limit]
        out: dict[str, Any] = {"namespaces": [full_view(s, n) for n in page],
                               "first": "/v2/metadefs/namespaces",
                               "schema": "/v2/schemas/metadefs/namespaces"}
        if len(found) > limit:
            out["next"] = f"/v2/metadefs/namespaces?marker={page[-1].namespace}&limit={limit}"
        return out


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest(f"'limit' must be a whole number of 1 or more, not {raw!r}.")
    return min(int(raw), MAX_LIMIT)


def show_namespace(svc: ImageService, ctx: AuthContext, name: str) -> dict[str, Any]:
    with svc.db.session() as s:
        return full_view(s, _find(s, ctx, name))


def update_namespace(svc: ImageService, ctx: AuthContext, name: str,
                     body: Any) -> dict[str, Any]:
    fields = mv.namespace_fields(body, creating=False)

    def work(s: Session) -> dict[str, Any]:
        ns = _writable(s, ctx, name, f"update namespace {name}")
        owner = fields.get("owner", ns.owner)
        if owner != ns.owner and not ctx.is_admin:
            raise Forbidden("Only admins may give a namespace to another project.")
        _check_write(ctx, owner, fields.get("visibility", ns.visibility),
                     f"update namespace {name}")
        if fields["namespace"] != name and s.scalar(
                sa.select(m.MetadefNamespace.id)
                .where(m.MetadefNamespace.namespace == fields["namespace"])) is not None:
            raise Conflict(f"Metadata definition namespace={fields['namespace']} already "
                           "exists.")
        for key, value in fields.items():
            setattr(ns, key, value)
        ns.updated_at = utcnow()
        s.flush()
        return full_view(s, ns)

    return _write(svc, work)


def delete_namespace(svc: ImageService, ctx: AuthContext, name: str) -> None:
    def work(s: Session) -> None:
        ns = _writable(s, ctx, name, f"delete namespace {name}")
        _unprotected(ns, "it")
        s.execute(sa.delete(m.MetadefItem).where(m.MetadefItem.namespace_id == ns.id))
        s.delete(ns)

    _write(svc, work)


# ---- definitions inside a namespace (objects, properties, tags, associations) --------------


def list_items(svc: ImageService, ctx: AuthContext, name: str, kind: str) -> list[Any]:
    """The namespace's definitions of ``kind``, each as its view."""
    with svc.db.session() as s:
        ns = _find(s, ctx, name)
        return [_view(kind, i, ns) for i in _items(s, ns, kind)]


def _view(kind: str, item: m.MetadefItem, ns: m.MetadefNamespace) -> dict[str, Any]:
    if kind == "object":
        return mv.object_(item, ns.namespace)
    if kind == "property":
        return mv.property_(item)
    if kind == "tag":
        return mv.tag(item)
    return mv.association(item)


def show_item(svc: ImageService, ctx: AuthContext, name: str, kind: str,
              item_name: str) -> dict[str, Any]:
    with svc.db.session() as s:
        ns = _find(s, ctx, name)
        return _view(kind, _item(s, ns, kind, item_name), ns)


def add_item(svc: ImageService, ctx: AuthContext, name: str, kind: str, item_name: str,
             body: dict[str, Any]) -> dict[str, Any]:
    """Add one definition (already validated) to the namespace: 409 if the name is taken."""
    def work(s: Session) -> dict[str, Any]:
        ns = _writable(s, ctx, name, f"add a {kind} to namespace {name}")
        item = _add(s, ns, kind, item_name, body)
        ns.updated_at = item.created_at
        return _view(kind, item, ns)

    return _write(svc, work)


def replace_item(svc: ImageService, ctx: AuthContext, name: str, kind: str, old: str,
                 new: str, body: dict[str, Any]) -> dict[str, Any]:
    """Replace a definition, renaming it when ``new`` differs (409 if that name is taken)."""
    def work(s: Session) -> dict[str, Any]:
        ns = _writable(s, ctx, name, f"update a {kind} of namespace {name}")
        return _view(kind, _replace(s, ns, kind, old, new, body), ns)

    return _write(svc, work)


def delete_item(svc: ImageService, ctx: AuthContext, name: str, kind: str,
                item_name: str) -> None:
    def work(s: Session) -> None:
        ns = _writable(s, ctx, name, f"delete a {kind} of namespace {name}")
        item = _item(s, ns, kind, item_name)
        _unprotected(ns, f"its {kind} {item_name}")
        s.delete(item)

    _write(svc, work)


def delete_items(svc: ImageService, ctx: AuthContext, name: str, kind: str) -> None:
    """Delete every definition of ``kind`` in the namespace."""
    def work(s: Session) -> None:
        ns = _writable(s, ctx, name, f"delete the {kind}s of namespace {name}")
        _unprotected(ns, f"its {kind}s")
        s.execute(sa.delete(m.MetadefItem).where(m.MetadefItem.namespace_id == ns.id,
                                                 m.MetadefItem.kind == kind))

    _write(svc, work)


def set_tags(svc: ImageService, ctx: AuthContext, name: str, tags: list[str],
             append: bool) -> list[dict[str, Any]]:
    """Create the tags; without ``append`` they replace the namespace's current tags."""
    def work(s: Session) -> list[dict[str, Any]]:
        ns = _writable(s, ctx, name, f"add tags to namespace {name}")
        if not append:
            s.execute(sa.delete(m.MetadefItem).where(m.MetadefItem.namespace_id == ns.id,
                                                     m.MetadefItem.kind == "tag"))
        return [mv.tag(_add(s, ns, "tag", tag, {})) for tag in tags]

    return _write(svc, work)


def resource_types(svc: ImageService, ctx: AuthContext) -> dict[str, Any]:
    """The resource types: the standard ones and any a visible namespace is associated with."""
    with svc.db.session() as s:
        stmt = (sa.select(m.MetadefItem.name).distinct()
                .join(m.MetadefNamespace, m.MetadefNamespace.id == m.MetadefItem.namespace_id)
                .where(m.MetadefItem.kind == "resource_type"))
        if not ctx.is_admin:
            stmt = stmt.where(sa.or_(m.MetadefNamespace.visibility == "public",
                                     m.MetadefNamespace.owner == ctx.project_id))
        used = set(s.scalars(stmt))
    names = sorted(set(mv.RESOURCE_TYPES) | used)
    return {"resource_types": [{"name": n} for n in names]}
