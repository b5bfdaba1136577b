"""The one policy helper every service uses.

Three roles, each implying the next: ``admin`` > ``member`` > ``reader``.
Admins may do anything anywhere, whatever their token's scope (a project, a
domain or the system: a system-scoped admin token is an admin token for every
service). A system-scoped token with ``reader`` (or ``member``) may read
everything, as Keystone's system readers can. Otherwise a caller needs the role
on the project that owns the resource. Services decide whether a refusal is a 403
(the caller may know the thing exists) or a 404 (it must not learn that).
"""

from __future__ import annotations

from stratus.common.auth import AuthContext
from stratus.common.errors import Forbidden

ROLE_ORDER = ("reader", "member", "admin")


def has_role(ctx: AuthContext, role: str) -> bool:
    """True when the caller holds ``role`` or a role that implies it."""
    if role not in ROLE_ORDER:
        raise ValueError(f"unknown role {role!r}; use one of {ROLE_ORDER}")
    wanted = ROLE_ORDER.index(role)
    return any(r in ctx.roles for r in ROLE_ORDER[wanted:])


def allowed(ctx: AuthContext, role: str = "reader", project_id: str | None = None) -> bool:
    """May the caller act with ``role`` on a resource owned by ``project_id``?

    ``project_id=None`` means a resource not owned by any project: then only
    admins pass unless ``role`` is satisfied by the caller's own scope.
    """
    if ctx.is_admin:
        return True
    if ctx.system and role == "reader" and has_role(ctx, "reader"):
        return True
    if project_id is None:
        return role != "admin" and has_role(ctx, role)
    return ctx.project_id == project_id and has_role(ctx, role)


def enforce(
    ctx: AuthContext, action: str, role: str = "reader", project_id: str | None = None
) -> None:
    """Raise 403 naming the action when ``allowed`` says no."""
    if not allowed(ctx, role, project_id):
        raise Forbidden(f"You are not authorized to perform the requested action: {action}.")
