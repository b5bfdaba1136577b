"""Identity API: /v3/users/{user_id}/application_credentials."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, Forbidden
from stratus.common.timeutil import utcnow
from stratus.identity import views
from stratus.identity.api.access import self_or_admin
from stratus.identity.core import Identity

routes = Routes()


def expiry(obj: dict[str, Any]) -> datetime | None:
    """``expires_at`` as naive UTC; 400 when it is not ISO 8601 or is in the past."""
    if not obj.get("expires_at"):
        return None
    try:
        expires = datetime.fromisoformat(str(obj["expires_at"]).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"expires_at {obj['expires_at']!r} is not an ISO 8601 time.") from None
    expires = expires.replace(tzinfo=None)
    if expires <= utcnow(precise=True):
        raise BadRequest("expires_at is in the past.")
    return expires


@routes.add("POST", "/v3/users/{user_id}/application_credentials", status=201)
def create_app_cred(req: Req, svc: Identity) -> dict[str, Any]:
    uid = req.params["user_id"]
    ctx = req.ctx
    if ctx.user_id != uid:
        raise Forbidden("Application credentials can only be created by their own user.")
    if not ctx.project_id:
        raise Forbidden("A project-scoped token is needed to create an application credential.")
    obj = views.entity(req.body, "application_credential")
    name = views.text(obj, "name", required=True)
    secret = views.text(obj, "secret", max_len=4096) or secrets.token_urlsafe(48)
    expires = expiry(obj)
    cred, roles = svc.app_credentials.create(uid, ctx.project_id, name, secret, expires, obj)
    body = views.app_credential(req.base_url, cred, roles)
    body["secret"] = secret
    return {"application_credential": body}


@routes.add("GET", "/v3/users/{user_id}/application_credentials")
def list_app_creds(req: Req, svc: Identity) -> dict[str, Any]:
    uid = req.params["user_id"]
    self_or_admin(req, uid, "list_application_credentials")
    found = svc.app_credentials.find(uid, req.query.get("name"))
    items = [views.app_credential(req.base_url, c, roles) for c, roles in found]
    return views.collection(
        req.base_url,
        f"/v3/users/{uid}/application_credentials",
        "application_credentials",
        items,
    )


@routes.add("GET", "/v3/users/{user_id}/application_credentials/{cred_id}")
def show_app_cred(req: Req, svc: Identity) -> dict[str, Any]:
    uid = req.params["user_id"]
    self_or_admin(req, uid, "get_application_credential")
    cred, roles = svc.app_credentials.show(uid, req.params["cred_id"])
    return {"application_credential": views.app_credential(req.base_url, cred, roles)}


@routes.add("DELETE", "/v3/users/{user_id}/application_credentials/{cred_id}")
def delete_app_cred(req: Req, svc: Identity) -> None:
    uid = req.params["user_id"]
    self_or_admin(req, uid, "get_application_credential")
    svc.app_credentials.delete(uid, req.params["cred_id"])
