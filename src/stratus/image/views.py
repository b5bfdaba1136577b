"""Request validation and JSON shapes of the image API (Glance v2 shapes).

Custom properties are strings under any name that is not a core attribute, as
in Glance's image schema; they appear at the top level of the image JSON.
"""

from __future__ import annotations

import uuid
from typing import Any

from stratus.common.errors import BadRequest, Forbidden, PayloadTooLarge
from stratus.common.timeutil import isotime
from stratus.common.validation import Dialect, Fields
from stratus.image import models as m

VISIBILITIES = ("public", "private", "shared", "community")
MEMBER_STATUSES = ("pending", "accepted", "rejected")
ALL_DISK_FORMATS = ("raw", "qcow2", "vmdk", "iso")
ALL_CONTAINER_FORMATS = ("bare", "ovf")
MAX_TAGS = 128
MAX_PROPERTIES = 128
MAX_PROPERTY_VALUE = 65535
PATCH_MEDIA_TYPE = "application/openstack-images-v2.1-json-patch"
# Glance accepts both JSON-patch dialects: 2.1 is RFC 6902's form ({"op": "replace",
# "path": "/name"}); 2.0 (deprecated, what Tempest sends) names the operation as the
# member's key ({"replace": "/name"}), as the JSON-patch draft 4 did.
PATCH_MEDIA_TYPE_2_0 = "application/openstack-images-v2.0-json-patch"
PATCH_MEDIA_TYPES = (PATCH_MEDIA_TYPE, PATCH_MEDIA_TYPE_2_0)
PATCH_OPS = ("add", "replace", "remove")

# Attributes the service computes: a client may read them, never set them.
READ_ONLY = frozenset({
    "id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
    "created_at", "updated_at", "file", "self", "schema", "direct_url", "locations",
})
# Names that are neither settable nor usable as custom property names.
RESERVED = frozenset({"location", "deleted", "deleted_at", "properties"})
RESERVED_PREFIX = "os_glance"
# Core attributes a client may set (on create, and with PATCH).
SETTABLE = ("name", "visibility", "protected", "os_hidden", "min_disk", "min_ram", "tags",
            "disk_format", "container_format", "owner")
CORE = READ_ONLY | frozenset(SETTABLE)


def image(img: m.Image, properties: dict[str, str], tags: list[str]) -> dict[str, Any]:
    """An image as Glance shows it: core attributes, then custom properties at the top."""
    return {
        **properties,
        "id": img.id,
        "name": img.name,
        "status": img.status,
        "visibility": img.visibility,
        "protected": img.protected,
        "os_hidden": img.os_hidden,
        "owner": img.owner,
        "disk_format": img.disk_format,
        "container_format": img.container_format,
        "min_disk": img.min_disk,
        "min_ram": img.min_ram,
        "size": img.size,
        "virtual_size": img.virtual_size,
        "checksum": img.checksum,
        "os_hash_algo": img.os_hash_algo,
        "os_hash_value": img.os_hash_value,
        "tags": sorted(tags),
        "created_at": isotime(img.created_at),
        "updated_at": isotime(img.updated_at),
        "self": f"/v2/images/{img.id}",
        "file": f"/v2/images/{img.id}/file",
        "schema": "/v2/schemas/image",
    }


def member(mem: m.ImageMember) -> dict[str, Any]:
    return {
        "image_id": mem.image_id,
        "member_id": mem.member_id,
        "status": mem.status,
        "created_at": isotime(mem.created_at),
        "updated_at": isotime(mem.updated_at),
        "schema": "/v2/schemas/member",
    }


def versions(base: str) -> dict[str, Any]:
    """Version discovery: v2.12 current (it adds ``GET /v2/images/{id}/tasks``), the
    older v2 minor versions supported."""
    link = [{"rel": "self", "href": f"{base}/v2/"}]
    items = [{"id": "v2.12", "status": "CURRENT", "links": link}]
    items += [
        {"id": f"v2.{minor}", "status": "SUPPORTED", "links": link} for minor in range(11, -1, -1)
    ]
    return {"versions": items}


# ---- validation ----------------------------------------------------------------------------


# Glance's wording for the shared request-body reader (stratus.common.validation).
GLANCE = Dialect(
    not_boolean="'{key}' must be true or false, not {value!r}.",
    not_integer="'{key}' must be an integer from 0 to 2147483647, not {value!r}.",
    out_of_range="'{key}' must be an integer from {lo} to {hi}, not {value!r}.",
    not_choice="Invalid value {value!r} for '{key}'; allowed: {allowed}.",
    query_repeated="Query parameter '{key}' may be given only once.",
    query_not_boolean="Query parameter '{key}' must be true or false, not {raw!r}.",
    query_not_integer="Query parameter '{key}' must be an integer, not {raw!r}.",
    query_too_small="Query parameter '{key}' must be at least {minimum}.",
    query_true=("true", "1", "yes"),
    query_false=("false", "0", "no"),
)
FIELDS = Fields(GLANCE)


def choice(value: Any, key: str, allowed: tuple[str, ...] | list[str]) -> str:
    """One of ``allowed``."""
    return FIELDS.choice(value, key, allowed)


def non_negative_int(value: Any, key: str) -> int:
    """A JSON integer from 0 to 2**31 - 1."""
    return FIELDS.number(value, key, 0, 2**31 - 1)


def boolean(value: Any, key: str) -> bool:
    """JSON true or false."""
    return FIELDS.flag(value, key)


def name_value(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 255:
        raise BadRequest("'name' must be a string of at most 255 characters (or null).")
    return value


def tag_value(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 255 or "/" in value:
        raise BadRequest(
            f"Invalid tag {value!r}: a tag is a non-empty string of at most 255 "
            "characters without '/'."
        )
    return value


def tag_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise BadRequest("'tags' must be a list of strings.")
    tags = list(dict.fromkeys(tag_value(t) for t in value))
    if len(tags) > MAX_TAGS:
        raise PayloadTooLarge(f"An image may have at most {MAX_TAGS} tags; {len(tags)} given.")
    return tags


def property_name(key: str) -> str:
    if key in READ_ONLY:
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if key in RESERVED or key.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{key}' is reserved.")
    if not key or len(key) > 255:
        raise BadRequest("A property name must have 1 to 255 characters.")
    return key


def property_value(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest(
            f"Property '{key}' must be a string, not {type(value).__name__} "
            "(custom properties hold strings)."
        )
    if len(value) > MAX_PROPERTY_VALUE or "\x00" in value:
        raise BadRequest(
            f"Property '{key}' must be at most {MAX_PROPERTY_VALUE} characters without NUL."
        )
    return value


def core_value(key: str, value: Any, formats: dict[str, list[str]]) -> Any:
    """Validate one settable core attribute."""
    if key == "name":
        return name_value(value)
    if key == "visibility":
        return choice(value, key, VISIBILITIES)
    if key in ("protected", "os_hidden"):
        return boolean(value, key)
    if key in ("min_disk", "min_ram"):
        return non_negative_int(value, key)
    if key == "tags":
        return tag_list(value)
    if key in ("disk_format", "container_format"):
        if value is None:
            return None
        return choice(value, key, formats[key])
    if key == "owner":
        if not isinstance(value, str) or not value or len(value) > 64:
            raise BadRequest("'owner' must be a project ID (a string of at most 64 characters).")
        return value
    raise AssertionError(key)


def create_body(body: Any, formats: dict[str, list[str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """(core attributes, custom properties) of a POST /v2/images body."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object with the image's attributes.")
    core: dict[str, Any] = {}
    props: dict[str, str] = {}
    for key, value in body.items():
        if key == "id":
            core["id"] = image_id_value(value)
        elif key in SETTABLE:
            core[key] = core_value(key, value, formats)
        else:
            props[property_name(key)] = property_value(key, value)
    if len(props) > MAX_PROPERTIES:
        raise PayloadTooLarge(f"An image may have at most {MAX_PROPERTIES} custom properties.")
    return core, props


def image_id_value(value: Any) -> str:
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise BadRequest(f"'id' must be a UUID, not {value!r}.")


def _patch_op_2_0(item: dict[str, Any]) -> tuple[str, Any]:
    """(op, path) of a 2.0 operation: exactly one member named add, replace or remove."""
    named = [op for op in PATCH_OPS if op in item]
    if len(named) != 1:
        raise BadRequest(
            'Operation objects must contain exactly one member named "add", "remove", or '
            f'"replace" ({PATCH_MEDIA_TYPE_2_0}: {{"replace": "/name", "value": "x"}}).'
        )
    extra = set(item) - {named[0], "value"}
    if extra:
        raise BadRequest(f"Unknown members in a patch operation: {', '.join(sorted(extra))}.")
    return named[0], item[named[0]]


def _patch_op_2_1(item: dict[str, Any]) -> tuple[str, Any]:
    """(op, path) of a 2.1 (RFC 6902) operation."""
    if not isinstance(item.get("op"), str):
        raise BadRequest("Each patch operation must be an object with 'op' and 'path'.")
    op = item["op"]
    if op not in PATCH_OPS:
        raise BadRequest(f"Operation {op!r} is not supported; allowed: add, replace, remove.")
    extra = set(item) - {"op", "path", "value"}
    if extra:
        raise BadRequest(f"Unknown members in a patch operation: {', '.join(sorted(extra))}.")
    return op, item.get("path")


def patch_ops(body: Any, media_type: str = PATCH_MEDIA_TYPE) -> list[tuple[str, str, Any]]:
    """(op, attribute, value) of a JSON-patch document in either media type (2.1 or 2.0)."""
    if not isinstance(body, list):
        example = ('{"replace": "/name", "value": "new-name"}' if media_type == PATCH_MEDIA_TYPE_2_0
                   else '{"op": "replace", "path": "/name", "value": "new-name"}')
        raise BadRequest(f"A {media_type} body is a JSON list of operations like {example}.")
    ops: list[tuple[str, str, Any]] = []
    for item in body:
        if not isinstance(item, dict):
            raise BadRequest("Each patch operation must be a JSON object.")
        op, path = (_patch_op_2_0(item) if media_type == PATCH_MEDIA_TYPE_2_0
                    else _patch_op_2_1(item))
        if not isinstance(path, str) or not path.startswith("/") or path == "/":
            raise BadRequest(f"Invalid path {path!r}: a path is '/<attribute>'.")
        parts = path[1:].split("/")
        if len(parts) != 1:
            raise BadRequest(
                f"Invalid path {path!r}: only top-level attributes can be changed "
                "(replace /tags with the whole list)."
            )
        attr = parts[0].replace("~1", "/").replace("~0", "~")
        if op in ("add", "replace") and "value" not in item:
            raise BadRequest(f"Operation {op!r} on {path!r} needs a 'value'.")
        ops.append((op, attr, item.get("value")))
    return ops
