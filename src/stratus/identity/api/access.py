"""Who may call an identity route: the admin check, "yourself or an admin",
and the domain a new object goes into when the body names none."""

from __future__ import annotations

from stratus.common import policy
from stratus.common.app import Req
from stratus.common.errors import Forbidden


def admin(req: Req, action: str) -> None:
    """401 without a valid token, 403 unless the caller holds ``admin``."""
    policy.enforce(req.ctx, f"identity:{action}", "admin")


def self_or_admin(req: Req, user_id: str, action: str) -> None:
    """Allow the user ``user_id`` themself, or an admin; 403 for anyone else."""
    if not req.ctx.is_admin and req.ctx.user_id != user_id:
        raise Forbidden(
            f"You are not authorized to perform the requested action: identity:{action}."
        )


def default_domain(req: Req) -> str:
    """The caller's domain: its token's domain, project domain, or user domain."""
    ctx = req.ctx
    return ctx.domain_id or ctx.project_domain_id or ctx.user_domain_id or "default"
