"""Request validation and JSON shapes of identity resources (Keystone v3 shapes)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from stratus.common.errors import BadRequest
from stratus.identity import models as m

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


def entity(body: Any, key: str) -> dict[str, Any]:
    """The object under ``key`` in a request body, or a 400 saying what is expected."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(f"The request body must be a JSON object with a '{key}' object.")
    return body[key]


def text(
    obj: dict[str, Any],
    key: str,
    *,
    required: bool = False,
    max_len: int = 255,
    allow_empty: bool = False,
    default: str | None = None,
) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise BadRequest(f"'{key}' is a required property.")
        return default
    value = obj[key]
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string, not {type(value).__name__}.")
    if "\x00" in value:
        raise BadRequest(f"'{key}' must not contain NUL characters.")
    value = value.strip() if key == "name" else value
    if not value and not allow_empty:
        raise BadRequest(f"'{key}' must not be empty.")
    if len(value) > max_len:
        raise BadRequest(f"'{key}' is longer than {max_len} characters.")
    return value


def boolean(obj: dict[str, Any], key: str, default: bool | None = None) -> bool | None:
    if key not in obj:
        return default
    value = obj[key]
    if not isinstance(value, bool):
        raise BadRequest(f"'{key}' must be true or false, not {value!r}.")
    return value


def query_bool(raw: str | None, key: str) -> bool | None:
    if raw is None:
        return None
    low = raw.strip().lower()
    if low in ("", "1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise BadRequest(f"Query parameter '{key}' must be true or false, not {raw!r}.")


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


def tags(obj: dict[str, Any]) -> list[str] | None:
    if "tags" not in obj:
        return None
    value = obj["tags"]
    if not isinstance(value, list) or not all(
        isinstance(t, str) and 0 < len(t) <= 255 for t in value
    ):
        raise BadRequest("'tags' must be a list of non-empty strings of at most 255 characters.")
    return list(dict.fromkeys(value))


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


def user(base: str, u: m.User) -> dict[str, Any]:
    out = {
        **(u.extra or {}),
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": None,
        "options": {},
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
        "expires_at": c.expires_at.isoformat() + "Z" if c.expires_at else None,
        "unrestricted": c.unrestricted,
        "access_rules": [],
        "roles": [{"id": r.id, "name": r.name, "domain_id": None} for r in roles],
        "links": {"self": f"{base}/v3/users/{c.user_id}/application_credentials/{c.id}"},
    }
