"""Validation and JSON shapes of the metadata definitions (Glance's ``/v2/metadefs``).

A namespace holds four kinds of definitions: property definitions (JSON Schema
fragments: a ``title``, a ``type`` and the keywords below), objects (a name, a
description and property definitions of their own), tags (names) and resource
type associations (which kinds of resource, such as ``OS::Glance::Image``, the
namespace's properties apply to). Every check raises a 400 naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from stratus.common.errors import BadRequest
from stratus.common.timeutil import isotime
from stratus.image import models as m

NAMESPACE_VISIBILITIES = ("public", "private")
PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string")
# The resource types every cloud lists (what Stratus's services make); an association
# may name another type, which is then listed too.
RESOURCE_TYPES = ("OS::Cinder::Volume", "OS::Glance::Image", "OS::Nova::Aggregate",
                  "OS::Nova::Flavor", "OS::Nova::Server")
NAMESPACE_FIELDS = ("namespace", "display_name", "description", "visibility", "protected",
                    "owner")
# What a client may send back unchanged from a namespace it read: ignored on update.
NAMESPACE_IGNORED = ("created_at", "updated_at", "schema", "self",
                     "resource_type_associations", "properties", "objects", "tags")
_STRING_KEYS = ("title", "description", "pattern")
_LIST_KEYS = ("operators", "enum", "required")
_COUNT_KEYS = ("maxLength", "minLength", "maxItems", "minItems")
_NUMBER_KEYS = ("minimum", "maximum")
_BOOL_KEYS = ("readonly", "uniqueItems", "additionalItems")
_ANY_KEYS = ("default", "items")
PROPERTY_KEYS = ("type", *_STRING_KEYS, *_LIST_KEYS, *_COUNT_KEYS, *_NUMBER_KEYS,
                 *_BOOL_KEYS, *_ANY_KEYS)


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"The {what} must be a JSON object.")
    return body


def name_value(value: Any, field: str, limit: int) -> str:
    """A name: a string of 1 to ``limit`` characters without '/' (it is part of URLs)."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "/" in value:
        raise BadRequest(f"'{field}' must be a string of 1 to {limit} characters without "
                         f"'/', not {value!r}.")
    return value


def _optional_str(body: dict[str, Any], field: str, limit: int) -> str | None:
    value = body.get(field)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise BadRequest(f"'{field}' must be a string of at most {limit} characters.")
    return value


def namespace_fields(body: Any, *, creating: bool) -> dict[str, Any]:
    """The namespace attributes of a create or update body (nested definitions aside)."""
    body = _object(body, "namespace")
    allowed = set(NAMESPACE_FIELDS) | set(NAMESPACE_IGNORED)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Attribute {unknown[0]!r} is not a namespace attribute; use "
                         f"{', '.join(NAMESPACE_FIELDS)}.")
    if "namespace" not in body:
        raise BadRequest("'namespace' (the namespace's name) is required.")
    out: dict[str, Any] = {"namespace": name_value(body["namespace"], "namespace", 80)}
    for field, limit in (("display_name", 80), ("description", 500), ("owner", 255)):
        if field in body:
            out[field] = _optional_str(body, field, limit)
    if "visibility" in body or creating:
        visibility = body.get("visibility", "private")
        if visibility not in NAMESPACE_VISIBILITIES:
            raise BadRequest(f"'visibility' must be one of {', '.join(NAMESPACE_VISIBILITIES)}"
                             f", not {visibility!r}.")
        out["visibility"] = visibility
    if "protected" in body or creating:
        protected = body.get("protected", False)
        if not isinstance(protected, bool):
            raise BadRequest(f"'protected' must be true or false, not {protected!r}.")
        out["protected"] = protected
    return out


def property_definition(name: str, body: Any, *, standalone: bool) -> dict[str, Any]:
    """A property definition without its name; ``standalone`` ones need title and type."""
    body = _object(body, f"property {name!r}")
    unknown = sorted(set(body) - set(PROPERTY_KEYS) - {"name"})
    if unknown:
        raise BadRequest(f"Property {name!r}: {unknown[0]!r} is not a property definition "
                         f"keyword; use {', '.join(PROPERTY_KEYS)}.")
    if standalone:
        for field in ("title", "type"):
            if field not in body:
                raise BadRequest(f"Property {name!r}: {field!r} is required.")
    if "type" in body and body["type"] not in PROPERTY_TYPES:
        raise BadRequest(f"Property {name!r}: 'type' must be one of {', '.join(PROPERTY_TYPES)}"
                         f", not {body['type']!r}.")
    checks: list[tuple[tuple[str, ...], Any, str]] = [
        (_STRING_KEYS, lambda v: isinstance(v, str), "a string"),
        (_LIST_KEYS, lambda v: isinstance(v, list), "a list"),
        (_COUNT_KEYS, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
         "a whole number of 0 or more"),
        (_NUMBER_KEYS, lambda v: isinstance(v, int | float) and not isinstance(v, bool),
         "a number"),
        (_BOOL_KEYS, lambda v: isinstance(v, bool), "true or false"),
    ]
    for keys, ok, what in checks:
        for key in keys:
            if key in body and not ok(body[key]):
                raise BadRequest(f"Property {name!r}: {key!r} must be {what}.")
    for key in ("operators", "required"):
        if key in body and not all(isinstance(v, str) for v in body[key]):
            raise BadRequest(f"Property {name!r}: {key!r} must be a list of strings.")
    return {k: v for k, v in body.items() if k != "name"}


def property_request(body: Any, *, name: str | None = None) -> tuple[str, dict[str, Any]]:
    """(name, definition) of a property create (name in the body) or update body."""
    body = _object(body, "property")
    new_name = name_value(body.get("name", name), "name", 255)
    return new_name, property_definition(new_name, body, standalone=True)


def object_request(body: Any) -> tuple[str, dict[str, Any]]:
    """(name, definition) of an object create or update body."""
    body = _object(body, "object")
    allowed = {"name", "description", "required", "properties", "created_at", "updated_at",
               "schema", "self"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Attribute {unknown[0]!r} is not an object attribute; use name, "
                         "description, required, properties.")
    name = name_value(body.get("name"), "name", 255)
    out: dict[str, Any] = {}
    if body.get("description") is not None:
        out["description"] = _optional_str(body, "description", 65535)
    required = body.get("required", [])
    if not isinstance(required, list) or not all(isinstance(v, str) for v in required):
        raise BadRequest("'required' must be a list of property names.")
    out["required"] = required
    props = body.get("properties", {})
    if not isinstance(props, dict):
        raise BadRequest("'properties' must be an object of property definitions by name.")
    out["properties"] = {
        name_value(key, "properties", 255): property_definition(key, value, standalone=False)
        for key, value in props.items()
    }
    return name, out


def association_request(body: Any) -> tuple[str, dict[str, Any]]:
    """(resource type name, {prefix, properties_target}) of an association body."""
    body = _object(body, "resource type association")
    allowed = {"name", "prefix", "properties_target", "created_at", "updated_at"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Attribute {unknown[0]!r} is not a resource type association "
                         "attribute; use name, prefix, properties_target.")
    name = name_value(body.get("name"), "name", 80)
    out = {k: _optional_str(body, k, 80) for k in ("prefix", "properties_target") if k in body}
    return name, {k: v for k, v in out.items() if v is not None}


def tags_request(body: Any) -> list[str]:
    """The tag names of a ``{"tags": [{"name": ...}]}`` body, each once."""
    body = _object(body, "request body")
    tags = body.get("tags")
    if not isinstance(tags, list):
        raise BadRequest("'tags' must be a list of objects with a 'name'.")
    names: list[str] = []
    for tag in tags:
        name = name_value(_object(tag, "tag").get("name"), "name", 255)
        if name in names:
            raise BadRequest(f"Tag {name!r} is given twice.")
        names.append(name)
    return names


def tag_rename(body: Any) -> str:
    return name_value(_object(body, "tag").get("name"), "name", 255)


# ---- shapes --------------------------------------------------------------------------------


def namespace_url(name: str) -> str:
    return f"/v2/metadefs/namespaces/{name}"


def namespace(ns: m.MetadefNamespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "namespace": ns.namespace, "visibility": ns.visibility, "protected": ns.protected,
        "owner": ns.owner, "created_at": isotime(ns.created_at),
        "updated_at": isotime(ns.updated_at), "schema": "/v2/schemas/metadefs/namespace",
        "self": namespace_url(ns.namespace),
    }
    for field in ("display_name", "description"):
        value = getattr(ns, field)
        if value is not None:
            out[field] = value
    return out


def _stamps(item: m.MetadefItem) -> dict[str, Any]:
    return {"created_at": isotime(item.created_at), "updated_at": isotime(item.updated_at)}


def definition(item: m.MetadefItem) -> dict[str, Any]:
    """What is stored in ``item.body``: the JSON definition without the name."""
    stored = json.loads(item.body)
    return stored if isinstance(stored, dict) else {}


def property_(item: m.MetadefItem) -> dict[str, Any]:
    return {"name": item.name, **definition(item)}


def object_(item: m.MetadefItem, ns_name: str) -> dict[str, Any]:
    return {"name": item.name, **definition(item), **_stamps(item),
            "schema": "/v2/schemas/metadefs/object",
            "self": f"{namespace_url(ns_name)}/objects/{item.name}"}


def tag(item: m.MetadefItem) -> dict[str, Any]:
    return {"name": item.name, **_stamps(item)}


def association(item: m.MetadefItem) -> dict[str, Any]:
    return {"name": item.name, **definition(item), **_stamps(item)}
