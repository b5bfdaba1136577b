"""A server's volumes as Nova shows them: ``/servers/{id}/os-volume_attachments``
(service layer: ``compute/volumes.py``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, Conflict
from stratus.compute import models as m
from stratus.compute import server_lock, views
from stratus.compute.core import ComputeCore
from stratus.compute.volumes import ServerVolumes

routes = Routes()
P = "/v2.1/servers/{id}/os-volume_attachments"


def attachment(req: Req, row: m.BlockDeviceMapping, created: bool = False) -> dict[str, Any]:
    """One volumeAttachment in the shape of the request's microversion (an attach answers
    ``id`` and no ``attachment_id``/``bdm_uuid`` at every version, as Nova's)."""
    v = views.mv(req)
    out: dict[str, Any] = {"device": row.device, "serverId": row.server_id,
                           "volumeId": row.volume_id}
    if v < (2, 89) or created:
        out["id"] = row.volume_id
    if v >= (2, 70):
        out["tag"] = row.tag
    if v >= (2, 79):
        out["delete_on_termination"] = row.delete_on_termination
    if v >= (2, 89) and not created:
        out["attachment_id"], out["bdm_uuid"] = row.attachment_id, row.id
    return out


@routes.add("GET", P)
def list_attachments(req: Req, svc: ComputeCore) -> dict[str, Any]:
    _srv, rows = ServerVolumes(svc).attached(req.ctx, req.params["id"])
    return {"volumeAttachments": [attachment(req, r) for r in rows]}


@routes.add("GET", P + "/{volume}")
def show_attachment(req: Req, svc: ComputeCore) -> dict[str, Any]:
    _srv, row = ServerVolumes(svc).show(req.ctx, req.params["id"], req.params["volume"])
    return {"volumeAttachment": attachment(req, row)}


@routes.add("POST", P)
def attach(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_member(req.ctx, "os_compute_api:os-volumes-attachments:create")
    v = views.mv(req)
    body = views.obj(req.body, "volumeAttachment")
    allowed = {"volumeId", "device"}
    if v >= (2, 49):
        allowed.add("tag")
    if v >= (2, 79):
        allowed.add("delete_on_termination")
    views.only(body, allowed, "volumeAttachment")
    volume_id = views.text(body, "volumeId", required=True, maxlen=36)
    device = views.text(body, "device", maxlen=32)
    tag = views.text(body, "tag", maxlen=60)
    dot = views.boolean(body["delete_on_termination"], "delete_on_termination") \
        if body.get("delete_on_termination") is not None else False
    assert volume_id is not None
    server_lock.refuse_if_locked(svc, req.ctx, req.params["id"])
    _srv, row = ServerVolumes(svc).attach(req.ctx, req.params["id"], volume_id, device, tag,
                                          dot, multiattach=v >= (2, 60))
    return {"volumeAttachment": attachment(req, row, created=True)}


@routes.add("PUT", P + "/{volume}", status=202)
def update_attachment(req: Req, svc: ComputeCore) -> Response:
    """Nova's PUT: below 2.85 a swap to another volume (admin), which Stratus cannot do
    (409); from 2.85 the same volume with ``delete_on_termination`` changed (the other
    attributes, when given, must be what they are)."""
    v = views.mv(req)
    body = views.obj(req.body, "volumeAttachment")
    allowed = {"volumeId"}
    if v >= (2, 85):
        allowed |= {"device", "tag", "delete_on_termination", "serverId", "id"}
    views.only(body, allowed, "volumeAttachment")
    volume_id = views.text(body, "volumeId", required=True, maxlen=36)
    sid, old = req.params["id"], req.params["volume"]
    if v < (2, 85) or volume_id != old:
        svc.require_admin(req.ctx, "os_compute_api:os-volumes-attachments:swap")
        ServerVolumes(svc).show(req.ctx, sid, old)  # 404 first when not attached
        raise Conflict("Swapping a server's volume for another is not supported: Stratus "
                       "cannot copy a volume into another under a running guest (detach "
                       "it and attach the other); from microversion 2.85 the same "
                       "volumeId may be given to change delete_on_termination.")
    svc.require_member(req.ctx, "os_compute_api:os-volumes-attachments:update")
    _srv, row = ServerVolumes(svc).show(req.ctx, sid, old)
    current = {"device": row.device, "tag": row.tag, "serverId": row.server_id,
               "id": row.volume_id}
    for key, value in current.items():
        if key in body and body[key] != value:
            raise BadRequest(f"Invalid input for field/attribute {key}: it cannot be changed "
                             f"(it is {value!r}); only delete_on_termination can.")
    if body.get("delete_on_termination") is not None:
        ServerVolumes(svc).set_delete_on_termination(req.ctx, sid, old, views.boolean(
            body["delete_on_termination"], "delete_on_termination"))
    return Response(status_code=202)


@routes.add("DELETE", P + "/{volume}", status=202)
def detach(req: Req, svc: ComputeCore) -> Response:
    svc.require_member(req.ctx, "os_compute_api:os-volumes-attachments:delete")
    server_lock.refuse_if_locked(svc, req.ctx, req.params["id"])
    ServerVolumes(svc).detach(req.ctx, req.params["id"], req.params["volume"])
    return Response(status_code=202)
