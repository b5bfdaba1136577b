"""``/v3/{project_id}/types``: list, show (``default`` too), and for admins create, update,
delete and the extra specs (``volume_backend_name``, ``multiattach``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.volume import views
from stratus.volume.api.common import P, metadata, scope
from stratus.volume.core import VolumeCore
from stratus.volume.views import FIELDS

routes = Routes()


def _render(req: Req, vt: Any) -> dict[str, Any]:
    return views.volume_type(vt, req.ctx.is_admin)


def _without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Cinder's create and update answers carry fewer attributes than a show."""
    return {k: v for k, v in doc.items() if k not in keys}


@routes.add("GET", P + "/types")
def list_types(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    return {"volume_types": [_render(req, vt) for vt in svc.types.visible(ctx)]}


@routes.add("GET", P + "/types/{type_id}")
def show_type(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    return {"volume_type": _render(req, svc.types.show(ctx, req.params["type_id"]))}


@routes.add("POST", P + "/types")
def create_type(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_admin(ctx, "volume_extension:types_manage")
    obj = FIELDS.body(req.body, "volume_type")
    name = FIELDS.text(obj, "name", required=True, max_len=255)
    description = FIELDS.text(obj, "description", max_len=255, allow_empty=True)
    public = FIELDS.boolean(obj, "os-volume-type-access:is_public", None)
    if public is None:
        public = FIELDS.boolean(obj, "is_public", True)
    specs = metadata(obj, "extra_specs")
    vt = svc.types.create(ctx, name, description, bool(public), specs)
    return {"volume_type": _without(_render(req, vt), "qos_specs_id")}


@routes.add("PUT", P + "/types/{type_id}")
def update_type(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_admin(ctx, "volume_extension:types_manage")
    obj = FIELDS.body(req.body, "volume_type")
    FIELDS.only(obj, {"name", "description", "is_public"}, "volume_type")
    changes: dict[str, Any] = {}
    if "name" in obj:
        changes["name"] = FIELDS.text(obj, "name", required=True, max_len=255)
    if "description" in obj:
        changes["description"] = FIELDS.text(obj, "description", max_len=255,
                                             allow_empty=True)
    if "is_public" in obj:
        changes["is_public"] = FIELDS.boolean(obj, "is_public")
    if not changes:
        raise BadRequest("Invalid input: name, description or is_public must be given.")
    vt = svc.types.update(ctx, req.params["type_id"], changes)
    return {"volume_type": _without(_render(req, vt), "qos_specs_id",
                                    "os-volume-type-access:is_public")}


@routes.add("DELETE", P + "/types/{type_id}")
def delete_type(req: Req, svc: VolumeCore) -> Response:
    ctx, _ = scope(req, svc)
    svc.require_admin(ctx, "volume_extension:types_manage")
    svc.types.delete(ctx, req.params["type_id"])
    return Response(status_code=202)


@routes.add("GET", P + "/types/{type_id}/extra_specs")
def list_specs(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_admin(ctx, "volume_extension:types_extra_specs:index")
    return {"extra_specs": dict(svc.types.show(ctx, req.params["type_id"]).extra_specs)}


@routes.add("POST", P + "/types/{type_id}/extra_specs")
def set_specs(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_admin(ctx, "volume_extension:types_extra_specs:create")
    if not isinstance(req.body, dict) or not isinstance(req.body.get("extra_specs"), dict):
        raise BadRequest("Malformed request body: an 'extra_specs' object is expected.")
    specs = metadata(req.body, "extra_specs")
    svc.types.set_specs(req.params["type_id"], specs)
    return {"extra_specs": specs}


@routes.add("GET", P + "/types/{type_id}/extra_specs/{key}")
def show_spec(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_admin(ctx, "volume_extension:types_extra_specs:show")
    specs = svc.types.show(ctx, req.params["type_id"]).extra_specs or {}
    key = req.params["key"]
    if key not in specs:
        raise NotFound(f"Volume Type {req.params['type_id']} has no extra specs with key "
                       f"{key}.")
    return {key: specs[key]}


@routes.add("PUT", P + "/types/{type_id}/extra_specs/{key}")
def set_spec(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_admin(ctx, "volume_extension:types_extra_specs:update")
    key = req.params["key"]
    if not isinstance(req.body, dict) or list(req.body) != [key]:
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the key "
                         "of the URL.")
    specs = metadata({"extra_specs": req.body}, "extra_specs")
    svc.types.set_specs(req.params["type_id"], specs)
    return specs


@routes.add("DELETE", P + "/types/{type_id}/extra_specs/{key}")
def delete_spec(req: Req, svc: VolumeCore) -> Response:
    ctx, _ = scope(req, svc)
    svc.require_admin(ctx, "volume_extension:types_extra_specs:delete")
    svc.types.delete_spec(req.params["type_id"], req.params["key"])
    return Response(status_code=202)
