"""Flavors: list (with Nova's is_public, minRam/minDisk, sort, marker, limit), show,
create, update (its description, 2.55) and delete (admin)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, MethodNotAllowed
from stratus.common.timeutil import new_id
from stratus.compute import models as m
from stratus.compute import views
from stratus.compute.core import ComputeCore

routes = Routes()
CREATE_ATTRS = {"name", "id", "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap",
                "rxtx_factor", "os-flavor-access:is_public", "description"}
SORT_KEYS = {"flavorid": "id", "id": "id", "name": "name", "memory_mb": "ram", "ram": "ram",
             "vcpus": "vcpus", "root_gb": "disk", "disk": "disk", "created_at": "created_at"}


def flavor_id(f: m.Flavor) -> str:
    return f.id


def visible_flavors(req: Req, svc: ComputeCore) -> list[m.Flavor]:
    """The flavors the caller sees, filtered, sorted and paged as the query asks."""
    ctx, q = req.ctx, req.query
    rows = svc.flavors.visible(ctx)
    public = q.get("is_public", "true").lower()
    if public not in ("true", "false", "none", "1", "0", "yes", "no", "t", "f"):
        raise BadRequest(f"Invalid is_public filter [{q.get('is_public')}]")
    if ctx.is_admin:
        if public != "none":
            flag = public in ("true", "1", "yes", "t")
            rows = [f for f in rows if f.is_public == flag]
    elif public in ("false", "0", "no", "f"):
        rows = [f for f in rows if not f.is_public]
    for key, attr in (("minRam", "ram"), ("minDisk", "disk")):
        if key in q:
            least = views.integer({key: q[key]}, key)
            rows = [f for f in rows if getattr(f, attr) >= least]
    sort_key = q.get("sort_key", "flavorid")
    if sort_key not in SORT_KEYS:
        raise BadRequest(views.NOVA_LISTS.bad_sort_key.format(key=sort_key,
                                                              allowed=", ".join(SORT_KEYS)))
    if q.get("sort_dir", "asc") not in ("asc", "desc"):
        raise BadRequest(views.NOVA_LISTS.bad_sort_dir.format(dir=q.get("sort_dir")))
    rows.sort(key=lambda f: (getattr(f, SORT_KEYS[sort_key]), f.id),
              reverse=q.get("sort_dir") == "desc")
    rows, _ = views.LISTER.page(rows, q.get("marker"), None,
                                id_of=flavor_id)
    rows, _ = views.LISTER.page(rows, None, views.LISTER.limit(q), id_of=flavor_id)
    return rows


@routes.add("GET", "/v2.1/flavors")
def list_flavors(req: Req, svc: ComputeCore) -> dict[str, Any]:
    new = views.mv(req) >= (2, 55)
    return {"flavors": [{"id": f.id, "name": f.name, "links": views.link(req, f"flavors/{f.id}"),
                         **({"description": f.description} if new else {})}
                        for f in visible_flavors(req, svc)]}


@routes.add("GET", "/v2.1/flavors/detail")
def list_flavors_detail(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"flavors": [views.flavor(req, f) for f in visible_flavors(req, svc)]}


@routes.add("GET", "/v2.1/flavors/{id}")
def show_flavor(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"flavor": views.flavor(req, svc.flavors.show(req.ctx, req.params["id"]))}


@routes.add("POST", "/v2.1/flavors")
def create_flavor(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-flavor-manage:create")
    data = views.obj(req.body, "flavor")
    views.only(data, CREATE_ATTRS if views.mv(req) >= (2, 55)
               else CREATE_ATTRS - {"description"}, "flavor")
    name = views.text(data, "name", required=True)
    assert name is not None
    fid = data.get("id")
    if fid is None or fid == "auto":
        fid = new_id()
    if not isinstance(fid, str | int) or isinstance(fid, bool) or not str(fid).strip() \
            or len(str(fid)) > 255:
        raise BadRequest("Invalid input for field/attribute id: 1-255 characters.")
    is_public = views.boolean(data.get("os-flavor-access:is_public", True),
                              "os-flavor-access:is_public")
    rxtx = data.get("rxtx_factor", 1.0)
    if isinstance(rxtx, bool) or not isinstance(rxtx, int | float) or rxtx <= 0:
        raise BadRequest("Invalid input for field/attribute rxtx_factor: a number > 0.")
    flavor = svc.flavors.create(
        str(fid), name, vcpus=views.integer(data, "vcpus", minimum=1),
        ram=views.integer(data, "ram", minimum=1), disk=views.integer(data, "disk", minimum=0),
        ephemeral=views.integer(data, "OS-FLV-EXT-DATA:ephemeral", 0),
        swap=views.integer(data, "swap", 0), rxtx_factor=float(rxtx), is_public=is_public,
        description=flavor_description(data))
    return {"flavor": views.flavor(req, flavor)}


def flavor_description(data: dict[str, Any]) -> str | None:
    """A flavor's ``description`` (2.55): up to 65535 characters, or null."""
    if data.get("description") is None:
        return None
    return views.text(data, "description", maxlen=65535, allow_empty=True)


@routes.add("PUT", "/v2.1/flavors/{id}")
def update_flavor(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """2.55: change a flavor's description (the only attribute that can change)."""
    if views.mv(req) < (2, 55):
        raise MethodNotAllowed("Flavors cannot be changed before microversion 2.55.")
    svc.require_admin(req.ctx, "os_compute_api:os-flavor-manage:update")
    data = views.obj(req.body, "flavor")
    views.only(data, {"description"}, "flavor")
    if "description" not in data:
        raise BadRequest("Invalid input: 'description' is a required property.")
    flavor = svc.flavors.describe(req.ctx, req.params["id"], flavor_description(data))
    return {"flavor": views.flavor(req, flavor)}


@routes.add("DELETE", "/v2.1/flavors/{id}", status=202)
def delete_flavor(req: Req, svc: ComputeCore) -> Response:
    svc.require_admin(req.ctx, "os_compute_api:os-flavor-manage:delete")
    svc.flavors.delete(req.params["id"])
    return Response(status_code=202)
