"""What every Swift handler shares: the caller (a token is optional: container ACLs may
let anonymous callers in), the account and container path checks, the access check."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from stratus.common.app import Req
from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, NotFound, Unauthorized
from stratus.object import acl, tempurl
from stratus.object.core import ObjectService
from stratus.object.views import LIMITS, check_name


async def caller(req: Req) -> AuthContext | None:
    """The token's context, None without a token; 401 for a bad token."""
    if not req.header("x-auth-token"):
        return None
    return await run_in_threadpool(lambda: req.ctx)


def account_name(req: Req) -> str:
    account = check_name("account", req.params["account"], LIMITS["max_account_name_length"])
    if not account.startswith(acl.RESELLER_PREFIX):
        raise BadRequest(f"The account {account!r} is not an account of this cluster; "
                         f"accounts are {acl.RESELLER_PREFIX}<project_id>.")
    return account


def container_name(req: Req) -> str:
    return check_name("container", req.params["container"],
                      LIMITS["max_container_name_length"])


def object_name(req: Req) -> str:
    return check_name("object", req.params["object"], LIMITS["max_object_name_length"])


async def container_access(req: Req, svc: ObjectService, account: str, container: str,
                           write: bool, listing: bool = False
                           ) -> tuple[AuthContext | None, dict[str, Any]]:
    """The caller and the container (404 when missing), if the caller may read
    (or write) in it as its owner or through its ACLs; else 401/403."""
    if "temp_url_sig" in req.query and "object" in req.params:
        # a TempURL is judged by its signature alone, with or without a token (Swift's
        # tempurl runs before auth): an expired one is a 401 even for the owner
        return None, await _tempurl(req, svc, account, container)
    ctx = await caller(req)
    level = acl.owner_access(ctx, account)
    if level == "write" or (level == "read" and not write):
        info = await run_in_threadpool(svc.listings.container, account, container, listing)
        return ctx, info
    try:
        info = await run_in_threadpool(svc.listings.container, account, container, listing)
    except NotFound:
        raise acl.deny(ctx) from None
    meta = info["meta"]
    if write and acl.may_write(ctx, meta.get("x-container-write", "")):
        return ctx, info
    if not write and acl.may_read(ctx, meta.get("x-container-read", ""), listing):
        return ctx, info
    raise acl.deny(ctx)


async def account_access(req: Req, account: str, write: bool) -> AuthContext:
    """The caller, if it owns the account (or is an admin): account operations."""
    ctx = await caller(req)
    level = acl.owner_access(ctx, account)
    if ctx is None or not level or (write and level != "write"):
        raise acl.deny(ctx)
    return ctx


def std_headers(ts: str) -> dict[str, str]:
    return {"X-Timestamp": ts}


async def _tempurl(req: Req, svc: ObjectService, account: str, container: str
                   ) -> dict[str, Any]:
    """The container, when the request's TempURL signature is good; else 401."""
    keys: list[str] = []
    acct = await run_in_threadpool(svc.listings.account_meta, account)
    keys += [acct[k] for k in tempurl.KEY_NAMES if acct.get(k)]
    try:
        info = await run_in_threadpool(svc.listings.container, account, container, False)
    except NotFound:
        info = None
    if info is not None:
        keys += [info["meta"][k] for k in tempurl.KEY_NAMES if info["meta"].get(k)]
    method = req.request.method
    why = "TempURL is not allowed for this method." if method not in tempurl.METHODS else \
        tempurl.valid(method, req.request.url.path, req.query.get("temp_url_sig", ""),
                      req.query.get("temp_url_expires", ""), keys,
                      prefix=req.query.get("temp_url_prefix"))
    if why or info is None:
        raise Unauthorized(why or "The temporary URL's signature does not match.")
    return info
