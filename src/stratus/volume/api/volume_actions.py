"""``POST /v3/{project_id}/volumes/{volume_id}/action``: one action per body.

os-extend, os-set_bootable, os-update_readonly_flag, os-volume_upload_image,
os-reset_status and os-force_delete (admin), and the legacy attach actions os-reserve,
os-unreserve, os-initialize_connection (waits for the export, like an attachment
update), os-attach, os-begin_detaching, os-roll_detaching, os-terminate_connection,
os-detach. An ``async`` handler: only os-initialize_connection waits, on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes, read_json
from stratus.common.errors import BadRequest
from stratus.volume.api.common import P, connector, scope, wait_export
from stratus.volume.core import VolumeCore
from stratus.volume.views import FIELDS, MAX_SIZE, mv
from stratus.volume.volumes import ATTACH_STATUSES, STATUSES

routes = Routes()
DISK_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx", "iso", "ami", "ari", "aki",
                "ploop")
CONTAINER_FORMATS = ("bare", "ovf", "ova", "ami", "ari", "aki", "docker", "compressed")
Action = Callable[[Req, VolumeCore, str, dict[str, Any]], Any]
ACTIONS: dict[str, Action] = {}


def action(name: str) -> Callable[[Action], Action]:
    def decorator(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn
    return decorator


def _args(body: dict[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    value = body[name]
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input: '{name}' must be an object.")
    return dict(value)


@action("os-extend")
def extend(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    args = _args(body, "os-extend")
    size = FIELDS.integer(args, "new_size", 1, MAX_SIZE, required=True)
    assert size is not None
    svc.volumes.extend(req.ctx, vid, size, in_use_ok=mv(req) >= (3, 42))
    return Response(status_code=202)


@action("os-set_bootable")
def set_bootable(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    args = _args(body, "os-set_bootable")
    if "bootable" not in args:
        raise BadRequest("Invalid input: 'bootable' is a required property.")
    svc.volumes.set_bootable(req.ctx, vid, FIELDS.flag(args["bootable"], "bootable"))
    return Response(status_code=200)


@action("os-update_readonly_flag")
def readonly(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    args = _args(body, "os-update_readonly_flag")
    if "readonly" not in args:
        raise BadRequest("Invalid input: 'readonly' is a required property.")
    svc.volumes.set_readonly(req.ctx, vid, FIELDS.flag(args["readonly"], "readonly"))
    return Response(status_code=202)


@action("os-volume_upload_image")
def upload(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> JSONResponse:
    args = _args(body, "os-volume_upload_image")
    name = FIELDS.text(args, "image_name", required=True, max_len=255)
    disk = FIELDS.choice(args.get("disk_format", "raw"), "disk_format", DISK_FORMATS)
    container = FIELDS.choice(args.get("container_format", "bare"), "container_format",
                              CONTAINER_FORMATS)
    params = {"image_name": name, "disk_format": disk, "container_format": container,
              "force": FIELDS.boolean(args, "force", False),
              "visibility": FIELDS.text(args, "visibility", max_len=16),
              "protected": FIELDS.boolean(args, "protected", False)}
    if params["visibility"] not in (None, "public", "private", "shared", "community"):
        raise BadRequest("Invalid input: visibility must be public, private, shared or "
                         "community.")
    result = svc.volumes.upload_image(req.ctx, vid, params)
    return JSONResponse({"os-volume_upload_image": result}, status_code=202)


@action("os-reset_status")
def reset_status(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    svc.require_admin(req.ctx, "volume_extension:volume_admin_actions:reset_status")
    args = _args(body, "os-reset_status")
    status = args.get("status")
    attach = args.get("attach_status")
    if status is None and attach is None:
        raise BadRequest("Invalid input: give status and/or attach_status.")
    if status is not None:
        status = FIELDS.choice(status, "status", STATUSES)
    if attach is not None:
        attach = FIELDS.choice(attach, "attach_status", ATTACH_STATUSES)
    svc.volumes.reset_status(req.ctx, vid, status, attach)
    return Response(status_code=202)


@action("os-force_delete")
def force_delete(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    svc.require_admin(req.ctx, "volume_extension:volume_admin_actions:force_delete")
    svc.volumes.delete(req.ctx, vid, cascade=False, force=True)
    return Response(status_code=202)


@action("os-reserve")
def reserve(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    svc.attachments.reserve(req.ctx, vid)
    return Response(status_code=202)


@action("os-unreserve")
def unreserve(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    svc.attachments.unreserve(req.ctx, vid)
    return Response(status_code=202)


@action("os-begin_detaching")
def begin_detaching(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    svc.attachments.begin_detaching(req.ctx, vid)
    return Response(status_code=202)


@action("os-roll_detaching")
def roll_detaching(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    svc.attachments.roll_detaching(req.ctx, vid)
    return Response(status_code=202)


@action("os-attach")
def attach(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    args = _args(body, "os-attach")
    instance = FIELDS.ident(args, "instance_uuid", max_len=36)
    host = FIELDS.text(args, "host_name", max_len=255)
    if instance is None and host is None:
        raise BadRequest("Invalid input: give instance_uuid or host_name.")
    mountpoint = FIELDS.text(args, "mountpoint", max_len=255)
    mode = FIELDS.choice(args.get("mode", "rw"), "mode", ("rw", "ro"))
    svc.attachments.attach(req.ctx, vid, instance, mountpoint, host, mode)
    return Response(status_code=202)


@action("os-detach")
def detach(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    args = _args(body, "os-detach", required=False)
    svc.attachments.detach(req.ctx, vid, FIELDS.ident(args, "attachment_id", max_len=36))
    return Response(status_code=202)


@action("os-terminate_connection")
def terminate(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> Response:
    svc.attachments.terminate(req.ctx, vid, connector(_args(body, "os-terminate_connection")))
    return Response(status_code=202)


@action("os-initialize_connection")
def initialize(req: Req, svc: VolumeCore, vid: str, body: dict[str, Any]) -> str:
    """Records the export; the handler then waits for it (answers the attachment id)."""
    conn = connector(_args(body, "os-initialize_connection"))
    return svc.attachments.initialize(req.ctx, vid, conn)


def _dispatch(req: Req, svc: VolumeCore, body: Any) -> tuple[str, Any]:
    ctx, _ = scope(req, svc)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid input: an action body is one object naming one action "
                         f"(one of {', '.join(sorted(ACTIONS))}).")
    (name,) = body
    fn = ACTIONS.get(name)
    if fn is None:
        raise BadRequest(f"There is no such action: {name}. Known actions: "
                         f"{', '.join(sorted(ACTIONS))}.")
    svc.require_member(ctx, f"volume:{name}")
    return name, fn(req, svc, req.params["volume_id"], body)


@routes.add("POST", P + "/volumes/{volume_id}/action")
async def volume_action(req: Req, svc: VolumeCore) -> Response:
    body = await read_json(req.request)
    name, result = await run_in_threadpool(_dispatch, req, svc, body)
    if name != "os-initialize_connection":
        assert isinstance(result, Response)
        return result
    await wait_export(svc, result)
    _att, info = await run_in_threadpool(svc.attachments.show, req.ctx, result)
    return JSONResponse({"connection_info": info or {}})

