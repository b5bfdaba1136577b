"""Bulk delete: ``POST /v1/AUTH_<project_id>?bulk-delete`` (or DELETE) with a
``text/plain`` body of URL-encoded ``/<container>[/<object>]`` lines, at most
:data:`MAX_DELETES`; objects are deleted before the containers named in the same request.
The answer is Swift's summary (JSON when asked by ``Accept``, else plain text)."""

from __future__ import annotations

import json
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stratus.common.app import Req
from stratus.common.errors import ApiError, BadRequest, PayloadTooLarge
from stratus.object.core import ObjectService
from stratus.object.views import LIMITS, check_name

MAX_DELETES = 10000
MAX_BODY = MAX_DELETES * (LIMITS["max_container_name_length"] + 1
                          + LIMITS["max_object_name_length"] * 3)


async def bulk_delete(req: Req, svc: ObjectService, account: str) -> Response:
    raw = b""
    async for chunk in req.request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise PayloadTooLarge("The bulk delete body is too large.")
    lines = [line.strip() for line in raw.decode("utf-8", "replace").splitlines()
             if line.strip()]
    if len(lines) > MAX_DELETES:
        raise PayloadTooLarge(f"Maximum bulk deletes per request is {MAX_DELETES}.")
    targets: list[tuple[str, str]] = []
    for line in lines:
        path = unquote(line).lstrip("/")
        cont, _, obj = path.partition("/")
        try:
            check_name("container", cont, LIMITS["max_container_name_length"])
            if obj:
                check_name("object", obj, LIMITS["max_object_name_length"])
        except BadRequest as exc:
            raise BadRequest(f"Bulk delete line {line!r}: {exc.message}") from None
        targets.append((cont, obj))
    deleted, missing, errors = 0, 0, []
    for cont, obj in sorted(targets, key=lambda t: not t[1]):  # objects first
        try:
            if obj:
                await run_in_threadpool(svc.delete, account, cont, obj)
            else:
                await run_in_threadpool(svc.listings.delete_container, account, cont)
            deleted += 1
        except ApiError as exc:
            if exc.status == 404:
                missing += 1
            else:
                errors.append([f"/{cont}/{obj}" if obj else f"/{cont}",
                               f"{exc.status} {exc.title}"])
    status = "400 Bad Request" if errors else "200 OK"
    result = {"Number Deleted": deleted, "Number Not Found": missing, "Errors": errors,
              "Response Status": status, "Response Body": ""}
    if "application/json" in req.header("accept"):
        return Response(json.dumps(result), media_type="application/json")
    text = "".join(f"{k}: {v}\n" for k, v in result.items())
    return Response(text, media_type="text/plain")
