"""Nova's image proxy (``/v2.1/images`` and ``/v2.1/images/{id}/metadata``): the image
API's images in Nova's shapes, every call made with the caller's token, so the image API
decides what the caller may see, change and delete (an image the caller cannot see is a
404 there and here). Nothing is kept here.

Nova answers these up to microversion 2.35 (the image metadata routes up to 2.38); the
handlers in ``compute/api/images.py`` check the version, this module does the work:
query parameters mapped to the image API's filters, the image API's pages walked, its
errors mapped (404, 403, 409 and 400 kept; anything else a 503 naming the image service),
and metadata changes sent as the smallest JSON patch of custom properties.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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

# The image API's own attributes; every other key of an image is a custom property
# (Nova's ``metadata``).
CORE_ATTRIBUTES = frozenset({
    "id", "name", "status", "visibility", "protected", "os_hidden", "owner", "disk_format",
    "container_format", "min_disk", "min_ram", "size", "virtual_size", "checksum",
    "os_hash_algo", "os_hash_value", "tags", "created_at", "updated_at", "self", "file",
    "schema", "direct_url", "locations", "stores"})
# The image API's status -> Nova's (anything else: UNKNOWN), and the progress shown.
STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "deleted": "DELETED",
          "pending_delete": "DELETED", "killed": "ERROR"}
PROGRESS = {"queued": 25, "saving": 50, "active": 100}
# Nova's cap on one listing (its [api] max_limit).
MAX_LIMIT = 1000
# Query parameters Nova maps onto the image API's filters (``property-<name>`` too).
FILTERS = {"name": "name", "status": "status", "server": "instance_uuid",
           "type": "image_type"}
EXACT_INTS = {"minRam": "min_ram", "minDisk": "min_disk"}
PAGE = 200  # images asked of the image API per call while filtering here


def proxy_error(exc: ServiceError, image_id: str | None = None) -> ApiError:
    """An image API failure as Nova reports it."""
    if exc.status == 404:
        return NotFound("Image not found." if image_id else f"Not found: {exc}")
    if exc.status == 403:
        return Forbidden(f"The image service refused the request: {exc}")
    if exc.status == 409:
        return Conflict(f"The image service refused the request: {exc}")
    if exc.status == 400:
        return BadRequest(f"The image service refused the request: {exc}")
    if exc.status == 413:
        return Forbidden("Image metadata limit exceeded.")
    return ServiceUnavailable(f"The image service failed: {exc}")


def properties(image: Mapping[str, Any]) -> dict[str, Any]:
    """An image's custom properties (Nova's ``metadata``)."""
    return {k: v for k, v in image.items() if k not in CORE_ATTRIBUTES}


def nova_time(value: Any) -> str | None:
    """An image API time as Nova shows it (``YYYY-MM-DDTHH:MM:SSZ``)."""
    if not value:
        return None
    when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _escape(key: str) -> str:
    """A property name as a JSON pointer segment (RFC 6901)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def patch_ops(current: Mapping[str, Any], changes: Mapping[str, str],
              removed: frozenset[str] | set[str] = frozenset()) -> list[dict[str, Any]]:
    """The JSON patch that sets ``changes`` and drops ``removed`` from ``current`` (an
    existing property is replaced, a new one added; unchanged values are not sent)."""
    ops: list[dict[str, Any]] = []
    for key, value in changes.items():
        if key in current and current[key] == value:
            continue
        ops.append({"op": "replace" if key in current else "add", "path": _escape(key),
                    "value": value})
    ops += [{"op": "remove", "path": _escape(k)} for k in sorted(removed) if k in current]
    return ops


@dataclass
class ImageQuery:
    """A listing's filters: those the image API applies, and the exact integers (minRam,
    minDisk) checked here, since the image API would read them as custom properties."""

    glance: dict[str, str]
    exact: dict[str, int]
    limit: int | None
    marker: str | None


def parse_query(query: Mapping[str, str]) -> ImageQuery:
    """Nova's listing parameters (name, status, changes-since, server, type, minRam,
    minDisk, property-*, limit, marker); others are ignored, as Nova does."""
    glance: dict[str, str] = {}
    exact: dict[str, int] = {}
    for key, value in query.items():
        if key in FILTERS:
            glance[FILTERS[key]] = value
        elif key.startswith("property-") and len(key) > len("property-"):
            glance[key[len("property-"):]] = value
        elif key == "changes-since":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise BadRequest(f"Invalid changes-since value {value!r}: an ISO 8601 time "
                                 "is expected.") from None
            glance["updated_at"] = f"gte:{value}"
        elif key in EXACT_INTS:
            try:
                exact[EXACT_INTS[key]] = int(value)
            except ValueError:
                raise BadRequest(f"Invalid {key} value {value!r}: an integer is "
                                 "expected.") from None
    if "instance_uuid" in glance:  # a server's URL (its link) names the server too
        glance["instance_uuid"] = glance["instance_uuid"].rstrip("/").rsplit("/", 1)[-1]
    if "status" in glance:
        glance["status"] = glance["status"].lower()
    limit: int | None = None
    raw = query.get("limit")
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            raise BadRequest(f"limit param must be an integer, not {raw!r}.") from None
        if limit < 0:
            raise BadRequest("limit param must be positive.")
    return ImageQuery(glance, exact, limit, query.get("marker") or None)


class ImageProxy:
    """The proxy's service layer over the image API (``core.downstream``)."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    @property
    def ds(self) -> Any:
        return self.core.downstream

    @property
    def image_url(self) -> str:
        return str(getattr(self.ds, "image_url", "")).rstrip("/")

    def get(self, ctx: AuthContext, image_id: str) -> dict[str, Any]:
        try:
            return dict(self.ds.get_image(ctx.token, image_id))
        except ServiceError as exc:
            raise proxy_error(exc, image_id) from None

    def list(self, ctx: AuthContext, q: ImageQuery) -> tuple[list[dict[str, Any]], bool]:
        """A page of the images the caller sees, in the image API's order (newest first),
        and whether it is full (Nova's sign that a next page may follow)."""
        wanted = MAX_LIMIT if q.limit is None else min(q.limit, MAX_LIMIT)
        out: list[dict[str, Any]] = []
        marker = q.marker
        while len(out) < wanted:
            ask = PAGE if q.exact else wanted - len(out)
            params = {**q.glance, "limit": str(ask)}
            if marker:
                params["marker"] = marker
            try:
                page = self.ds.image_page(ctx.token, params)
            except ServiceError as exc:
                raise proxy_error(exc) from None
            images = list(page.get("images") or [])
            out += [i for i in images
                    if all(int(i.get(k) or 0) == v for k, v in q.exact.items())]
            if not images or not page.get("next"):
                break
            marker = str(images[-1]["id"])
        out = out[:wanted]
        return out, wanted > 0 and len(out) == wanted

    def delete(self, ctx: AuthContext, image_id: str) -> None:
        self.get(ctx, image_id)  # the caller sees it (the delete itself tolerates a 404)
        try:
            self.ds.delete_image(ctx.token, image_id)
        except ServiceError as exc:
            raise proxy_error(exc, image_id) from None

    def metadata(self, ctx: AuthContext, image_id: str) -> dict[str, Any]:
        return properties(self.get(ctx, image_id))

    def change_metadata(self, ctx: AuthContext, image_id: str,
                        change: Callable[[dict[str, Any]], tuple[dict[str, str], set[str]]]
                        ) -> dict[str, Any]:
        """Apply ``change`` (current metadata -> (keys set, keys removed)) within the
        caller's project's metadata_items quota (403 beyond it, as Nova answers); the
        image's metadata afterwards."""
        current = self.metadata(ctx, image_id)
        changes, removed = change(dict(current))
        after = {k: v for k, v in {**current, **changes}.items() if k not in removed}
        limit = self.core.transaction(
            lambda s: self.core.quota_limits(s, ctx.project_id or "")
        )["metadata_items"] if changes else -1  # a removal alone is always allowed
        if 0 <= limit < len(after):
            raise Forbidden(f"Image metadata limit exceeded: at most {limit} items are "
                            "allowed (quota metadata_items).")
        ops = patch_ops(current, changes, removed)
        if not ops:
            return after
        try:
            return properties(self.ds.patch_image(ctx.token, image_id, ops))
        except ServiceError as exc:
            raise proxy_error(exc, image_id) from None
