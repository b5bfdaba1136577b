"""``/v3/{project_id}/snapshots``: list, create (``force`` for an in-use volume), show,
update, delete, admin actions (os-reset_status, os-force_delete), snapshot metadata."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.volume import listing, views
from stratus.volume.api.common import P, metadata, scope
from stratus.volume.core import VolumeCore
from stratus.volume.views import FIELDS

routes = Routes()
FILTERS = {"name", "status", "volume_id", "metadata", "id", "size",
           "os-extended-snapshot-attributes:project_id"}
SNAPSHOT_STATUSES = ("creating", "available", "deleting", "error", "error_deleting",
                     "backing-up", "restoring", "unmanaging")


def _written(doc: dict[str, Any]) -> dict[str, Any]:
    """A snapshot as a create or update answers it (Cinder's show-only attributes left out)."""
    return {k: v for k, v in doc.items() if not k.startswith("os-extended-snapshot")}


def _list(req: Req, svc: VolumeCore, detail: bool) -> dict[str, Any]:
    ctx, project = scope(req, svc)
    wide = ctx.is_admin and str(req.query.get("all_tenants", "")).lower() in ("1", "true")
    items = [views.snapshot(req, sn) for sn in svc.snapshots.visible(ctx, project, wide)]
    path = f"/v3/{project}/snapshots" + ("/detail" if detail else "")

    return listing.apply(items, req.query, req.base_url, path, "snapshots", FILTERS,
                         None if detail else _written)


@routes.add("GET", P + "/snapshots")
def list_snapshots(req: Req, svc: VolumeCore) -> dict[str, Any]:
    return _list(req, svc, detail=False)


@routes.add("GET", P + "/snapshots/detail")
def list_snapshots_detail(req: Req, svc: VolumeCore) -> dict[str, Any]:
    return _list(req, svc, detail=True)


def _text(obj: dict[str, Any], key: str, alias: str) -> str | None:
    return FIELDS.text({key: obj.get(key, obj.get(alias))}, key, max_len=255, allow_empty=True)


@routes.add("POST", P + "/snapshots", status=202)
def create_snapshot(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, project = scope(req, svc)
    svc.require_member(ctx, "volume:create_snapshot")
    obj = FIELDS.body(req.body, "snapshot")
    volume_id = FIELDS.ident(obj, "volume_id", required=True, max_len=36)
    assert volume_id is not None
    force = bool(FIELDS.boolean(obj, "force", False))
    snap = svc.snapshots.create(ctx, project, volume_id, force,
                                _text(obj, "name", "display_name"),
                                _text(obj, "description", "display_description"),
                                metadata(obj))
    return {"snapshot": _written(views.snapshot(req, snap))}


@routes.add("GET", P + "/snapshots/{snapshot_id}")
def show_snapshot(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    return {"snapshot": views.snapshot(req, svc.snapshots.show(ctx, req.params["snapshot_id"]))}


@routes.add("PUT", P + "/snapshots/{snapshot_id}")
def update_snapshot(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_member(ctx, "volume:update_snapshot")
    obj = FIELDS.body(req.body, "snapshot")
    FIELDS.only(obj, {"name", "description", "display_name", "display_description"},
                "snapshot")
    if not obj:
        raise BadRequest("Invalid input: the snapshot object names nothing to update.")
    changes = {key: _text(obj, key, alias) for key, alias in
               (("name", "display_name"), ("description", "display_description"))
               if key in obj or alias in obj}
    snap = svc.snapshots.update(ctx, req.params["snapshot_id"], changes)
    return {"snapshot": _written(views.snapshot(req, snap))}


@routes.add("DELETE", P + "/snapshots/{snapshot_id}")
def delete_snapshot(req: Req, svc: VolumeCore) -> Response:
    ctx, _ = scope(req, svc)
    svc.require_member(ctx, "volume:delete_snapshot")
    svc.snapshots.delete(ctx, req.params["snapshot_id"])
    return Response(status_code=202)


@routes.add("POST", P + "/snapshots/{snapshot_id}/action")
def snapshot_action(req: Req, svc: VolumeCore) -> Response:
    ctx, _ = scope(req, svc)
    body = req.body
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid input: an action body names one action (os-reset_status, "
                         "os-force_delete).")
    (name,) = body
    svc.require_admin(ctx, f"volume_extension:snapshot_admin_actions:{name}")
    sid = req.params["snapshot_id"]
    if name == "os-reset_status":
        args = body[name] if isinstance(body[name], dict) else {}
        status = FIELDS.choice(args.get("status"), "status", SNAPSHOT_STATUSES)
        svc.snapshots.reset_status(ctx, sid, status)
    elif name == "os-force_delete":
        svc.snapshots.delete(ctx, sid, force=True)
    else:
        raise BadRequest(f"There is no such action: {name}.")
    return Response(status_code=202)


@routes.add("GET", P + "/snapshots/{snapshot_id}/metadata")
def snapshot_metadata(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    return {"metadata": dict(svc.snapshots.show(ctx, req.params["snapshot_id"]).metadata_)}


@routes.add(("POST", "PUT"), P + "/snapshots/{snapshot_id}/metadata")
def set_snapshot_metadata(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    if not isinstance(req.body, dict) or "metadata" not in req.body:
        raise BadRequest("Malformed request body: a 'metadata' object is expected.")
    items = metadata(req.body)
    out = svc.snapshots.set_metadata(ctx, req.params["snapshot_id"], items,
                                     replace=req.request.method == "PUT")
    return {"metadata": out}


@routes.add("GET", P + "/snapshots/{snapshot_id}/metadata/{key}")
def show_snapshot_metadata_item(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    meta = svc.snapshots.show(ctx, req.params["snapshot_id"]).metadata_ or {}
    key = req.params["key"]
    if key not in meta:
        raise NotFound(f"Snapshot {req.params['snapshot_id']} has no metadata with key {key}.")
    return {"meta": {key: meta[key]}}


@routes.add("DELETE", P + "/snapshots/{snapshot_id}/metadata/{key}")
def delete_snapshot_metadata_item(req: Req, svc: VolumeCore) -> Response:
    ctx, _ = scope(req, svc)
    svc.snapshots.delete_metadata(ctx, req.params["snapshot_id"], req.params["key"])
    return Response(status_code=200)
