"""Identity API: /v3/users/{user_id}/credentials/OS-EC2 (EC2 key pairs of a user
on a project). They are ``ec2`` credentials of /v3/credentials, made with a
random access key and secret; their id there is the access key's hash, here the
access key itself. The user themself or an admin may use these routes."""

from __future__ import annotations

import contextlib
import json
import secrets
from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import NotFound
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.api.access import self_or_admin
from stratus.identity.core import Identity
from stratus.identity.credentials import ec2_blob, ec2_id

routes = Routes()
BASE = "/v3/users/{user_id}/credentials/OS-EC2"


def _view(base: str, cred: m.Credential) -> dict[str, Any]:
    blob = ec2_blob(cred)
    return {
        "user_id": cred.user_id,
        "tenant_id": cred.project_id,
        "access": blob.get("access"),
        "secret": blob.get("secret"),
        "trust_id": blob.get("trust_id"),
        "links": {"self": f"{base}/v3/users/{cred.user_id}/credentials/OS-EC2/"
                          f"{blob.get('access')}"},
    }


def _one(req: Req, svc: Identity) -> m.Credential:
    uid, access = req.params["user_id"], req.params["access"]
    self_or_admin(req, uid, "ec2_get_credential")
    cred = None
    with contextlib.suppress(NotFound):
        cred = svc.credentials.show(ec2_id(json.dumps({"access": access})))
    if cred is None or cred.user_id != uid or cred.type != "ec2":
        raise NotFound(f"Could not find credential: {access}.")
    return cred


@routes.add("POST", BASE, status=201)
def create_ec2(req: Req, svc: Identity) -> dict[str, Any]:
    uid = req.params["user_id"]
    self_or_admin(req, uid, "ec2_create_credential")
    body = req.body if isinstance(req.body, dict) else {}
    project_id = views.text(body, "tenant_id", required=True, max_len=64) or ""
    blob = json.dumps({"access": secrets.token_hex(16), "secret": secrets.token_hex(16),
                       "trust_id": None})
    cred = svc.credentials.create(uid, project_id, "ec2", blob, {})
    return {"credential": _view(req.base_url, cred)}


@routes.add("GET", BASE)
def list_ec2(req: Req, svc: Identity) -> dict[str, Any]:
    uid = req.params["user_id"]
    self_or_admin(req, uid, "ec2_list_credentials")
    found = svc.credentials.find({"user_id": uid, "type": "ec2"})
    items = [_view(req.base_url, c) for c in found]
    return views.collection(req.base_url, f"/v3/users/{uid}/credentials/OS-EC2",
                            "credentials", items)


@routes.add("GET", BASE + "/{access}")
def show_ec2(req: Req, svc: Identity) -> dict[str, Any]:
    return {"credential": _view(req.base_url, _one(req, svc))}


@routes.add("DELETE", BASE + "/{access}")
def delete_ec2(req: Req, svc: Identity) -> None:
    svc.credentials.delete(_one(req, svc).id)
