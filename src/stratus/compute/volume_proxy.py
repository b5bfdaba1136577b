"""Nova's volume proxy APIs (below 2.36): ``os-volumes`` and ``os-snapshots`` over the
volume API, always with the caller's token in the caller's project (the volume API
decides what the caller may see and do; nothing is kept here). Requests are checked as
Nova's schemas check them before the volume API is called; answers are reshaped into
Nova's camelCase views; a volume API failure is answered as Nova answers it, never as a
500 (404 and 403 stay, an over-quota 413 is Nova's 403, an outage 503, another refusal
400)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
)

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

PAGE = 1000  # the volume API's largest page
MAX_LIMIT = 1000  # Nova's [api] max_limit default
POSITIVE = re.compile(r"^[0-9]+$")


class CallerVolumes(Protocol):
    """What the proxies ask of the volume API (compute/downstream.py's HttpVolumes)."""

    def as_caller(self, token: str, method: str, path: str, *, json: Any = None,
                  params: dict[str, Any] | None = None) -> Any: ...


def proxy_error(exc: ServiceError, what: str) -> ApiError:
    if exc.temporary or exc.status is None or exc.status >= 500:
        return ServiceUnavailable(f"The volume API failed: {exc}")
    if exc.status == 404:
        return NotFound(f"{what} could not be found.")
    if exc.status == 403:
        return Forbidden(str(exc))
    if exc.status == 413:
        return Forbidden(f"Quota exceeded: {exc}")
    if exc.status == 409:
        return Conflict(str(exc))
    return BadRequest(str(exc))


def positive_size(value: Any) -> int:
    """A volume's ``size``: a positive integer, or a string of digits (as Nova's schema
    allows); anything else 400 saying so."""
    if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and POSITIVE.match(value))):
        raise BadRequest(f"Invalid input for field/attribute size. Value: {value!r}. "
                         "It must be a positive integer (GiB).")
    size = int(value)
    if size < 1:
        raise BadRequest(f"Invalid input for field/attribute size. Value: {value!r}. "
                         "It must be at least 1 (GiB).")
    return size


def _text(body: dict[str, Any], key: str, maxlen: int = 255) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > maxlen:
        raise BadRequest(f"Invalid input for field/attribute {key}: a string of at most "
                         f"{maxlen} characters is expected.")
    return value


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and 0 < len(k) <= 255 and isinstance(v, str) and len(v) <= 255
            for k, v in value.items()):
        raise BadRequest("Invalid input for field/attribute metadata: an object of string "
                         "keys (1-255 characters) and string values (at most 255) is "
                         "expected.")
    return dict(value)


def page_window(query: Any) -> tuple[int, int]:
    """Nova's ``offset`` and ``limit`` of a listing (integers >= 0; limit at most
    1000, 0 or absent meaning that)."""
    def number(key: str, default: int) -> int:
        raw = query.get(key)
        if raw is None:
            return default
        if not POSITIVE.match(str(raw)):
            raise BadRequest(f"{key} param must be an integer >= 0, not {raw!r}.")
        return int(raw)
    offset = number("offset", 0)
    limit = number("limit", MAX_LIMIT) or MAX_LIMIT
    return offset, min(limit, MAX_LIMIT)


def nova_volume(vol: dict[str, Any]) -> dict[str, Any]:
    """A volume API volume in Nova's os-volumes shape."""
    attached = [a for a in vol.get("attachments") or [] if a.get("server_id")]
    attachments: list[dict[str, Any]] = []
    for a in attached:
        item = {"id": vol["id"], "volumeId": vol["id"], "serverId": a["server_id"]}
        if a.get("device"):
            item["device"] = a["device"]
        attachments.append(item)
    return {
        "id": vol["id"], "status": vol.get("status", ""), "size": vol.get("size", 0),
        "availabilityZone": vol.get("availability_zone") or "",
        "createdAt": vol.get("created_at"),
        # Nova shows one empty object for a volume attached to nothing
        "attachments": attachments or [{}],
        "displayName": vol.get("name"), "displayDescription": vol.get("description"),
        "volumeType": vol.get("volume_type"), "snapshotId": vol.get("snapshot_id"),
        "metadata": dict(vol.get("metadata") or {}),
    }


def nova_snapshot(snap: dict[str, Any]) -> dict[str, Any]:
    """A volume API snapshot in Nova's os-snapshots shape."""
    return {"id": snap["id"], "volumeId": snap.get("volume_id", ""),
            "status": snap.get("status", ""), "size": snap.get("size", 0),
            "createdAt": snap.get("created_at"), "displayName": snap.get("name"),
            "displayDescription": snap.get("description")}


class VolumeProxy:
    """os-volumes and os-snapshots for one request's caller."""

    def __init__(self, core: ComputeCore) -> None:
        volumes = getattr(core.downstream, "volumes", None)
        if volumes is None or not hasattr(volumes, "as_caller"):
            raise ServiceUnavailable("The volume API is not configured for the compute "
                                     "API (no volume endpoint in the catalog and no "
                                     "[compute] volume_url).")
        self.api: CallerVolumes = volumes

    def _call(self, ctx: AuthContext, method: str, path: str, what: str, **kw: Any) -> Any:
        try:
            return self.api.as_caller(ctx.token, method, f"/v3/{ctx.project_id}{path}", **kw)
        except ServiceError as exc:
            raise proxy_error(exc, what) from None

    def _all(self, ctx: AuthContext, kind: str) -> list[dict[str, Any]]:
        """Every ``kind`` (volumes, snapshots) of the caller's project, oldest first, page by
        page."""
        out: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            params: dict[str, Any] = {"limit": PAGE, "sort": "created_at:asc"}
            if marker:
                params["marker"] = marker
            body = self._call(ctx, "GET", f"/{kind}/detail", kind, params=params)
            items = list(body.get(kind) or [])
            out.extend(items)
            if not items or not body.get(f"{kind}_links"):
                return out
            marker = items[-1]["id"]

    # ---- os-volumes -------------------------------------------------------------------
    def list_volumes(self, ctx: AuthContext, query: Any) -> list[dict[str, Any]]:
        offset, limit = page_window(query)
        return [nova_volume(v) for v in self._all(ctx, "volumes")[offset:offset + limit]]

    def show_volume(self, ctx: AuthContext, volume_id: str) -> dict[str, Any]:
        body = self._call(ctx, "GET", f"/volumes/{volume_id}", f"Volume {volume_id}")
        return nova_volume(body["volume"])

    def create_volume(self, ctx: AuthContext, body: dict[str, Any]) -> dict[str, Any]:
        allowed = {"size", "availability_zone", "display_name", "display_description",
                   "volume_type", "metadata", "snapshot_id", "imageRef"}
        extra = set(body) - allowed
        if extra:
            raise BadRequest(f"Invalid input for volume: unexpected {sorted(extra)}; "
                             f"allowed: {', '.join(sorted(allowed))}.")
        wanted: dict[str, Any] = {"metadata": _metadata(body.get("metadata"))}
        if "size" in body:
            wanted["size"] = positive_size(body["size"])
        elif body.get("snapshot_id") is None:  # from a snapshot: the snapshot's size
            raise BadRequest("Invalid input for volume: 'size' is a required property "
                             "(a positive integer of GiB) unless snapshot_id is given.")
        for ours, theirs in (("display_name", "name"), ("display_description", "description"),
                             ("availability_zone", "availability_zone"),
                             ("volume_type", "volume_type"), ("snapshot_id", "snapshot_id"),
                             ("imageRef", "imageRef")):
            value = _text(body, ours)
            if value is not None:
                wanted[theirs] = value
        made = self._call(ctx, "POST", "/volumes", "The volume's source",
                          json={"volume": wanted})
        return nova_volume(made["volume"])

    def delete_volume(self, ctx: AuthContext, volume_id: str) -> None:
        self._call(ctx, "DELETE", f"/volumes/{volume_id}", f"Volume {volume_id}")

    # ---- os-snapshots -----------------------------------------------------------------
    def list_snapshots(self, ctx: AuthContext, query: Any) -> list[dict[str, Any]]:
        offset, limit = page_window(query)
        return [nova_snapshot(s)
                for s in self._all(ctx, "snapshots")[offset:offset + limit]]

    def show_snapshot(self, ctx: AuthContext, snapshot_id: str) -> dict[str, Any]:
        body = self._call(ctx, "GET", f"/snapshots/{snapshot_id}", f"Snapshot {snapshot_id}")
        return nova_snapshot(body["snapshot"])

    def create_snapshot(self, ctx: AuthContext, body: dict[str, Any]) -> dict[str, Any]:
        allowed = {"volume_id", "force", "display_name", "display_description"}
        extra = set(body) - allowed
        if extra:
            raise BadRequest(f"Invalid input for snapshot: unexpected {sorted(extra)}; "
                             f"allowed: {', '.join(sorted(allowed))}.")
        volume_id = _text(body, "volume_id", 36)
        if not volume_id:
            raise BadRequest("Invalid input for snapshot: 'volume_id' is a required "
                             "property.")
        force = body.get("force", False)
        if isinstance(force, str) and force.lower() in ("true", "false", "1", "0", "yes",
                                                         "no", "on", "off"):
            force = force.lower() in ("true", "1", "yes", "on")
        if not isinstance(force, bool):
            raise BadRequest("Invalid input for field/attribute force: a boolean is "
                             "expected.")
        wanted: dict[str, Any] = {"volume_id": volume_id, "force": force}
        for ours, theirs in (("display_name", "name"),
                             ("display_description", "description")):
            value = _text(body, ours)
            if value is not None:
                wanted[theirs] = value
        made = self._call(ctx, "POST", "/snapshots", f"Volume {volume_id}",
                          json={"snapshot": wanted})
        return nova_snapshot(made["snapshot"])

    def delete_snapshot(self, ctx: AuthContext, snapshot_id: str) -> None:
        self._call(ctx, "DELETE", f"/snapshots/{snapshot_id}", f"Snapshot {snapshot_id}")
