"""Identity API: /v3/credentials (a user's stored secrets: ec2, totp, cert...).

Who may do what: an admin (any scope) on every credential; any other user on
their own credentials only (create for themself, list their own, show, update
and delete their own; never hand one to another user)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import Forbidden
from stratus.identity import views
from stratus.identity.core import Identity
from stratus.identity.credentials import CREDENTIAL_KEYS

routes = Routes()
BLOB_MAX = 65535


def _owner_or_admin(req: Req, user_id: str, action: str) -> None:
    if not req.ctx.is_admin and req.ctx.user_id != user_id:
        raise Forbidden(f"You are not authorized to perform the requested action: "
                        f"identity:{action} (a user may act only on their own credentials).")


def _extra(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in CREDENTIAL_KEYS}


@routes.add("POST", "/v3/credentials", status=201)
def create_credential(req: Req, svc: Identity) -> dict[str, Any]:
    obj = views.entity(req.body, "credential")
    user_id = views.text(obj, "user_id", required=True, max_len=64) or ""
    _owner_or_admin(req, user_id, "create_credential")
    ctype = views.text(obj, "type", required=True) or ""
    blob = views.text(obj, "blob", required=True, max_len=BLOB_MAX) or ""
    project_id = views.text(obj, "project_id", max_len=64)
    cred = svc.credentials.create(user_id, project_id, ctype, blob, _extra(obj))
    return {"credential": views.credential(req.base_url, cred)}


@routes.add("GET", "/v3/credentials")
def list_credentials(req: Req, svc: Identity) -> dict[str, Any]:
    filters = {k: req.query[k] for k in ("user_id", "type") if k in req.query}
    if not req.ctx.is_admin:
        if filters.get("user_id", req.ctx.user_id) != req.ctx.user_id:
            filters["user_id"] = ""  # another user's: nothing a non-admin may see
        else:
            filters["user_id"] = req.ctx.user_id
    items = [views.credential(req.base_url, c) for c in svc.credentials.find(filters)]
    return views.collection(req.base_url, "/v3/credentials", "credentials", items)


@routes.add("GET", "/v3/credentials/{credential_id}")
def show_credential(req: Req, svc: Identity) -> dict[str, Any]:
    cred = svc.credentials.show(req.params["credential_id"])
    _owner_or_admin(req, cred.user_id, "get_credential")
    return {"credential": views.credential(req.base_url, cred)}


@routes.add("PATCH", "/v3/credentials/{credential_id}")
def update_credential(req: Req, svc: Identity) -> dict[str, Any]:
    cred_id = req.params["credential_id"]
    _owner_or_admin(req, svc.credentials.show(cred_id).user_id, "update_credential")
    obj = views.entity(req.body, "credential")
    changes: dict[str, Any] = {"extra": _extra(obj)}
    if "user_id" in obj:
        changes["user_id"] = views.text(obj, "user_id", required=True, max_len=64)
        _owner_or_admin(req, changes["user_id"], "update_credential")
    if "project_id" in obj:
        changes["project_id"] = views.text(obj, "project_id", max_len=64)
    if "type" in obj:
        changes["type"] = views.text(obj, "type", required=True)
    if "blob" in obj:
        changes["blob"] = views.text(obj, "blob", required=True, max_len=BLOB_MAX)
    cred = svc.credentials.update(cred_id, changes)
    return {"credential": views.credential(req.base_url, cred)}


@routes.add("DELETE", "/v3/credentials/{credential_id}")
def delete_credential(req: Req, svc: Identity) -> None:
    cred_id = req.params["credential_id"]
    _owner_or_admin(req, svc.credentials.show(cred_id).user_id, "delete_credential")
    svc.credentials.delete(cred_id)
