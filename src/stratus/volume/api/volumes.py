"""``/v3/{project_id}/volumes``: list (summary and detail), create, show, update, delete."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.volume import listing, views
from stratus.volume.api.common import P, metadata, scope, since
from stratus.volume.core import VolumeCore
from stratus.volume.views import FIELDS, MAX_SIZE, mv
from stratus.volume.volumes import CreateSpec, Shown

routes = Routes()
FILTERS = {"name", "status", "bootable", "availability_zone", "metadata", "volume_type",
           "os-vol-tenant-attr:tenant_id", "multiattach", "size", "id", "description",
           "user_id", "project_id", "created_at", "updated_at"}
UNSUPPORTED = ("backup_id", "consistencygroup_id", "group_id", "source_replica")


def render(req: Req, svc: VolumeCore, shown: Shown, detail: bool = True) -> dict[str, Any]:
    return views.volume(req, shown.volume, shown.type_name, shown.attachments,
                        svc.settings.backend_name, detail)


def _all(req: Req) -> bool:
    raw = req.query.get("all_tenants") or req.query.get("all_projects")
    return raw is not None and str(raw).lower() in ("", "1", "true", "yes", "t", "y", "on")


def _list(req: Req, svc: VolumeCore, detail: bool) -> dict[str, Any]:
    ctx, project = scope(req, svc)
    wide = _all(req) and ctx.is_admin
    items = [render(req, svc, v) for v in svc.volumes.visible(ctx, project, wide)]
    for item in items:
        item["project_id"] = item["os-vol-tenant-attr:tenant_id"]
    if wide and req.query.get("project_id"):
        items = [i for i in items if i["project_id"] == req.query["project_id"]]

    def summary(item: dict[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in ("id", "name", "links")}

    def clean(item: dict[str, Any]) -> dict[str, Any]:
        item = dict(item)
        item.pop("project_id", None)
        return item

    body = listing.apply(items, req.query, req.base_url,
                         f"/v3/{project}/volumes" + ("/detail" if detail else ""), "volumes",
                         FILTERS, None if detail else summary)
    if detail:
        body["volumes"] = [clean(i) for i in body["volumes"]]
    return body


@routes.add("GET", P + "/volumes")
def list_volumes(req: Req, svc: VolumeCore) -> dict[str, Any]:
    return _list(req, svc, detail=False)


@routes.add("GET", P + "/volumes/detail")
def list_volumes_detail(req: Req, svc: VolumeCore) -> dict[str, Any]:
    return _list(req, svc, detail=True)


@routes.add("GET", P + "/volumes/summary")
def volume_summary(req: Req, svc: VolumeCore) -> dict[str, Any]:
    """Count and total size of the project's volumes (3.12), their metadata (3.36)."""
    since(req, (3, 12))
    ctx, project = scope(req, svc)
    shown = svc.volumes.visible(ctx, project, _all(req) and ctx.is_admin)
    out: dict[str, Any] = {"total_size": sum(v.volume.size for v in shown),
                           "total_count": len(shown)}
    if mv(req) >= (3, 36):
        meta: dict[str, list[str]] = {}
        for v in shown:
            for key, value in (v.volume.metadata_ or {}).items():
                if value not in meta.setdefault(key, []):
                    meta[key].append(value)
        out["metadata"] = meta
    return {"volume-summary": out}


def _text(obj: dict[str, Any], key: str, alias: str) -> str | None:
    value = obj.get(key, obj.get(alias))
    return FIELDS.text({key: value}, key, max_len=255, allow_empty=True)


@routes.add("POST", P + "/volumes", status=202)
def create_volume(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, project = scope(req, svc)
    svc.require_member(ctx, "volume:create")
    obj = FIELDS.body(req.body, "volume")
    for key in UNSUPPORTED:
        if obj.get(key):
            raise BadRequest(f"Invalid input received: {key} is not supported by this cloud.")
    image = obj.get("imageRef", obj.get("image_id"))
    spec = CreateSpec(
        size=FIELDS.integer(obj, "size", 1, MAX_SIZE),
        name=_text(obj, "name", "display_name"),
        description=_text(obj, "description", "display_description"),
        image_id=FIELDS.ident({"imageRef": image}, "imageRef", max_len=36),
        source_volid=FIELDS.ident(obj, "source_volid", max_len=36),
        snapshot_id=FIELDS.ident(obj, "snapshot_id", max_len=36),
        volume_type=FIELDS.text(obj, "volume_type", max_len=255),
        availability_zone=FIELDS.text(obj, "availability_zone", max_len=255),
        metadata=metadata(obj),
        multiattach=bool(FIELDS.boolean(obj, "multiattach", False)),
    )
    return {"volume": views.written(render(req, svc, svc.volumes.create(ctx, project, spec)))}


@routes.add("GET", P + "/volumes/{volume_id}")
def show_volume(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    return {"volume": render(req, svc, svc.volumes.show(ctx, req.params["volume_id"]))}


@routes.add("PUT", P + "/volumes/{volume_id}")
def update_volume(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_member(ctx, "volume:update")
    obj = FIELDS.body(req.body, "volume")
    FIELDS.only(obj, {"name", "description", "display_name", "display_description",
                      "metadata"}, "volume")
    if not obj:
        raise BadRequest("Invalid input: the volume object names nothing to update "
                         "(name, description, metadata).")
    changes: dict[str, Any] = {}
    for key, alias in (("name", "display_name"), ("description", "display_description")):
        if key in obj or alias in obj:
            changes[key] = _text(obj, key, alias)
    if "metadata" in obj:
        changes["metadata"] = metadata(obj)
    shown = svc.volumes.update(ctx, req.params["volume_id"], changes)
    return {"volume": views.written(render(req, svc, shown))}


@routes.add("DELETE", P + "/volumes/{volume_id}", status=202)
def delete_volume(req: Req, svc: VolumeCore) -> Response:
    ctx, _ = scope(req, svc)
    svc.require_member(ctx, "volume:delete")
    cascade = FIELDS.query_flag(FIELDS.query_one(req.query, "cascade"), "cascade") or False
    force = False
    if mv(req) >= (3, 23):
        force = FIELDS.query_flag(FIELDS.query_one(req.query, "force"), "force") or False
    if force:
        svc.require_admin(ctx, "volume:force_delete")
    svc.volumes.delete(ctx, req.params["volume_id"], cascade=cascade, force=force)
    return Response(status_code=202)
