"""Key pairs: list, show, import or generate, delete (a user's own; admins may name
another user with ``user_id``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.common.auth import require_project_scope
from stratus.common.errors import BadRequest
from stratus.compute import views
from stratus.compute.core import ComputeCore
from stratus.compute.keypairs import generate, generate_x509

routes = Routes()
CREATE_ATTRS = {"name", "public_key", "type", "user_id", "key_type"}


def key_owner(req: Req, svc: ComputeCore) -> str:
    """The user whose key pairs the request is about (another than the caller: admins)."""
    user = req.query.get("user_id")
    if user and user != req.ctx.user_id:
        svc.require_admin(req.ctx, "os_compute_api:os-keypairs (other users)")
        return str(user)
    return req.ctx.user_id


@routes.add("GET", "/v2.1/os-keypairs")
def list_keypairs(req: Req, svc: ComputeCore) -> dict[str, Any]:
    v = views.mv(req)
    rows = svc.keypairs.of_user(key_owner(req, svc))
    return {"keypairs": [{"keypair": views.keypair(k, v, detail=False)} for k in rows]}


@routes.add("GET", "/v2.1/os-keypairs/{name}")
def show_keypair(req: Req, svc: ComputeCore) -> dict[str, Any]:
    k = svc.keypairs.show(key_owner(req, svc), req.params["name"])
    return {"keypair": views.keypair(k, views.mv(req))}


@routes.add("POST", "/v2.1/os-keypairs")
def create_keypair(req: Req, svc: ComputeCore) -> JSONResponse:
    """Import ``public_key`` (an OpenSSH public key, or for ``type`` x509 a PEM
    certificate), or (below 2.92) generate a pair and answer with its private key once."""
    svc.require_member(req.ctx, "os_compute_api:os-keypairs:create")
    require_project_scope(req.ctx, "os_compute_api:os-keypairs:create")
    data = views.obj(req.body, "keypair")
    v = views.mv(req)
    views.only(data, CREATE_ATTRS, "keypair")
    name = views.text(data, "name", required=True)
    assert name is not None
    signs = "_- @." if v >= (2, 92) else "_- "  # 2.92 allows '@' and '.'
    if not all(c.isalnum() or c in signs for c in name):
        raise BadRequest("Keypair data is invalid: names may contain letters, digits, "
                         + ("'_', '-', ' ', '@' and '.'." if v >= (2, 92) else
                            "'_', '-' and ' ' ('@' and '.' from microversion 2.92)."))
    if v >= (2, 92) and data.get("public_key") is None:  # import only, as Nova from 2.92
        raise BadRequest("Invalid input for field/attribute keypair: 'public_key' is a "
                         "required property (from microversion 2.92 key pairs are imported, "
                         "not generated: make one with ssh-keygen and give its public key).")
    kind = views.text(data, "type", default="ssh")
    if kind not in ("ssh", "x509"):
        raise BadRequest(f"Invalid input for field/attribute type: {kind!r}; use 'ssh' or "
                         "'x509'.")
    if kind == "x509" and v < (2, 2):
        raise BadRequest("Invalid input for field/attribute type: 'x509' key pairs need "
                         "microversion 2.2 or later; below it every key pair is 'ssh'.")
    user = req.ctx.user_id
    if data.get("user_id") and data["user_id"] != user:
        svc.require_admin(req.ctx, "os_compute_api:os-keypairs:create (other users)")
        user = str(data["user_id"])
    private = None
    public = data.get("public_key")
    if public is None and kind == "x509":  # below 2.92: a certificate made here (Nova's)
        private, public = generate_x509(user)
    elif public is None:
        algo = views.text(data, "key_type", default="rsa")
        if algo not in ("rsa", "ed25519"):
            raise BadRequest("Invalid key_type; use rsa or ed25519.")
        private, public = generate(str(algo), name)
    elif not isinstance(public, str):
        raise BadRequest("Keypair data is invalid: public_key must be a string.")
    row = svc.keypairs.create(req.ctx.project_id or "", user, name, kind, public.strip())
    out = views.keypair(row, v, created=True)
    if private is not None:
        out["private_key"] = private
    return JSONResponse({"keypair": out}, status_code=201 if v >= (2, 2) else 200)


@routes.add("DELETE", "/v2.1/os-keypairs/{name}", status=202)
def delete_keypair(req: Req, svc: ComputeCore) -> Response | None:
    svc.require_member(req.ctx, "os_compute_api:os-keypairs:delete")
    svc.keypairs.delete(key_owner(req, svc), req.params["name"])
    return Response(status_code=202) if views.mv(req) < (2, 2) else None
