"""The one policy helper every service uses.

Three roles, each implying the next: ``admin`` > ``member`` > ``reader``.
Admins may do anything anywhere, whatever their token's scope (a project, a
domain or the system: a system-scoped admin token is an admin token for every
service). A system-scoped token with ``reader`` (or ``member``) may read
everything, as Keystone's system readers can. Otherwise a caller needs the role
on the project that owns the resource. Services decide whether a refusal is a 403
(the caller may know the thing exists) or a 404 (it must not learn that).

Overrides (docs/security.md): a service reads an optional ``policy.yaml`` (the
``policy_file`` setting, handed to its workers in ``STRATUS_POLICY_FILE``) mapping
rule names as the OpenStack services name them (``identity:create_user``,
``create_network``, ``os_compute_api:servers:create``, ``volume:create``) to a
check that replaces the built-in decision for that rule: ``@`` (anyone with a
token), ``!`` (nobody), ``role:<name>``, ``is_admin:True``, joined by ``and`` /
``or`` (``and`` binds tighter), each optionally preceded by ``not``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import yaml

from stratus.common.auth import AuthContext
from stratus.common.errors import Forbidden

ROLE_ORDER = ("reader", "member", "admin")
POLICY_ENV = "STRATUS_POLICY_FILE"

Check = Callable[[AuthContext], bool]
_overrides: dict[str, Check] | None = None  # loaded on first use from POLICY_ENV


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
    if not permits(ctx, action, allowed(ctx, role, project_id)):
        raise Forbidden(f"You are not authorized to perform the requested action: {action}.")


# ---- overrides (policy.yaml) ------------------------------------------------------------


def _atom(text: str) -> Check:
    if text.startswith("not "):
        inner = _atom(text[4:].strip())
        return lambda ctx: not inner(ctx)
    if text in ("@", ""):
        return lambda ctx: True
    if text == "!":
        return lambda ctx: False
    if text.lower() in ("is_admin:true", "is_admin:1"):
        return lambda ctx: ctx.is_admin
    if text.startswith("role:") and text[5:].strip():
        role = text[5:].strip()
        if role in ROLE_ORDER:
            return lambda ctx: has_role(ctx, role)
        return lambda ctx: role in ctx.roles
    raise ValueError(
        f"{text!r}: a check is '@', '!', 'role:<name>' or 'is_admin:True' "
        "(optionally after 'not'), joined by 'and' / 'or'"
    )


def compile_check(expr: str) -> Check:
    """A check string (``role:admin or role:member and not role:reader``) as a function."""
    if "(" in expr or ")" in expr:
        raise ValueError(f"{expr!r}: parentheses are not supported; use 'and' / 'or'")
    alternatives = [
        [_atom(part.strip()) for part in alt.split(" and ")] for alt in f" {expr} ".split(" or ")
    ]
    return lambda ctx: any(all(c(ctx) for c in alt) for alt in alternatives)


def parse_overrides(text: str, source: str = "policy.yaml") -> dict[str, Check]:
    """The rules of a policy file (a YAML mapping of rule name to check string);
    ValueError naming the file and the bad rule."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{source} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{source} must be a mapping of rule name to check string")
    rules: dict[str, Check] = {}
    for name, expr in doc.items():
        if not isinstance(name, str) or not isinstance(expr, str):
            raise ValueError(f"{source}: rule {name!r} must map a name to a check string")
        try:
            rules[name] = compile_check(expr.strip())
        except ValueError as exc:
            raise ValueError(f"{source}: rule {name!r}: {exc}") from None
    return rules


def load(path: str) -> dict[str, Check]:
    """Read the policy file at ``path`` (empty or missing: no overrides) and use it."""
    global _overrides
    file = Path(path) if path else None
    if file is None or not file.exists():
        _overrides = {}
    else:
        _overrides = parse_overrides(file.read_text(), str(file))
    return _overrides


def use_file(path: str) -> None:
    """Check ``path`` now (ValueError if bad) and hand it to this process's workers."""
    load(path)
    os.environ[POLICY_ENV] = path


def permits(ctx: AuthContext, action: str, default: bool) -> bool:
    """The override's answer for rule ``action`` when policy.yaml names it, else ``default``."""
    rules = _overrides if _overrides is not None else load(os.environ.get(POLICY_ENV, ""))
    check = rules.get(action)
    return default if check is None else check(ctx)
