"""The JSON Schema documents of the image API (``GET /v2/schemas/...``).

Glance publishes a schema for each entity it returns (image, member, task, the
metadata-definition entities) and for each list of them; clients such as the
``openstack`` client and Tempest read them by name. The documents here describe
what Stratus returns: each has the ``name`` Glance gives it (``metadefs/resource_type``
is named ``resource_type_association``), ``properties`` and, for a list, the list
member's key, ``first``/``next`` links and the entity schema nested.
"""

from __future__ import annotations

import copy
from typing import Any

from stratus.image import views

_STR: dict[str, Any] = {"type": "string"}
_NULLABLE_STR: dict[str, Any] = {"type": ["null", "string"]}
_TIME: dict[str, Any] = {"type": "string", "format": "date-time", "readOnly": True}
_ID: dict[str, Any] = {
    "type": "string", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
    "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
}


def _ro(spec: dict[str, Any], text: str) -> dict[str, Any]:
    return {**spec, "readOnly": True, "description": text}


def _described(spec: dict[str, Any], text: str) -> dict[str, Any]:
    return {**spec, "description": text}


def _image() -> dict[str, Any]:
    props: dict[str, Any] = {
        "id": _described(_ID, "The image's identifier (a UUID)."),
        "name": _described({"type": ["null", "string"], "maxLength": 255},
                           "A name for people; not unique."),
        "status": _ro({"type": "string", "enum": [
            "queued", "saving", "active", "killed", "deleted", "deactivated",
            "uploading", "importing", "pending_delete"]}, "Where the image is in its life."),
        "visibility": _described({"type": "string", "enum": list(views.VISIBILITIES)},
                                 "Who may see the image."),
        "protected": _described({"type": "boolean"}, "A protected image cannot be deleted."),
        "os_hidden": _described({"type": "boolean"}, "Hidden images are left out of lists."),
        "owner": _described({"type": ["null", "string"], "maxLength": 255},
                            "The project that owns the image."),
        "disk_format": _described({"type": ["null", "string"],
                                   "enum": [None, *views.ALL_DISK_FORMATS]},
                                  "The format of the disk the data holds."),
        "container_format": _described({"type": ["null", "string"],
                                        "enum": [None, *views.ALL_CONTAINER_FORMATS]},
                                       "The format of the container around the data."),
        "min_disk": _described({"type": "integer"}, "Disk space (GiB) a server needs."),
        "min_ram": _described({"type": "integer"}, "Memory (MiB) a server needs."),
        "size": _ro({"type": ["null", "integer"]}, "The data's size in bytes."),
        "virtual_size": _ro({"type": ["null", "integer"]}, "The disk's size in bytes."),
        "checksum": _ro({"type": ["null", "string"], "maxLength": 32}, "MD5 of the data."),
        "os_hash_algo": _ro({"type": ["null", "string"], "maxLength": 64},
                            "The algorithm of os_hash_value."),
        "os_hash_value": _ro({"type": ["null", "string"], "maxLength": 128},
                             "The secure hash of the data."),
        "tags": _described({"type": "array", "items": {"type": "string", "maxLength": 255}},
                           "Strings attached to the image."),
        "created_at": _TIME,
        "updated_at": _TIME,
        "self": _ro(_STR, "The image's URL."),
        "file": _ro(_STR, "The URL of the image's data."),
        "schema": _ro(_STR, "The URL of this schema."),
        "direct_url": _ro(_STR, "Not shown by this cloud."),
        "locations": _ro({"type": "array"}, "Not shown by this cloud."),
    }
    return {
        "name": "image",
        "properties": props,
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def _member() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "image_id": _described(_ID, "The shared image."),
            "member_id": _described(_STR, "The project the image is shared with."),
            "status": _described({"type": "string", "enum": list(views.MEMBER_STATUSES)},
                                 "The member's answer to the offer."),
            "created_at": _TIME,
            "updated_at": _TIME,
            "schema": _ro(_STR, "The URL of this schema."),
        },
    }


def _task() -> dict[str, Any]:
    return {
        "name": "task",
        "properties": {
            "id": _described(_ID, "The task's identifier."),
            "type": _described({"type": "string", "enum": ["import"]}, "What the task does."),
            "status": _ro({"type": "string", "enum": [
                "pending", "processing", "success", "failure"]}, "Where the task is."),
            "input": _described({"type": "object"}, "What the task works from."),
            "result": _ro({"type": ["null", "object"]}, "What the task made."),
            "owner": _ro(_STR, "The project that made the task."),
            "message": _ro(_STR, "What happened, for people."),
            "expires_at": _ro({"type": ["null", "string"], "format": "date-time"},
                              "When the task record is removed."),
            "created_at": _TIME,
            "updated_at": _TIME,
            "self": _ro(_STR, "The task's URL."),
            "schema": _ro(_STR, "The URL of this schema."),
        },
        "required": ["type", "input"],
    }


def _stamp(props: dict[str, Any]) -> dict[str, Any]:
    return {**props, "created_at": _TIME, "updated_at": _TIME}


_PROPERTY_FIELDS: dict[str, Any] = {
    "name": _described({"type": "string", "maxLength": 255}, "The property's key."),
    "title": _described({"type": "string"}, "A name for people."),
    "description": _described(_STR, "What the property means."),
    "operators": {"type": "array", "items": _STR},
    "type": {"type": "string",
             "enum": ["array", "boolean", "integer", "number", "object", "string", None]},
    "required": {"type": "array", "items": _STR},
    "minimum": {"type": "number"},
    "maximum": {"type": "number"},
    "maxLength": {"type": "integer", "minimum": 0},
    "minLength": {"type": "integer", "minimum": 0},
    "pattern": {"type": "string", "format": "regex"},
    "enum": {"type": "array"},
    "readonly": {"type": "boolean"},
    "default": {},
    "items": {"type": "object"},
    "maxItems": {"type": "integer", "minimum": 0},
    "minItems": {"type": "integer", "minimum": 0},
    "uniqueItems": {"type": "boolean"},
    "additionalItems": {"type": "boolean"},
}


def _metadef_property() -> dict[str, Any]:
    return {"name": "property", "properties": copy.deepcopy(_PROPERTY_FIELDS),
            "required": ["name", "title", "type"]}


def _metadef_object() -> dict[str, Any]:
    return {
        "name": "object",
        "properties": _stamp({
            "name": _described({"type": "string", "maxLength": 255}, "The object's name."),
            "description": _described(_STR, "What the object is for."),
            "required": {"type": "array", "items": _STR},
            "properties": {"type": "object",
                           "additionalProperties": copy.deepcopy(_PROPERTY_FIELDS)},
            "schema": _ro(_STR, "The URL of this schema."),
            "self": _ro(_STR, "The object's URL."),
        }),
        "required": ["name"],
    }


def _metadef_tag() -> dict[str, Any]:
    return {
        "name": "tag",
        "properties": _stamp({
            "name": _described({"type": "string", "maxLength": 255}, "The tag."),
        }),
        "required": ["name"],
    }


def _metadef_resource_type() -> dict[str, Any]:
    return {
        "name": "resource_type_association",
        "properties": _stamp({
            "name": _described({"type": "string", "maxLength": 80},
                               "The resource type, such as OS::Glance::Image."),
            "prefix": _described({"type": "string", "maxLength": 80},
                                 "Prepended to the namespace's property names on this type."),
            "properties_target": _described({"type": "string", "maxLength": 80},
                                            "Where on the resource the properties go."),
        }),
        "required": ["name"],
    }


def _metadef_namespace() -> dict[str, Any]:
    return {
        "name": "namespace",
        "properties": _stamp({
            "namespace": _described({"type": "string", "maxLength": 80},
                                    "The namespace's unique name."),
            "display_name": _described({"type": "string", "maxLength": 80}, "For people."),
            "description": _described({"type": "string", "maxLength": 500}, "For people."),
            "visibility": _described({"type": "string", "enum": ["public", "private"]},
                                     "Public namespaces are readable by every project."),
            "protected": _described({"type": "boolean"},
                                    "A protected namespace cannot be deleted."),
            "owner": _described({"type": "string", "maxLength": 255},
                                "The project that owns the namespace."),
            "resource_type_associations": {"type": "array",
                                           "items": _metadef_resource_type()["properties"]},
            "properties": {"type": "object",
                           "additionalProperties": copy.deepcopy(_PROPERTY_FIELDS)},
            "objects": {"type": "array", "items": _metadef_object()["properties"]},
            "tags": {"type": "array", "items": _metadef_tag()["properties"]},
            "schema": _ro(_STR, "The URL of this schema."),
            "self": _ro(_STR, "The namespace's URL."),
        }),
        "required": ["namespace"],
    }


def _collection(name: str, key: str, entity: dict[str, Any], paged: bool) -> dict[str, Any]:
    props: dict[str, Any] = {key: {"type": "array", "items": entity}, "schema": _STR}
    links = [{"rel": "describedby", "href": "{schema}"}]
    if paged:
        props["first"] = _STR
        props["next"] = _STR
        links = [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                 *links]
    return {"name": name, "properties": props, "links": links}


def _all() -> dict[str, dict[str, Any]]:
    image, member, task = _image(), _member(), _task()
    namespace, obj = _metadef_namespace(), _metadef_object()
    prop, tag, rtype = _metadef_property(), _metadef_tag(), _metadef_resource_type()
    return {
        "image": image,
        "images": _collection("images", "images", image, True),
        "member": member,
        "members": _collection("members", "members", member, False),
        "task": task,
        "tasks": _collection("tasks", "tasks", task, True),
        "metadefs/namespace": namespace,
        "metadefs/namespaces": _collection("namespaces", "namespaces", namespace, True),
        "metadefs/object": obj,
        "metadefs/objects": _collection("objects", "objects", obj, False),
        "metadefs/property": prop,
        "metadefs/properties": {
            "name": "properties",
            "properties": {"properties": {"type": "object", "additionalProperties": prop},
                           "schema": _STR},
            "links": [{"rel": "describedby", "href": "{schema}"}],
        },
        "metadefs/tag": tag,
        "metadefs/tags": _collection("tags", "tags", tag, False),
        "metadefs/resource_type": rtype,
        "metadefs/resource_types": _collection(
            "resource_type_associations", "resource_type_associations", rtype, False),
    }


SCHEMAS: dict[str, dict[str, Any]] = _all()


def schema(name: str) -> dict[str, Any] | None:
    """The schema document called ``name`` (``image``, ``metadefs/tag``...), None if none."""
    found = SCHEMAS.get(name)
    return copy.deepcopy(found) if found is not None else None
