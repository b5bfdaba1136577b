"""os-aggregates (admin by Nova's default policy): host aggregates, their hosts and
metadata (compute/aggregates.py); ``uuid`` from 2.41.

``POST /os-aggregates/{id}/images`` (2.81, image pre-caching) is refused with a 400:
Stratus's agents fetch an image into their cache at the first boot from it and have no
way to be asked to fetch one ahead (docs/compute-api.md, Host aggregates)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.common.timeutil import isotime
from stratus.compute import views
from stratus.compute.aggregates import AZ_KEY, UNSET, Aggregates, AggregateView
from stratus.compute.core import ComputeCore

routes = Routes()
P = "/v2.1/os-aggregates"
POLICY = "os_compute_api:os-aggregates:"


def shown(req: Req, a: AggregateView, full: bool = True) -> dict[str, Any]:
    """An aggregate as Nova shows it (a create's answer has no hosts and metadata)."""
    out: dict[str, Any] = {
        "id": a.id, "name": a.name, "availability_zone": a.availability_zone,
        "created_at": isotime(a.created_at),
        "updated_at": isotime(a.updated_at) if a.updated_at else None,
        "deleted_at": None, "deleted": False}
    if full:
        out["hosts"], out["metadata"] = list(a.hosts), dict(a.metadata)
    if views.mv(req) >= (2, 41):
        out["uuid"] = a.uuid
    return out


def agg_id(req: Req) -> int:
    raw = req.params["id"]
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid aggregate id {raw!r}: an integer is expected.") from None


def name_of(value: Any, what: str, nullable: bool = False) -> str | None:
    """A name of 1-255 characters without leading or trailing spaces; an availability
    zone may not contain ':' (it separates zone and host at server create)."""
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or value != value.strip():
        raise BadRequest(f"Invalid input for field/attribute {what}: a string of 1 to 255 "
                         f"characters without leading or trailing spaces is expected"
                         f"{' (or null)' if nullable else ''}.")
    if what == AZ_KEY and ":" in value:
        raise BadRequest("Invalid input for field/attribute availability_zone: the name "
                         "may not contain ':'.")
    return value


def admin(req: Req, svc: ComputeCore, action: str) -> Aggregates:
    svc.require_admin(req.ctx, POLICY + action)
    return Aggregates(svc)


@routes.add("GET", P)
def list_aggregates(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"aggregates": [shown(req, a) for a in admin(req, svc, "index").list()]}


@routes.add("POST", P)
def create_aggregate(req: Req, svc: ComputeCore) -> dict[str, Any]:
    aggs = admin(req, svc, "create")
    data = views.obj(req.body, "aggregate")
    views.only(data, {"name", AZ_KEY}, "aggregate")
    if "name" not in data:
        raise BadRequest("Invalid input for field/attribute aggregate: 'name' is a "
                         "required property.")
    name = name_of(data["name"], "name")
    assert name is not None
    zone = name_of(data.get(AZ_KEY), AZ_KEY, nullable=True)
    return {"aggregate": shown(req, aggs.create(name, zone), full=False)}


@routes.add("GET", P + "/{id}")
def show_aggregate(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"aggregate": shown(req, admin(req, svc, "show").show(agg_id(req)))}


@routes.add("PUT", P + "/{id}")
def update_aggregate(req: Req, svc: ComputeCore) -> dict[str, Any]:
    aggs = admin(req, svc, "update")
    aid = agg_id(req)
    data = views.obj(req.body, "aggregate")
    views.only(data, {"name", AZ_KEY}, "aggregate")
    if not data:
        raise BadRequest("Invalid input for field/attribute aggregate: name and/or "
                         "availability_zone is expected.")
    name = name_of(data["name"], "name") if "name" in data else None
    zone = name_of(data[AZ_KEY], AZ_KEY, nullable=True) if AZ_KEY in data else UNSET
    return {"aggregate": shown(req, aggs.update(aid, name, zone))}


@routes.add("DELETE", P + "/{id}")
def delete_aggregate(req: Req, svc: ComputeCore) -> Response:
    admin(req, svc, "delete").delete(agg_id(req))
    return Response(status_code=200)


def _host(data: Any, action: str) -> str:
    if not isinstance(data, dict) or set(data) != {"host"}:
        raise BadRequest(f"Invalid input for field/attribute {action}: an object with "
                         f"exactly one key, 'host', is expected.")
    host = data["host"]
    if not isinstance(host, str) or not 1 <= len(host) <= 255:
        raise BadRequest("Invalid input for field/attribute host: a host name of 1 to "
                         "255 characters is expected.")
    return host


def _metadata(data: Any) -> dict[str, str | None]:
    if not isinstance(data, dict) or set(data) != {"metadata"} or not isinstance(
            data["metadata"], dict) or not data["metadata"]:
        raise BadRequest("Invalid input for field/attribute set_metadata: "
                         "{\"metadata\": {key: value or null, ...}} (at least one key) is "
                         "expected.")
    out: dict[str, str | None] = {}
    for key, value in data["metadata"].items():
        if not 1 <= len(key) <= 255:
            raise BadRequest("Invalid input for field/attribute metadata: keys must be 1 "
                             "to 255 characters long.")
        if key == AZ_KEY:
            out[key] = name_of(value, AZ_KEY, nullable=True)
        elif value is None or (isinstance(value, str) and len(value) <= 255):
            out[key] = value
        else:
            raise BadRequest(f"Invalid input for field/attribute metadata: the value of "
                             f"{key} must be a string of at most 255 characters or null.")
    return out


@routes.add("POST", P + "/{id}/action")
def aggregate_action(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """add_host, remove_host or set_metadata (exactly one per request)."""
    body = req.body
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Exactly one action is expected: add_host, remove_host or "
                         "set_metadata.")
    (action, data), = body.items()
    aid = agg_id(req)
    if action == "add_host":
        view = admin(req, svc, "add_host").add_host(aid, _host(data, action))
    elif action == "remove_host":
        view = admin(req, svc, "remove_host").remove_host(aid, _host(data, action))
    elif action == "set_metadata":
        view = admin(req, svc, "set_metadata").set_metadata(aid, _metadata(data))
    else:
        raise BadRequest(f"Unknown aggregate action {action!r}: add_host, remove_host or "
                         f"set_metadata is expected.")
    return {"aggregate": shown(req, view)}


@routes.add("POST", P + "/{id}/images")
def cache_images(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """Image pre-caching (2.81): not supported by Stratus's hosts, refused."""
    if views.mv(req) < (2, 81):
        raise NotFound("The resource could not be found (os-aggregates/{id}/images is "
                       "from microversion 2.81).")
    aggs = admin(req, svc, "images")
    aggs.show(agg_id(req))  # 404 for an unknown aggregate first
    raise BadRequest("Image pre-caching is not supported by this cloud's compute hosts: "
                     "an image is cached on a host by the first server booted from it.")
