"""Identity API: /v3/auth/tokens — issue (password, token, application
credential), validate, check and revoke tokens."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.common.auth import AUTH_REQUIRED
from stratus.common.errors import Forbidden, NotFound, Unauthorized
from stratus.identity.core import Identity, ValidatedToken
from stratus.identity.tokencache import NotCached

routes = Routes()
log = logging.getLogger(__name__)


def subject(req: Req, svc: Identity, cached_only: bool = False
            ) -> tuple[str, ValidatedToken]:
    """The token named by X-Subject-Token, validated; only an admin may look at
    another user's token. A token that validates itself (the services' check of their
    callers' tokens) is validated once. ``cached_only``: answer from the validation
    cache or raise ``NotCached`` (identity/tokencache.py)."""
    token = req.header("x-subject-token")
    if token and token == req.header("x-auth-token"):
        try:
            validated = svc.validate(token, cached_only=cached_only)
        except NotFound:  # as the caller's token: not authenticated
            raise Unauthorized(AUTH_REQUIRED) from None
        return token, validated
    if cached_only:
        raise NotCached(token)
    caller = req.ctx
    if not token:
        raise NotFound("The X-Subject-Token header is missing.")
    validated = svc.validate(token)
    if not caller.is_admin and validated.user.id != caller.user_id:
        raise Forbidden(
            "You are not authorized to perform the requested action: identity:validate_token."
        )
    return token, validated


async def cached_first(fn: Callable[..., Response], req: Req, svc: Identity) -> Response:
    """``fn(req, svc, cached_only)``: on the event loop when the validation cache can
    answer there (``Identity.validates_on_loop``), else (or when it cannot) in a
    worker thread."""
    if svc.validates_on_loop:
        try:
            return fn(req, svc, True)
        except NotCached:
            pass
    return await run_in_threadpool(fn, req, svc, False)


@routes.add("POST", "/v3/auth/tokens", status=201)
def issue_token(req: Req, svc: Identity) -> Response:
    try:
        token, validated = svc.authenticate(req.body)
    except Unauthorized:
        client = req.request.client
        log.warning(
            "failed authentication from %s for %s",
            client.host if client else "-", who(req.body),
        )
        raise
    include_catalog = "nocatalog" not in req.query
    body = svc.token_body(None, validated, include_catalog)
    return JSONResponse(body, status_code=201, headers={"X-Subject-Token": token})


def who(body: Any) -> str:
    """Whom a token request named (method, user id or name and domain), never a secret."""
    try:
        ident = body["auth"]["identity"]
        method = str(ident["methods"][0])
        user = ident.get(method, {}).get("user", {}) if method == "password" else {}
        if isinstance(user, dict) and (user.get("id") or user.get("name")):
            domain = user.get("domain") or {}
            where = domain.get("id") or domain.get("name") if isinstance(domain, dict) else None
            name = user.get("id") or user.get("name")
            return f"{method} user {str(name)[:255]!r}" + (f" in domain {str(where)[:64]!r}"
                                                          if where else "")
        return f"{method} method"
    except (KeyError, IndexError, TypeError, AttributeError):
        return "a malformed request"


# GET is registered before HEAD, as it always was: Starlette lets a GET route
# answer HEAD too, so a HEAD request is served by validate_token.
@routes.add("GET", "/v3/auth/tokens")
async def validate_token(req: Req, svc: Identity) -> Response:
    return await cached_first(_validation, req, svc)


def _validation(req: Req, svc: Identity, cached_only: bool) -> Response:
    token, validated = subject(req, svc, cached_only)
    body = svc.token_json(validated, "nocatalog" not in req.query, cached_only)
    return Response(body, media_type="application/json", headers={"X-Subject-Token": token})


@routes.add("HEAD", "/v3/auth/tokens")
async def check_token(req: Req, svc: Identity) -> Response:
    return await cached_first(_check, req, svc)


def _check(req: Req, svc: Identity, cached_only: bool) -> Response:
    token, _ = subject(req, svc, cached_only)
    return Response(status_code=200, headers={"X-Subject-Token": token})


@routes.add("DELETE", "/v3/auth/tokens")
def revoke_token(req: Req, svc: Identity) -> None:
    _, validated = subject(req, svc)
    svc.revoke_audit_id(validated.payload.audit_ids[0])


