"""The volume API's request dialect, microversions, and the JSON shapes of its resources.

Request bodies are read by stratus.common.validation under :data:`CINDER` (Cinder's
wording: sizes may be JSON integers or strings of digits, booleans accept Cinder's
words). Resources render as Cinder's v3 API shows them; timestamps are Cinder's
``2026-01-02T03:04:05.000000`` (naive UTC, microseconds, no zone).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from stratus.common.app import Req
from stratus.common.validation import Dialect, Fields
from stratus.volume import models as m

MIN_VERSION = (3, 0)
MAX_VERSION = (3, 60)
VERSION_RE = re.compile(r"^([1-9][0-9]*)\.([0-9]+)$")
UPDATED = "2026-01-01T00:00:00Z"

CINDER = Dialect(
    body="Missing required element '{key}' in request body.",
    unknown=("Invalid input for field/attribute {kind}. Additional properties are not "
             "allowed ({names} unexpected); allowed: {allowed}."),
    required="Invalid input: '{key}' is a required property.",
    not_string="Invalid input for field/attribute {key}. Value: {value!r}. {value!r} is not "
               "of type 'string'.",
    nul="Invalid input for field/attribute {key}: it must not contain NUL characters.",
    too_long="Invalid input for field/attribute {key}. It is longer than {max_len} "
             "characters ('{head}...').",
    not_boolean="Invalid input for field/attribute {key}. Value: {value!r}. {value!r} is not "
                "a valid boolean (true, false, yes, no, 1, 0, on, off).",
    not_integer="Invalid input for field/attribute {key}. Value: {value!r}. {value!r} is not "
                "a valid integer.",
    out_of_range="Invalid input for field/attribute {key}. Value: {value}. It must be between "
                 "{lo} and {hi}.",
    not_id="Invalid input for field/attribute {key}. Value: {value!r}. It is not a valid ID.",
    not_choice="Invalid input for field/attribute {key}. Value: {value!r}. It is not one of "
               "{allowed}.",
    query_repeated="Invalid filter: '{key}' is given more than once.",
    query_not_boolean="Invalid value '{raw}' for {key}: use true or false.",
    query_not_integer="Invalid value '{raw}' for {key}: it must be an integer.",
    query_too_small="Invalid value '{raw}' for {key}: it must be {minimum} or more.",
    true_words=("true", "1", "yes", "on", "y", "t"),
    false_words=("false", "0", "no", "off", "n", "f"),
    int_rule="digits",
    query_true=("true", "1", "yes", "on", "y", "t"),
    query_false=("false", "0", "no", "off", "n", "f"),
)
"""Cinder's wording and rules for request bodies (stratus.common.validation)."""
FIELDS = Fields(CINDER)
MAX_SIZE = 2**31 - 1


def version_text(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def mv(req: Req) -> tuple[int, int]:
    """The microversion the middleware negotiated for this request."""
    value = req.request.scope.get("state", {}).get("microversion", MIN_VERSION)
    return (int(value[0]), int(value[1]))


def ts(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def version_doc(base_url: str) -> dict[str, Any]:
    """The v3 entry of version discovery."""
    return {
        "id": "v3.0", "status": "CURRENT", "updated": UPDATED,
        "version": version_text(MAX_VERSION), "min_version": version_text(MIN_VERSION),
        "links": [{"rel": "self", "href": f"{base_url}/v3/"},
                  {"rel": "describedby", "type": "text/html",
                   "href": "https://docs.openstack.org/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.volume+json;version=3"}],
    }


def links(base_url: str, project_id: str, kind: str, obj_id: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base_url}/v3/{project_id}/{kind}/{obj_id}"},
            {"rel": "bookmark", "href": f"{base_url}/{project_id}/{kind}/{obj_id}"}]


def legacy_attachment(att: m.Attachment) -> dict[str, Any]:
    """An attachment as a volume's ``attachments`` list shows it."""
    return {"id": att.volume_id, "attachment_id": att.id, "volume_id": att.volume_id,
            "server_id": att.instance_uuid, "host_name": att.host_name,
            "device": att.mountpoint, "attached_at": ts(att.attached_at)}


# What Cinder's show/list add to a volume and its create/update answers do not carry.
READ_ONLY_KEYS = ("os-vol-tenant-attr:tenant_id", "os-vol-host-attr:host",
                  "os-vol-mig-status-attr:migstat", "os-vol-mig-status-attr:name_id",
                  "volume_image_metadata")


def written(doc: dict[str, Any]) -> dict[str, Any]:
    """A volume as a create or update answers it (without the show-only attributes)."""
    return {k: v for k, v in doc.items() if k not in READ_ONLY_KEYS}


def volume(req: Req, vol: m.Volume, type_name: str, attachments: list[m.Attachment],
           backend: str = "stratus", detail: bool = True) -> dict[str, Any]:
    """A volume as Cinder shows it (``detail``: every field; else id, name, links)."""
    base = {"id": vol.id, "name": vol.name,
            "links": links(req.base_url, vol.project_id, "volumes", vol.id)}
    if not detail:
        return base
    ver = mv(req)
    attached = [a for a in attachments if a.attach_status == "attached"]
    out: dict[str, Any] = {
        **base,
        "status": vol.status, "size": vol.size, "availability_zone": vol.availability_zone,
        "created_at": ts(vol.created_at), "updated_at": ts(vol.updated_at),
        "description": vol.description,
        "attachments": [legacy_attachment(a) for a in attached],
        "bootable": "true" if vol.bootable else "false", "encrypted": False,
        "multiattach": vol.multiattach, "volume_type": type_name,
        "snapshot_id": vol.source_id if vol.source_kind == "snapshot" else None,
        "source_volid": vol.source_id if vol.source_kind == "volume" else None,
        "metadata": dict(vol.metadata_ or {}), "user_id": vol.user_id,
        "replication_status": None, "consistencygroup_id": None,
        "os-vol-tenant-attr:tenant_id": vol.project_id,
    }
    if vol.image_metadata is not None:
        out["volume_image_metadata"] = dict(vol.image_metadata)
    if ver >= (3, 13):
        out["group_id"] = None
    if ver >= (3, 48):
        out["shared_targets"] = False
    if req.ctx.is_admin:
        out["os-vol-host-attr:host"] = host_attr(vol, backend)
        out["os-vol-mig-status-attr:migstat"] = None
        out["os-vol-mig-status-attr:name_id"] = None
        if ver >= (3, 21):
            out["provider_id"] = None
        if ver >= (3, 48):
            out["service_uuid"] = None
    return out


def host_attr(vol: m.Volume, backend: str) -> str | None:
    """``host@backend#pool`` as Cinder spells a volume's host (admins only)."""
    return f"{vol.host}@{backend}#{backend}" if vol.host else None


def snapshot(req: Req, snap: m.Snapshot) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": snap.id, "name": snap.name, "description": snap.description,
        "status": snap.status, "size": snap.size, "volume_id": snap.volume_id,
        "created_at": ts(snap.created_at), "updated_at": ts(snap.updated_at),
        "metadata": dict(snap.metadata_ or {}),
        "os-extended-snapshot-attributes:progress": "100%" if snap.status == "available"
        else "0%",
        "os-extended-snapshot-attributes:project_id": snap.project_id,
    }
    if mv(req) >= (3, 14):
        out["group_snapshot_id"] = None
    if mv(req) >= (3, 41):
        out["user_id"] = snap.user_id
    return out


def attachment(att: m.Attachment, connection_info: dict[str, Any] | None,
               detail: bool = True) -> dict[str, Any]:
    """An attachment of the attachments API (3.27+)."""
    out: dict[str, Any] = {"id": att.id, "status": att.attach_status,
                           "instance": att.instance_uuid, "volume_id": att.volume_id}
    if detail:
        out.update({"attached_at": ts(att.attached_at), "detached_at": None,
                    "attach_mode": att.attach_mode, "connection_info": connection_info})
    return out


def volume_type(vt: m.VolumeType, is_admin: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": vt.id, "name": vt.name, "description": vt.description,
                           "is_public": vt.is_public,
                           "os-volume-type-access:is_public": vt.is_public,
                           "qos_specs_id": None}
    if is_admin:
        out["extra_specs"] = dict(vt.extra_specs or {})
    return out
