"""Identity API: /v3/policies (stored policy documents: an opaque blob and its
media type; admins only, as in Keystone)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.identity import views
from stratus.identity.api.access import admin
from stratus.identity.core import Identity
from stratus.identity.credentials import POLICY_KEYS

routes = Routes()
BLOB_MAX = 65535


def _extra(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in POLICY_KEYS}


@routes.add("POST", "/v3/policies", status=201)
def create_policy(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "create_policy")
    obj = views.entity(req.body, "policy")
    ptype = views.text(obj, "type", required=True) or ""
    blob = views.text(obj, "blob", required=True, max_len=BLOB_MAX) or ""
    policy = svc.policies.create(ptype, blob, _extra(obj))
    return {"policy": views.policy(req.base_url, policy)}


@routes.add("GET", "/v3/policies")
def list_policies(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "list_policies")
    filters = {k: req.query[k] for k in ("type",) if k in req.query}
    items = [views.policy(req.base_url, p) for p in svc.policies.find(filters)]
    return views.collection(req.base_url, "/v3/policies", "policies", items)


@routes.add("GET", "/v3/policies/{policy_id}")
def show_policy(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "get_policy")
    return {"policy": views.policy(req.base_url, svc.policies.show(req.params["policy_id"]))}


@routes.add("PATCH", "/v3/policies/{policy_id}")
def update_policy(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "update_policy")
    obj = views.entity(req.body, "policy")
    changes: dict[str, Any] = {"extra": _extra(obj)}
    if "type" in obj:
        changes["type"] = views.text(obj, "type", required=True)
    if "blob" in obj:
        changes["blob"] = views.text(obj, "blob", required=True, max_len=BLOB_MAX)
    policy = svc.policies.update(req.params["policy_id"], changes)
    return {"policy": views.policy(req.base_url, policy)}


@routes.add("DELETE", "/v3/policies/{policy_id}")
def delete_policy(req: Req, svc: Identity) -> None:
    admin(req, "delete_policy")
    svc.policies.delete(req.params["policy_id"])
