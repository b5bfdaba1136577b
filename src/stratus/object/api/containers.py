"""``/v1/AUTH_<project_id>/<container>``: create, list, HEAD, POST, DELETE."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.object import acl
from stratus.object.api.accounts import list_params
from stratus.object.api.common import (
    account_access,
    account_name,
    container_access,
    container_name,
)
from stratus.object.core import ObjectService
from stratus.object.listings import POLICY
from stratus.object.views import (
    CONTAINER_SYSMETA,
    check_meta_total,
    listing_format,
    meta_headers,
    meta_updates,
    render_listing,
)

routes = Routes()
QUOTA_KEYS = ("meta-quota-bytes", "meta-quota-count")


def container_headers(info: dict[str, Any]) -> dict[str, str]:
    return {"X-Container-Object-Count": str(info["objects"]),
            "X-Container-Bytes-Used": str(info["bytes"]),
            "X-Timestamp": info["created_at"],
            "X-Storage-Policy": info["policy"],
            **meta_headers(info["meta"], "container")}


def container_updates(req: Req) -> dict[str, str | None]:
    """User metadata, ACLs and quotas from the request headers (checked)."""
    updates = meta_updates(req.request.headers, "container")
    for key in QUOTA_KEYS:
        value = updates.get(key)
        if value is not None and not value.isdigit():
            raise BadRequest(f"X-Container-Meta-{key[5:].title()} must be a whole number of "
                             f"{'bytes' if key.endswith('bytes') else 'objects'}.")
    for header in CONTAINER_SYSMETA:
        if header in req.request.headers:
            updates[header] = acl.check_acl_value(header, req.header(header)) or None
        if f"x-remove-{header[2:]}" in req.request.headers:
            updates[header] = None
    return updates


@routes.add(("GET", "HEAD", "PUT", "POST", "DELETE"), "/v1/{account}/{container}")
async def container(req: Req, svc: ObjectService) -> Response:
    account = account_name(req)
    name = container_name(req)
    method = req.request.method
    if method in ("GET", "HEAD"):
        _ctx, info = await container_access(req, svc, account, name, write=False,
                                            listing=True)
        headers = container_headers(info)
        if method == "HEAD":
            return Response(status_code=204, headers={
                **headers, "Content-Type": "text/plain; charset=utf-8"})
        params = list_params(req, svc.settings.listing_limit)
        entries = await run_in_threadpool(svc.listings.list_objects, account, name, params)
        fmt = listing_format(req.query, req.header("accept"))
        return render_listing(entries, fmt, "container", name, headers)
    await account_access(req, account, write=True)
    if method == "DELETE":
        await run_in_threadpool(svc.listings.delete_container, account, name)
        return Response(status_code=204)
    updates = container_updates(req)
    if method == "PUT":
        policy = req.header("x-storage-policy") or POLICY
        if policy != POLICY:
            raise BadRequest(f"Invalid X-Storage-Policy {policy!r}; this cluster has "
                             f"{POLICY} only.")
        check_meta_total({k: v for k, v in updates.items() if v})
        created = await run_in_threadpool(svc.listings.put_container, account, name, updates)
        return Response(status_code=201 if created else 202,
                        headers={"Content-Type": "text/html; charset=UTF-8"})
    current = await run_in_threadpool(svc.listings.container, account, name)
    merged = {**current["meta"], **{k: v for k, v in updates.items() if v}}
    check_meta_total({k: v for k, v in merged.items() if k not in updates or updates[k]})
    await run_in_threadpool(svc.listings.post_container, account, name, updates)
    return Response(status_code=204)
