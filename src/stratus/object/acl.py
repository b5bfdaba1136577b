"""Who may do what in an account: the owner's roles and the containers' ACLs.

- A member (or any role but ``reader``) of the project owning ``AUTH_<project_id>``
  reads and writes it; a ``reader`` only reads; ``admin`` reaches every account.
- ``X-Container-Read``: ``.r:*`` (anyone, even without a token, may read objects),
  ``.rlistings`` (and list the container), ``<project>:<user>``, ``<project>:*``,
  ``*:<user>`` and role names; ``X-Container-Write``: the same without ``.r``.
"""

from __future__ import annotations

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Forbidden, Unauthorized

RESELLER_PREFIX = "AUTH_"
READ_ONLY_ROLES = frozenset({"reader"})


def account_of(ctx: AuthContext) -> str:
    return f"{RESELLER_PREFIX}{ctx.project_id}"


def owner_access(ctx: AuthContext | None, account: str) -> str:
    """"write", "read" or "" (none) for the caller on a whole account."""
    if ctx is None:
        return ""
    if ctx.is_admin:
        return "write"
    if ctx.project_id is None or account != account_of(ctx):
        return ""
    if ctx.roles and ctx.roles <= READ_ONLY_ROLES:
        return "read"
    return "write" if ctx.roles else ""


def _parse(acl: str) -> list[str]:
    return [item.strip() for item in acl.split(",") if item.strip()]


def _grants(ctx: AuthContext | None, items: list[str]) -> bool:
    if ctx is None:
        return False
    for item in items:
        if item.startswith("."):
            continue
        if ":" in item:
            project, user = item.split(":", 1)
            if project in ("*", ctx.project_id, ctx.project_name) and \
                    user in ("*", ctx.user_id, ctx.user_name):
                return True
        elif item in ctx.roles:
            return True
    return False


def may_read(ctx: AuthContext | None, read_acl: str, listing: bool) -> bool:
    """Whether the container's read ACL lets the caller read objects (or list)."""
    items = _parse(read_acl)
    referrer = any(i.replace(" ", "") in (".r:*", ".referrer:*") for i in items)
    if referrer and (not listing or ".rlistings" in items):
        return True
    return _grants(ctx, items)


def may_write(ctx: AuthContext | None, write_acl: str) -> bool:
    return _grants(ctx, _parse(write_acl))


def deny(ctx: AuthContext | None) -> Exception:
    """401 to a caller without a token, 403 to one whose token does not grant it."""
    if ctx is None:
        return Unauthorized("This server could not verify that you are authorized to "
                            "access the document you requested.")
    return Forbidden("Access was denied to this resource.")


def check_acl_value(header: str, value: str) -> str:
    """An ACL header's value: comma-separated items without control characters."""
    if any(ord(c) < 32 for c in value):
        raise BadRequest(f"{header} contains a control character.")
    if header.lower() == "x-container-write" and any(
            i.startswith(".r:") for i in _parse(value)):
        raise BadRequest("Referrers are not allowed in X-Container-Write.")
    return ",".join(_parse(value))
