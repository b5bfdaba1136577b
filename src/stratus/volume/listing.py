"""Listing volumes, snapshots and attachments as Cinder does: filters (exact match on the
rendered attribute; ``metadata`` as a JSON object whose items must all match), sorting by
``sort=key:dir,...`` or ``sort_key``/``sort_dir`` (default newest first), ``marker``,
``limit`` (at most 1000), ``offset``, ``with_count`` (3.45) and a ``<key>_links`` next link;
``name~=x`` matches a part of the name (3.34), ``created_at``/``updated_at=<op>:<time>`` compare
times (3.60; op gt, gte, lt, lte, eq, neq).
Unknown filters are ignored, as Cinder does for the ones it does not know."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from stratus.common.errors import BadRequest
from stratus.common.listing import ListDialect, Lister, href, sort_value

MAX_LIMIT = 1000
CONTROL = frozenset({"limit", "marker", "offset", "sort", "sort_key", "sort_dir", "with_count",
                     "all_tenants", "fields"})
LISTER = Lister(ListDialect(
    control=CONTROL, max_limit=MAX_LIMIT, default_dir="asc",
    bad_sort_dir="Invalid input received: Unknown sort direction {dir}, must be 'desc' or "
                 "'asc'.",
    marker_missing="Invalid input received: marker [{marker}] not found.",
    limit_not_int="Invalid input received: limit {raw!r} must be an integer.",
    limit_negative="Invalid input received: limit {limit} must be 0 or more."))
ALIASES = {"display_name": "name", "display_description": "description",
           "tenant_id": "os-vol-tenant-attr:tenant_id", "instance_id": "instance",
           "instance_uuid": "instance"}


def sort_pairs(query: Any, known: set[str]) -> list[tuple[str, str]]:
    """[(key, dir)] from ``sort=`` or ``sort_key``/``sort_dir``; 400 on an unknown key."""
    pairs: list[tuple[str, str]] = []
    if query.get("sort"):
        for part in str(query["sort"]).split(","):
            key, _, direction = part.strip().partition(":")
            pairs.append((key.strip(), (direction or "desc").strip().lower()))
    else:
        keys, dirs = query.getlist("sort_key"), query.getlist("sort_dir")
        for n, key in enumerate(keys):
            pairs.append((key, (dirs[n] if n < len(dirs) else "desc").lower()))
    out = []
    for key, direction in pairs:
        key = ALIASES.get(key, key)
        if key not in known:
            raise BadRequest(f"Invalid input received: Invalid sort key {key}.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid input received: Unknown sort direction {direction}, "
                             "must be 'desc' or 'asc'.")
        out.append((key, direction))
    return out


def _metadata_filter(raw: str) -> dict[str, str]:
    try:
        value = json.loads(raw)
    except ValueError:
        try:
            value = json.loads(raw.replace("'", '"'))
        except ValueError:
            raise BadRequest(f"Invalid input received: metadata filter {raw!r} is not a JSON "
                             "object.") from None
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input received: metadata filter {raw!r} is not a JSON "
                         "object.")
    return {str(k): str(v) for k, v in value.items()}


TRUE_WORDS = ("true", "1", "yes", "on", "t", "y")


TIME_OPS = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b, "eq": lambda a, b: a == b, "neq": lambda a, b: a != b}


def _time_filter(value: Any, wanted: str, key: str) -> bool:
    """``created_at=gte:2026-01-01T00:00:00`` (3.60): compare timestamps."""
    op, _, raw = wanted.partition(":")
    if op not in TIME_OPS or not raw:
        raise BadRequest(f"Invalid input received: {key} filter {wanted!r} must be "
                         "<op>:<time>, op one of gt, gte, lt, lte, eq, neq.")
    try:
        when = datetime.fromisoformat(raw.replace("Z", "").replace("z", ""))
    except ValueError:
        raise BadRequest(f"Invalid input received: {key} filter time {raw!r} is not an "
                         "ISO 8601 time.") from None
    if value is None:
        return False
    return bool(TIME_OPS[op](datetime.fromisoformat(str(value)), when.replace(tzinfo=None)))


def _matches(item: dict[str, Any], key: str, wanted: str) -> bool:
    if key.endswith("~"):  # 3.34: a "like" filter (the value anywhere in the attribute)
        value = item.get(key[:-1])
        return value is not None and wanted.lower() in str(value).lower()
    if key in ("created_at", "updated_at"):
        return _time_filter(item.get(key), wanted, key)
    if key == "metadata":
        meta = item.get("metadata") or {}
        return all(meta.get(k) == v for k, v in _metadata_filter(wanted).items())
    value = item.get(key)
    if value is None:
        return wanted in ("", "None", "null")
    if isinstance(value, bool) or key == "bootable":
        truth = str(value).lower() in TRUE_WORDS
        return truth == (wanted.strip().lower() in TRUE_WORDS)
    return str(value) == wanted


def apply(items: list[dict[str, Any]], query: Any, base_url: str, path: str, key: str,
          filterable: set[str], summary: Any = None) -> dict[str, Any]:
    """Filter, sort and page rendered ``items`` (detail views); ``summary(item)`` renders
    the page's items for a summary list."""
    for name in query:
        if name in CONTROL:
            continue
        attr = ALIASES.get(name, name)
        if attr.rstrip("~") not in filterable:
            continue
        wanted = query.get(name)
        items = [i for i in items if _matches(i, attr, wanted)]
    known = set(items[0]) if items else set(filterable) | {"id", "created_at", "name"}
    known |= {"id", "created_at", "updated_at", "name", "status", "size"}
    pairs = sort_pairs(query, known) or [("created_at", "desc")]
    if all(k != "id" for k, _ in pairs):
        pairs.append(("id", "desc"))
    out = list(items)
    for k, direction in reversed(pairs):
        out.sort(key=lambda i: sort_value(i.get(k)), reverse=direction == "desc")
    count = len(out)
    marker = query.get("marker") or None
    if marker:
        out, _ = LISTER.page(out, marker, None)
    offset = query.get("offset")
    if offset:
        try:
            start = int(offset)
        except ValueError:
            raise BadRequest(f"Invalid input received: offset {offset!r} must be an "
                             "integer.") from None
        if start < 0:
            raise BadRequest("Invalid input received: offset must be 0 or more.")
        out = out[start:]
    limit = LISTER.limit(query)
    links = []
    if limit is None:
        more = len(out) > MAX_LIMIT
        out = out[:MAX_LIMIT]
        limit = MAX_LIMIT
    else:
        more = len(out) > limit
        out = out[:limit]
    if more and out:
        links.append({"rel": "next", "href": href(
            f"{base_url}{path}", query, ("marker", "offset"), [("marker", out[-1]["id"])])})
    rendered = [summary(i) for i in out] if summary else out
    body: dict[str, Any] = {key: rendered}
    if links:
        body[f"{key}_links"] = links
    if str(query.get("with_count", "")).lower() in ("true", "1", "yes"):
        body["count"] = count
    return body
