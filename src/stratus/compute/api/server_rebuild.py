"""The rebuild action (``POST /servers/{id}/action {"rebuild": {...}}``), dispatched from
``api/server_actions.py``: its body by microversion (``description`` from 2.19,
``key_name`` from 2.54, ``user_data`` from 2.57 where ``personality`` goes,
``trusted_image_certificates`` from 2.63 refused: Stratus verifies no certificates), and
its answer (the update's shape with ``adminPass``, plus ``key_name`` from 2.54 and
``user_data`` from 2.57; from 2.75 the full server as a show gives it)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from stratus.common.app import Req
from stratus.common.errors import BadRequest
from stratus.compute import views
from stratus.compute.api.servers import (
    _uuid,
    access_ip,
    check_user_data,
    parse_hostname,
    server_view,
)
from stratus.compute.core import ComputeCore
from stratus.compute.server_rebuild import RebuildRequest

BASE_ATTRS = {"imageRef", "name", "adminPass", "metadata", "preserve_ephemeral",
              "OS-DCF:diskConfig", "accessIPv4", "accessIPv6"}


def allowed_attrs(v: tuple[int, int]) -> set[str]:
    """The rebuild attributes Nova's schema allows at microversion ``v``."""
    out = set(BASE_ATTRS)
    if v < (2, 57):
        out.add("personality")
    if v >= (2, 19):
        out.add("description")
    if v >= (2, 54):
        out.add("key_name")
    if v >= (2, 57):
        out.add("user_data")
    if v >= (2, 63):
        out.add("trusted_image_certificates")
    if v >= (2, 90):
        out.add("hostname")
    return out


def parse_rebuild(req: Req, svc: ComputeCore, arg: Any) -> tuple[RebuildRequest, str]:
    """The rebuild request and the admin password to answer with."""
    v = views.mv(req)
    if not isinstance(arg, dict):
        raise BadRequest("Invalid input for rebuild: an object with 'imageRef' is expected.")
    data = dict(arg)
    views.only(data, allowed_attrs(v), "rebuild")
    image = data.get("imageRef")
    if isinstance(image, str) and "/" in image:
        image = image.rstrip("/").rsplit("/", 1)[-1]
    if image is None:
        raise BadRequest("Invalid input: 'imageRef' is a required property.")
    image = _uuid(image, "imageRef")
    if data.get("preserve_ephemeral") is not None \
            and views.boolean(data["preserve_ephemeral"], "preserve_ephemeral"):
        raise BadRequest("preserve_ephemeral is not supported: Stratus servers have no "
                         "ephemeral disk to keep (omit it or give false).")
    if data.get("personality"):
        raise BadRequest("Personality file injection is not supported; give the files in "
                         "user_data (cloud-init) instead.")
    if data.get("trusted_image_certificates") is not None:
        raise BadRequest("Image certificate validation is not supported: Stratus verifies "
                         "no image signatures, so trusted_image_certificates cannot be "
                         "honoured (omit it or give null).")
    changes: dict[str, Any] = {}
    if "name" in data:
        changes["name"] = views.text(data, "name", required=True)
    if "metadata" in data:
        # its metadata_items quota: in the service layer (the server's project's limit)
        changes["metadata"] = views.metadata(data["metadata"], -1)
    for key, family in (("accessIPv4", 4), ("accessIPv6", 6)):
        if key in data:
            changes[key] = access_ip(data, family)
    if "description" in data:
        changes["description"] = None if data["description"] is None else views.text(
            data, "description", maxlen=255, allow_empty=True)
    if "key_name" in data:
        changes["key_name"] = None if data["key_name"] is None else views.text(
            data, "key_name", required=True)
    if "user_data" in data:
        changes["user_data"] = check_user_data(data["user_data"])
    if "hostname" in data:  # 2.90
        changes["hostname"] = parse_hostname(data, v)
    if views.disk_config(data):
        changes["disk_config"] = views.disk_config(data)
    password = ""
    if data.get("adminPass") is not None:
        if not isinstance(data["adminPass"], str):
            raise BadRequest("Invalid input for field/attribute adminPass: a string is "
                             "expected.")
        password = data["adminPass"]
    return RebuildRequest(image, changes, reimage_volume=v >= (2, 93)), password


def rebuild(req: Req, svc: ComputeCore, arg: Any) -> JSONResponse:
    """Rebuild the server (202 with the server as Nova answers a rebuild)."""
    parsed, password = parse_rebuild(req, svc, arg)
    shown = svc.servers.rebuild(req.ctx, req.params["id"], parsed)
    full = server_view(req, shown)
    v = views.mv(req)
    if v >= (2, 75):
        out = {k: x for k, x in full.items() if k != "OS-EXT-SRV-ATTR:user_data"}
    else:
        out = views.basic(full)
        if v >= (2, 54):
            out["key_name"] = shown.server.key_name
    if v >= (2, 57):
        out["user_data"] = shown.server.user_data
    out["adminPass"] = password
    return JSONResponse({"server": out}, status_code=202)
