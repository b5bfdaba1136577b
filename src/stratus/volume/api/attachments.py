"""``/v3/{project_id}/attachments`` (microversion 3.27 and later): create (with or without
a connector), list, show, update with a connector (waits until the storage agent has
exported the volume, then answers ``connection_info``), ``os-complete``, delete."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes, read_json
from stratus.common.errors import BadRequest
from stratus.volume import listing, views
from stratus.volume.api.common import P, connector, scope, since, wait_export
from stratus.volume.core import VolumeCore
from stratus.volume.views import FIELDS

routes = Routes()
FILTERS = {"volume_id", "status", "instance", "attach_mode", "id"}


def _list(req: Req, svc: VolumeCore, detail: bool) -> dict[str, Any]:
    since(req, (3, 27))
    ctx, project = scope(req, svc)
    wide = ctx.is_admin and str(req.query.get("all_tenants", "")).lower() in ("1", "true")
    items = []
    for att in svc.attachments.visible(ctx, project, wide):
        item = views.attachment(att, None, detail=True)
        item["created_at"] = views.ts(att.created_at)
        items.append(item)

    def shape(item: dict[str, Any]) -> dict[str, Any]:
        keep = ("id", "status", "instance", "volume_id") if not detail else tuple(
            k for k in item if k != "created_at")
        return {k: item[k] for k in keep}

    path = f"/v3/{project}/attachments" + ("/detail" if detail else "")
    return listing.apply(items, req.query, req.base_url, path, "attachments", FILTERS, shape)


@routes.add("GET", P + "/attachments")
def list_attachments(req: Req, svc: VolumeCore) -> dict[str, Any]:
    return _list(req, svc, detail=False)


@routes.add("GET", P + "/attachments/detail")
def list_attachments_detail(req: Req, svc: VolumeCore) -> dict[str, Any]:
    return _list(req, svc, detail=True)


@routes.add("GET", P + "/attachments/{attachment_id}")
def show_attachment(req: Req, svc: VolumeCore) -> dict[str, Any]:
    since(req, (3, 27))
    ctx, _ = scope(req, svc)
    att, info = svc.attachments.show(ctx, req.params["attachment_id"])
    return {"attachment": views.attachment(att, info)}


def _create(req: Req, svc: VolumeCore, body: Any) -> tuple[str, bool]:
    since(req, (3, 27))
    ctx, _ = scope(req, svc)
    svc.require_member(ctx, "volume:attachment_create")
    obj = FIELDS.body(body, "attachment")
    volume_id = FIELDS.ident(obj, "volume_uuid", required=True, max_len=36)
    instance = FIELDS.ident(obj, "instance_uuid", max_len=36)
    mode = FIELDS.choice(obj.get("mode") or "rw", "mode", ("rw", "ro"))
    conn = connector(obj) if obj.get("connector") is not None else None
    assert volume_id is not None
    return svc.attachments.create(ctx, volume_id, instance, conn, mode), conn is not None


@routes.add("POST", P + "/attachments")
async def create_attachment(req: Req, svc: VolumeCore) -> Response:
    body = await read_json(req.request)
    att_id, exported = await run_in_threadpool(_create, req, svc, body)
    if exported:
        await wait_export(svc, att_id)
    att, info = await run_in_threadpool(svc.attachments.show, req.ctx, att_id)
    return JSONResponse({"attachment": views.attachment(att, info)})


def _update(req: Req, svc: VolumeCore, body: Any) -> str:
    since(req, (3, 27))
    ctx, _ = scope(req, svc)
    svc.require_member(ctx, "volume:attachment_update")
    obj = FIELDS.body(body, "attachment")
    FIELDS.only(obj, {"connector"}, "attachment")
    svc.attachments.update(ctx, req.params["attachment_id"], connector(obj))
    return req.params["attachment_id"]


@routes.add("PUT", P + "/attachments/{attachment_id}")
async def update_attachment(req: Req, svc: VolumeCore) -> Response:
    body = await read_json(req.request)
    att_id = await run_in_threadpool(_update, req, svc, body)
    await wait_export(svc, att_id)
    att, info = await run_in_threadpool(svc.attachments.show, req.ctx, att_id)
    return JSONResponse({"attachment": views.attachment(att, info)})


@routes.add("POST", P + "/attachments/{attachment_id}/action", status=204)
def attachment_action(req: Req, svc: VolumeCore) -> None:
    since(req, (3, 44))
    ctx, _ = scope(req, svc)
    svc.require_member(ctx, "volume:attachment_complete")
    if not isinstance(req.body, dict) or list(req.body) != ["os-complete"]:
        raise BadRequest("Invalid input: the only attachment action is "
                         "{\"os-complete\": null}.")
    svc.attachments.complete(ctx, req.params["attachment_id"])


@routes.add("DELETE", P + "/attachments/{attachment_id}")
def delete_attachment(req: Req, svc: VolumeCore) -> dict[str, Any]:
    since(req, (3, 27))
    ctx, _ = scope(req, svc)
    svc.require_member(ctx, "volume:attachment_delete")
    left = svc.attachments.delete(ctx, req.params["attachment_id"])
    return {"attachments": [views.attachment(a, None, detail=False) for a in left]}
