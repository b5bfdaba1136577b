"""Request validation (Keystone's dialect of stratus.common.validation) and JSON shapes
of identity resources (Keystone v3 shapes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from stratus.common.errors import BadRequest
from stratus.common.timeutil import isotime
from stratus.common.validation import Dialect, Fields
from stratus.identity import models as m
from stratus.identity.passwords import MAX_PASSWORD_BYTES
from stratus.identity.security import USER_OPTIONS, password_expires_at

if TYPE_CHECKING:
    from stratus.identity.core import ValidatedToken

INTERFACES = ("public", "internal", "admin")

# Keys a client may not set directly as "extra" attributes.
RESERVED = {
    "id",
    "links",
    "domain_id",
    "name",
    "enabled",
    "description",
    "password",
    "default_project_id",
    "parent_id",
    "is_domain",
    "tags",
    "options",
}


# Keystone's wording and rules for the shared request-body reader.
KEYSTONE = Dialect(
    body="The request body must be a JSON object with a '{key}' object.",
    required="'{key}' is a required property.",
    not_string="'{key}' must be a string, not {type}.",
    nul="'{key}' must not contain NUL characters.",
    blank="'{key}' must not be empty.",
    too_long="'{key}' is longer than {max_len} characters.",
    not_boolean="'{key}' must be true or false, not {value!r}.",
    not_strings="'{key}' must be a list of non-empty strings of at most {max_len} characters.",
    not_choice="{key} {value!r} is not one of {allowed}.",
    strip_keys=frozenset({"name"}),
    query_not_boolean="Query parameter '{key}' must be true or false, not {raw!r}.",
    query_true=("", "1", "true", "yes", "on"),
    query_false=("0", "false", "no", "off"),
)
FIELDS = Fields(KEYSTONE)


def entity(body: Any, key: str) -> dict[str, Any]:
    """The object under ``key`` in a request body, or a 400 saying what is expected."""
    return FIELDS.body(body, key)


def text(
    obj: dict[str, Any],
    key: str,
    *,
    required: bool = False,
    max_len: int = 255,
    allow_empty: bool = False,
    default: str | None = None,
) -> str | None:
    """A string attribute: no NUL, not empty (unless ``allow_empty``), at most
    ``max_len`` characters; a ``name`` is stripped first."""
    value: str | None = FIELDS.text(obj, key, required=required, max_len=max_len,
                                    allow_empty=allow_empty, default=default)
    return value


def boolean(obj: dict[str, Any], key: str, default: bool | None = None) -> bool | None:
    """A JSON true/false attribute (``default`` when absent)."""
    value: bool | None = FIELDS.boolean(obj, key, default)
    return value


def query_bool(raw: str | None, key: str) -> bool | None:
    """A query parameter as a boolean (a bare ``?key`` is true; None when absent)."""
    return FIELDS.query_flag(raw, key)


def password_value(obj: dict[str, Any]) -> str | None:
    """The new password in a user body, None when none is given."""
    if "password" not in obj or obj["password"] is None:
        return None
    pw = obj["password"]
    if not isinstance(pw, str) or not pw:
        raise BadRequest("'password' must be a non-empty string.")
    if len(pw.encode()) > MAX_PASSWORD_BYTES:
        raise BadRequest(f"'password' is longer than {MAX_PASSWORD_BYTES} bytes.")
    return pw


def interface_value(obj: dict[str, Any], required: bool) -> str | None:
    """An endpoint's interface: one of public, internal, admin."""
    value = text(obj, "interface", required=required, max_len=8)
    return None if value is None else FIELDS.choice(value, "interface", INTERFACES)


def url_value(obj: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = text(obj, key, required=required, max_len=2048)
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BadRequest(f"'{key}' {value!r} is not an http(s) URL.")
    return value


def extras(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in RESERVED}


def user_options(obj: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """A user's ``options`` after ``obj`` sets them (a null value unsets one); 400 for
    an option Stratus does not know or a value that is not true/false."""
    given = obj.get("options")
    if given is None:
        return dict(current)
    if not isinstance(given, dict):
        raise BadRequest("'options' must be an object of user options.")
    out = dict(current)
    for name, value in given.items():
        if name not in USER_OPTIONS:
            raise BadRequest(
                f"Invalid user option {name!r}: the options supported are "
                f"{', '.join(USER_OPTIONS)}."
            )
        if value is None:
            out.pop(name, None)
        elif isinstance(value, bool):
            out[name] = value
        else:
            raise BadRequest(f"User option {name!r} must be true, false or null, not {value!r}.")
    return out


def tags(obj: dict[str, Any]) -> list[str] | None:
    """A project's tags: None when absent; repeats dropped (NUL is let through)."""
    return FIELDS.strings(obj, "tags", null=False, unique=True, allow_nul=True)


def collection(base: str, path: str, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: items, "links": {"self": f"{base}{path}", "previous": None, "next": None}}


def domain(base: str, d: m.Domain) -> dict[str, Any]:
    return {
        **(d.extra or {}),
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "enabled": d.enabled,
        "tags": [],
        "options": {},
        "links": {"self": f"{base}/v3/domains/{d.id}"},
    }


def project(base: str, p: m.Project) -> dict[str, Any]:
    return {
        **(p.extra or {}),
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "description": p.description,
        "enabled": p.enabled,
        "parent_id": p.parent_id or p.domain_id,
        "is_domain": False,
        "tags": list(p.tags or []),
        "options": {},
        "links": {"self": f"{base}/v3/projects/{p.id}"},
    }


def _expires(u: m.User, days: int) -> str | None:
    """``password_expires_at`` in Keystone's shape (``2016-11-06T15:32:17.000000``)."""
    expires = password_expires_at(u, days)
    return expires.strftime("%Y-%m-%dT%H:%M:%S.%f") if expires else None


def user(base: str, u: m.User, expires_days: int = 0) -> dict[str, Any]:
    """A user as Keystone shows it; ``expires_days`` is ``[identity] password_expires_days``."""
    out = {
        **(u.extra or {}),
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": _expires(u, expires_days),
        "options": dict((u.extra or {}).get("options") or {}),
        "links": {"self": f"{base}/v3/users/{u.id}"},
    }
    if u.default_project_id:
        out["default_project_id"] = u.default_project_id
    if u.description is not None:
        out["description"] = u.description
    return out


def group(base: str, g: m.Group) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "domain_id": g.domain_id,
        "description": g.description,
        "links": {"self": f"{base}/v3/groups/{g.id}"},
    }


def role(base: str, r: m.Role) -> dict[str, Any]:
    return {
        **(r.extra or {}),
        "id": r.id,
        "name": r.name,
        "domain_id": None if r.domain_id == "<<null>>" else r.domain_id,
        "description": r.description,
        "options": {},
        "links": {"self": f"{base}/v3/roles/{r.id}"},
    }


def region(base: str, r: m.Region) -> dict[str, Any]:
    return {
        "id": r.id,
        "description": r.description,
        "parent_region_id": r.parent_region_id,
        "links": {"self": f"{base}/v3/regions/{r.id}"},
    }


def service(base: str, s: m.Service) -> dict[str, Any]:
    return {
        "id": s.id,
        "type": s.type,
        "name": s.name,
        "description": s.description,
        "enabled": s.enabled,
        "links": {"self": f"{base}/v3/services/{s.id}"},
    }


def endpoint(base: str, e: m.Endpoint) -> dict[str, Any]:
    return {
        "id": e.id,
        "interface": e.interface,
        "region": e.region_id,
        "region_id": e.region_id,
        "service_id": e.service_id,
        "url": e.url,
        "enabled": e.enabled,
        "links": {"self": f"{base}/v3/endpoints/{e.id}"},
    }


def app_credential(base: str, c: m.ApplicationCredential, roles: list[m.Role]) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "description": c.description,
        # Keystone shows an application credential's expiry without a zone suffix.
        "expires_at": c.expires_at.isoformat() if c.expires_at else None,
        "unrestricted": c.unrestricted,
        "access_rules": [],
        "roles": [{"id": r.id, "name": r.name, "domain_id": None} for r in roles],
        "links": {"self": f"{base}/v3/users/{c.user_id}/application_credentials/{c.id}"},
    }


def credential(base: str, c: m.Credential) -> dict[str, Any]:
    return {
        **(c.extra or {}),
        "id": c.id,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "type": c.type,
        "blob": c.blob,
        "links": {"self": f"{base}/v3/credentials/{c.id}"},
    }


def policy(base: str, p: m.Policy) -> dict[str, Any]:
    return {
        **(p.extra or {}),
        "id": p.id,
        "type": p.type,
        "blob": p.blob,
        "links": {"self": f"{base}/v3/policies/{p.id}"},
    }


def trust(base: str, t: m.Trust, roles: list[m.Role]) -> dict[str, Any]:
    path = f"{base}/v3/OS-TRUST/trusts/{t.id}"
    return {
        "id": t.id,
        "trustor_user_id": t.trustor_user_id,
        "trustee_user_id": t.trustee_user_id,
        "project_id": t.project_id,
        "impersonation": t.impersonation,
        "expires_at": isotime(t.expires_at, precise=True),
        "remaining_uses": t.remaining_uses,
        "allow_redelegation": False,
        "redelegation_count": 0,
        "redelegated_trust_id": None,
        "roles": [role(base, r) for r in roles],
        "roles_links": {"self": f"{path}/roles", "previous": None, "next": None},
        "links": {"self": path},
    }


def role_inference(base: str, prior: m.Role, implied: m.Role | list[m.Role]) -> dict[str, Any]:
    """A prior role and the role (or roles) it implies."""

    def short(r: m.Role) -> dict[str, Any]:
        return {"id": r.id, "name": r.name, "links": {"self": f"{base}/v3/roles/{r.id}"}}

    implies = [short(r) for r in implied] if isinstance(implied, list) else short(implied)
    return {"prior_role": short(prior), "implies": implies}


def role_assignment(
    base: str, row: m.Assignment, names: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One /v3/role_assignments entry; ``names`` adds names when include_names was asked."""

    def ident(obj_id: str) -> dict[str, Any]:
        return {"id": obj_id, **names.get(obj_id, {})}

    actor = "user" if row.type.startswith("User") else "group"
    if row.type.endswith("System"):
        return {
            "role": ident(row.role_id),
            actor: ident(row.actor_id),
            "scope": {"system": {"all": True}},
            "links": {
                "assignment": f"{base}/v3/system/{actor}s/{row.actor_id}/roles/{row.role_id}"
            },
        }
    target = "project" if row.type.endswith("Project") else "domain"
    return {
        "role": ident(row.role_id),
        actor: ident(row.actor_id),
        "scope": {target: ident(row.target_id)},
        "links": {
            "assignment": f"{base}/v3/{target}s/{row.target_id}/{actor}s/"
            f"{row.actor_id}/roles/{row.role_id}"
        },
    }


def ref(obj: m.Domain | m.Project | None) -> dict[str, str] | None:
    return {"id": obj.id, "name": obj.name} if obj is not None else None


def token(
    vt: ValidatedToken, catalog: list[dict[str, Any]] | None, expires_days: int = 0
) -> dict[str, Any]:
    """A token as Keystone shows it (``{"token": ...}``); ``catalog`` is left out
    when None (an unscoped token, or ``nocatalog``)."""
    p = vt.payload
    tok: dict[str, Any] = {
        "methods": p.methods,
        "user": {
            "id": vt.user.id,
            "name": vt.user.name,
            "domain": ref(vt.user_domain),
            "password_expires_at": _expires(vt.user, expires_days),
        },
        "audit_ids": p.audit_ids,
        "expires_at": isotime(p.expires_at, precise=True),
        "issued_at": isotime(p.issued_at, precise=True),
    }
    if vt.project is not None:
        tok["project"] = {**(ref(vt.project) or {}), "domain": ref(vt.project_domain)}
        tok["is_domain"] = False
    elif vt.domain is not None:
        tok["domain"] = ref(vt.domain)
    elif p.system:
        tok["system"] = {"all": True}
    if p.project_id or p.domain_id or p.system:
        tok["roles"] = [{"id": r.id, "name": r.name} for r in vt.roles]
        if catalog is not None:
            tok["catalog"] = catalog
    if vt.trust is not None:
        tok["OS-TRUST:trust"] = {
            "id": vt.trust.id,
            "impersonation": vt.trust.impersonation,
            "trustor_user": {"id": vt.trust.trustor_user_id},
            "trustee_user": {"id": vt.trust.trustee_user_id},
        }
    if p.app_cred_id:
        tok["application_credential"] = {"id": p.app_cred_id, "restricted": True}
    return {"token": tok}
