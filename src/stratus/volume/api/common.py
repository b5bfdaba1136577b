"""What every volume handler shares: the project of the URL, body readers in Cinder's
dialect, and the wait for a storage agent to export an attachment."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.concurrency import run_in_threadpool

from stratus.common.app import Req
from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.volume.core import VolumeCore
from stratus.volume.views import FIELDS, mv

P = "/v3/{project_id}"
EXPORT_POLL = 0.2  # seconds between two looks at an export's state


def scope(req: Req, svc: VolumeCore) -> tuple[AuthContext, str]:
    """The caller and the project of the URL (which must be the token's, unless admin)."""
    ctx = req.ctx
    project_id = req.params["project_id"]
    svc.check_project(ctx, project_id)
    return ctx, project_id


def since(req: Req, version: tuple[int, int]) -> None:
    """A resource that exists from microversion ``version`` on (404 before, as Cinder)."""
    if mv(req) < version:
        raise NotFound("The resource could not be found.")


def metadata(obj: dict[str, Any], key: str = "metadata") -> dict[str, str]:
    """A metadata object: string keys of 1-255 characters, string values up to 255."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value!r}. It is "
                         "not an object of strings.")
    out: dict[str, str] = {}
    for k, v in value.items():
        FIELDS.string(k, f"{key} key", max_len=255)
        if not isinstance(v, str):
            raise BadRequest(f"Invalid input for field/attribute {key}. Value of {k!r} is "
                             f"{v!r}, not a string.")
        FIELDS.string(v, f"{key}.{k}", max_len=255, allow_empty=True)
        out[k] = v
    return out


def connector(obj: dict[str, Any]) -> dict[str, Any]:
    value = obj.get("connector")
    if not isinstance(value, dict):
        raise BadRequest("Invalid input: 'connector' must be an object (initiator, host, "
                         "ip, platform, os_type, multipath).")
    init = value.get("initiator")
    if init is not None and (not isinstance(init, str) or not 0 < len(init) <= 223):
        raise BadRequest("Invalid input: connector 'initiator' must be an iSCSI name "
                         "(a string of 1-223 characters).")
    return {k: v for k, v in value.items() if isinstance(k, str) and len(k) <= 64}


async def wait_export(svc: VolumeCore, attachment_id: str) -> None:
    """Wait until the storage agent reports the attachment's export ready; a failure or
    a timeout puts the attachment back to reserved and answers 409."""
    deadline = time.monotonic() + svc.settings.export_timeout
    while True:
        state, fault = await run_in_threadpool(svc.attachments.export_state, attachment_id)
        if state == "ready":
            return
        if state == "gone":
            raise Conflict(f"Attachment {attachment_id} was deleted while it was exported.")
        if state == "error":
            await run_in_threadpool(svc.attachments.export_failed, attachment_id, False)
            raise Conflict(f"The storage host could not export the volume for attachment "
                           f"{attachment_id}: {fault or 'no reason given'}. The attachment "
                           "is reserved again; retry the update.")
        if time.monotonic() >= deadline:
            await run_in_threadpool(svc.attachments.export_failed, attachment_id, True)
            raise Conflict(f"The storage host did not export the volume for attachment "
                           f"{attachment_id} within {svc.settings.export_timeout:g} s (is "
                           "its storage agent running?). The attachment is reserved again; "
                           "retry the update.")
        await asyncio.sleep(EXPORT_POLL)
