"""``/v1/AUTH_<project_id>``: the account's container listing, HEAD and POST."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, Forbidden, MethodNotAllowed
from stratus.object.api.bulk import bulk_delete
from stratus.object.api.common import account_access, account_name
from stratus.object.core import ObjectService
from stratus.object.listings import ListParams
from stratus.object.views import (
    listing_format,
    meta_headers,
    meta_updates,
    render_listing,
)

routes = Routes()
QUOTA_KEYS = ("meta-quota-bytes", "meta-quota-count")


def list_params(req: Req, limit_max: int) -> ListParams:
    q = req.query
    raw = q.get("limit")
    limit = limit_max
    if raw is not None:
        if not raw.isdigit():
            raise BadRequest(f"limit must be a whole number from 0 to {limit_max}.")
        limit = int(raw)
        if limit > limit_max:
            raise PreconditionLimit(f"Maximum limit is {limit_max}.")
    delimiter = q.get("delimiter", "")
    if len(delimiter) > 1:
        raise BadRequest("delimiter must be a single character.")
    for key in ("marker", "end_marker", "prefix", "delimiter"):
        if "\x00" in q.get(key, ""):
            raise BadRequest(f"{key} contains a NUL character.")
    return ListParams(limit=limit, marker=q.get("marker", ""), end_marker=q.get("end_marker", ""),
                      prefix=q.get("prefix", ""), delimiter=delimiter,
                      reverse=q.get("reverse", "").lower() in ("1", "true", "yes", "on"))


class PreconditionLimit(BadRequest):
    status = 412
    title = "Precondition Failed"


def account_headers(info: dict[str, Any]) -> dict[str, str]:
    return {"X-Account-Container-Count": str(info["containers"]),
            "X-Account-Object-Count": str(info["objects"]),
            "X-Account-Bytes-Used": str(info["bytes"]),
            "X-Timestamp": info["created_at"],
            "X-Account-Storage-Policy-Policy-0-Container-Count": str(info["containers"]),
            "X-Account-Storage-Policy-Policy-0-Object-Count": str(info["objects"]),
            "X-Account-Storage-Policy-Policy-0-Bytes-Used": str(info["bytes"]),
            **meta_headers(info["meta"], "account")}


@routes.add(("GET", "HEAD", "POST", "PUT", "DELETE"), "/v1/{account}")
async def account(req: Req, svc: ObjectService) -> Response:
    name = account_name(req)
    method = req.request.method
    if method == "PUT" or (method == "DELETE" and "bulk-delete" not in req.query):
        raise MethodNotAllowed("Accounts are made on first use and cannot be deleted here.",
                               headers={"Allow": "GET, HEAD, POST"})
    ctx = await account_access(req, name, write=method in ("POST", "DELETE"))
    if "bulk-delete" in req.query and method in ("POST", "DELETE"):
        return await bulk_delete(req, svc, name)
    if method == "POST":
        updates = meta_updates(req.request.headers, "account")
        if any(k in QUOTA_KEYS for k in updates) and not ctx.is_admin:
            raise Forbidden("Only an admin sets an account's quota.")
        await run_in_threadpool(svc.listings.update_account, name, updates)
        return Response(status_code=204)
    info = await run_in_threadpool(svc.listings.account, name)
    headers = account_headers(info)
    if method == "HEAD":
        return Response(status_code=204, headers={
            **headers, "Content-Type": "text/plain; charset=utf-8"})
    params = list_params(req, svc.settings.listing_limit)
    entries = await run_in_threadpool(svc.listings.list_containers, name, params)
    fmt = listing_format(req.query, req.header("accept"))
    return render_listing(entries, fmt, "account", name, headers)

