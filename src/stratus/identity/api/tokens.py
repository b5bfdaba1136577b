"""Identity API: /v3/auth/tokens — issue (password, token, application
credential), validate, check and revoke tokens."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.common.errors import Forbidden, NotFound
from stratus.identity.core import Identity, ValidatedToken

routes = Routes()


def subject(req: Req, svc: Identity) -> tuple[str, ValidatedToken]:
    """The token named by X-Subject-Token, validated; only an admin may look at
    another user's token."""
    caller = req.ctx
    token = req.header("x-subject-token")
    if not token:
        raise NotFound("The X-Subject-Token header is missing.")
    validated = svc.validate(token)
    if not caller.is_admin and validated.user.id != caller.user_id:
        raise Forbidden(
            "You are not authorized to perform the requested action: identity:validate_token."
        )
    return token, validated


@routes.add("POST", "/v3/auth/tokens", status=201)
def issue_token(req: Req, svc: Identity) -> Response:
    token, validated = svc.authenticate(req.body)
    include_catalog = "nocatalog" not in req.query
    body = svc.token_body(None, validated, include_catalog)
    return JSONResponse(body, status_code=201, headers={"X-Subject-Token": token})


# GET is registered before HEAD, as it always was: Starlette lets a GET route
# answer HEAD too, so a HEAD request is served by validate_token.
@routes.add("GET", "/v3/auth/tokens")
def validate_token(req: Req, svc: Identity) -> Response:
    token, validated = subject(req, svc)
    body = svc.token_body(None, validated, "nocatalog" not in req.query)
    return JSONResponse(body, headers={"X-Subject-Token": token})


@routes.add("HEAD", "/v3/auth/tokens")
def check_token(req: Req, svc: Identity) -> Response:
    token, _ = subject(req, svc)
    return Response(status_code=200, headers={"X-Subject-Token": token})


@routes.add("DELETE", "/v3/auth/tokens")
def revoke_token(req: Req, svc: Identity) -> None:
    _, validated = subject(req, svc)
    svc.revoke_audit_id(validated.payload.audit_ids[0])


