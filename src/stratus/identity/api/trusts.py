"""Identity API: /v3/OS-TRUST/trusts (a trustor delegates roles on a project to
a trustee; identity/trusts.py).

Who may do what: only the trustor creates a trust (an admin too may create
only their own); the trustor, the trustee or an admin shows one and lists its
roles; the trustor or an admin deletes it; a listing by a non-admin must name
themself as ``trustor_user_id`` or ``trustee_user_id``."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, Forbidden, NotFound
from stratus.identity import views
from stratus.identity.api.app_credentials import expiry
from stratus.identity.core import Identity
from stratus.identity.trusts import WithRoles

routes = Routes()
BASE = "/v3/OS-TRUST/trusts"


def _denied(action: str, why: str) -> Forbidden:
    return Forbidden(f"You are not authorized to perform the requested action: "
                     f"identity:{action} ({why}).")


def _role_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    roles = obj.get("roles", [])
    if roles is None:
        return []
    if not isinstance(roles, list) or not all(
            isinstance(r, dict) and isinstance(r.get("id") or r.get("name"), str)
            for r in roles):
        raise BadRequest("'roles' must be a list of {'id': ...} or {'name': ...} objects.")
    return roles


def _remaining_uses(obj: dict[str, Any]) -> int | None:
    uses = obj.get("remaining_uses")
    if uses is None:
        return None
    if isinstance(uses, bool) or not isinstance(uses, int) or uses < 1:
        raise BadRequest("'remaining_uses' must be null (unlimited) or a positive integer.")
    return uses


@routes.add("POST", BASE, status=201)
def create_trust(req: Req, svc: Identity) -> dict[str, Any]:
    ctx = req.ctx
    obj = views.entity(req.body, "trust")
    trustor = views.text(obj, "trustor_user_id", required=True, max_len=64) or ""
    trustee = views.text(obj, "trustee_user_id", required=True, max_len=64) or ""
    if trustor != ctx.user_id:
        raise _denied("create_trust", "the authenticated user must be the trustor")
    if ctx.trust_id:
        raise _denied("create_trust", "a trust-scoped token cannot make a trust: "
                      "redelegation is not offered")
    if "impersonation" not in obj:
        raise BadRequest("'impersonation' is a required property.")
    impersonation = bool(views.boolean(obj, "impersonation"))
    if views.boolean(obj, "allow_redelegation", False):
        raise BadRequest("allow_redelegation=true is not supported: trusts cannot be "
                         "redelegated here.")
    project_id = views.text(obj, "project_id", max_len=64)
    trust, roles = svc.trusts.create(trustor, trustee, project_id, impersonation, expiry(obj),
                                     _remaining_uses(obj), _role_specs(obj))
    return {"trust": views.trust(req.base_url, trust, roles)}


@routes.add("GET", BASE)
def list_trusts(req: Req, svc: Identity) -> dict[str, Any]:
    ctx, q = req.ctx, req.query
    trustor, trustee = q.get("trustor_user_id"), q.get("trustee_user_id")
    if not ctx.is_admin and ctx.user_id not in (trustor, trustee):
        raise _denied("list_trusts", "give trustor_user_id or trustee_user_id with your "
                      "own user id")
    items = [views.trust(req.base_url, t, r) for t, r in svc.trusts.find(trustor, trustee)]
    return views.collection(req.base_url, BASE, "trusts", items)


def _visible(req: Req, svc: Identity, action: str) -> WithRoles:
    """The trust in the path, if the caller is its trustor, its trustee or an admin."""
    found = svc.trusts.show(req.params["trust_id"])
    trust = found[0]
    if not req.ctx.is_admin and req.ctx.user_id not in (trust.trustor_user_id,
                                                        trust.trustee_user_id):
        raise _denied(action, "only the trustor, the trustee or an admin may see a trust")
    return found


@routes.add("GET", BASE + "/{trust_id}")
def show_trust(req: Req, svc: Identity) -> dict[str, Any]:
    trust, roles = _visible(req, svc, "get_trust")
    return {"trust": views.trust(req.base_url, trust, roles)}


@routes.add("DELETE", BASE + "/{trust_id}")
def delete_trust(req: Req, svc: Identity) -> None:
    trust, _ = svc.trusts.show(req.params["trust_id"])
    if not req.ctx.is_admin and req.ctx.user_id != trust.trustor_user_id:
        raise _denied("delete_trust", "only the trustor or an admin may delete a trust")
    svc.trusts.delete(trust.id)


@routes.add("GET", BASE + "/{trust_id}/roles")
def list_trust_roles(req: Req, svc: Identity) -> dict[str, Any]:
    trust, roles = _visible(req, svc, "list_roles_for_trust")
    items = [views.role(req.base_url, r) for r in roles]
    return views.collection(req.base_url, f"{BASE}/{trust.id}/roles", "roles", items)


@routes.add("GET", BASE + "/{trust_id}/roles/{role_id}")
def show_trust_role(req: Req, svc: Identity) -> dict[str, Any]:
    trust, roles = _visible(req, svc, "get_role_for_trust")
    role = next((r for r in roles if r.id == req.params["role_id"]), None)
    if role is None:
        raise NotFound(f"Could not find role {req.params['role_id']} in trust {trust.id}.")
    return {"role": views.role(req.base_url, role)}
