"""GET /v2/images: visibility rules, filters, sorting and marker/limit pagination.

Query parameters are read by stratus.common.validation under Glance's dialect
(``views.FIELDS``: once-only, integers, booleans); the page size and the next link by
stratus.common.listing (:data:`LISTS`).

Pagination is keyset-based: the marker image's values of the sort keys (plus
its id as the last tie-breaker) start the next page, so pages stay stable
while images are added. A ``next`` link is given only when more images follow.
Query parameters that are not known filters match custom properties exactly
(``?os_distro=debian``), as in Glance.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest
from stratus.common.listing import ListDialect, Lister, href
from stratus.image import models as m
from stratus.image import views
from stratus.image.core import ImageService

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
I = m.Image  # noqa: E741 - short alias for the column expressions below

SORT_KEYS: dict[str, Any] = {
    "name": sa.func.coalesce(I.name, ""),
    "status": I.status,
    "visibility": I.visibility,
    "owner": sa.func.coalesce(I.owner, ""),
    "disk_format": sa.func.coalesce(I.disk_format, ""),
    "container_format": sa.func.coalesce(I.container_format, ""),
    "size": sa.func.coalesce(I.size, -1),
    "virtual_size": sa.func.coalesce(I.virtual_size, -1),
    "min_disk": I.min_disk,
    "min_ram": I.min_ram,
    "created_at": I.created_at,
    "updated_at": I.updated_at,
    "id": I.id,
}
EXACT_FILTERS = {
    "id": I.id,
    "name": I.name,
    "status": I.status,
    "owner": I.owner,
    "disk_format": I.disk_format,
    "container_format": I.container_format,
}
CONTROL = {"limit", "marker", "sort", "sort_key", "sort_dir", "visibility", "member_status",
           "os_hidden", "tag", "protected", "size_min", "size_max", "created_at",
           "updated_at"}
# The shared listing pieces, in Glance's words: the page size and the next link.
LISTS = Lister(ListDialect(
    max_limit=MAX_LIMIT, default_limit=DEFAULT_LIMIT,
    limit_not_int="Query parameter 'limit' must be an integer, not {raw!r}.",
    limit_negative="Query parameter 'limit' must be at least 0."))
TIME_OPS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__", "eq": "__eq__",
            "neq": "__ne__"}


def parse_sort(query: Any) -> list[tuple[str, str]]:
    """[(key, asc|desc)] from ``sort=k:dir,...`` or ``sort_key``/``sort_dir`` pairs."""
    combined = views.FIELDS.query_one(query, "sort")
    keys, dirs = query.getlist("sort_key"), query.getlist("sort_dir")
    if combined is not None and (keys or dirs):
        raise BadRequest("Use either 'sort' or 'sort_key'/'sort_dir', not both.")
    pairs: list[tuple[str, str]] = []
    if combined is not None:
        for part in combined.split(","):
            key, _, direction = part.strip().partition(":")
            pairs.append((key.strip(), direction.strip() or "desc"))
    else:
        if len(dirs) > len(keys) and keys:
            raise BadRequest("There are more sort_dir than sort_key parameters.")
        for i, key in enumerate(keys):
            direction = dirs[i] if i < len(dirs) else (dirs[0] if len(dirs) == 1 else "desc")
            pairs.append((key, direction))
        if not keys and dirs:
            pairs.append(("created_at", dirs[0]))
    if not pairs:
        pairs = [("created_at", "desc")]
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(
                f"Invalid sort key {key!r}; allowed: {', '.join(sorted(SORT_KEYS))}."
            )
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction {direction!r}; allowed: asc, desc.")
    if pairs[-1][0] != "id":
        pairs.append(("id", pairs[-1][1]))
    return pairs


def _membership(project_id: str | None, member_status: str) -> ColumnElement[bool]:
    q = sa.select(m.ImageMember.image_id).where(
        m.ImageMember.image_id == I.id, m.ImageMember.member_id == (project_id or "")
    )
    if member_status != "all":
        q = q.where(m.ImageMember.status == member_status)
    return sa.and_(I.visibility == "shared", sa.exists(q))


def visibility_filter(
    ctx: AuthContext, visibility: str | None, member_status: str
) -> ColumnElement[bool] | None:
    """Which images the caller lists (the caller's rights, then the visibility asked for)."""
    own = I.owner == ctx.project_id if ctx.project_id else sa.false()
    shared = _membership(ctx.project_id, member_status)
    if visibility is None:
        return None if ctx.is_admin else sa.or_(I.visibility == "public", own, shared)
    if visibility == "all":
        if ctx.is_admin:
            return None
        return sa.or_(I.visibility.in_(("public", "community")), own, shared)
    if visibility in ("public", "community"):
        return I.visibility == visibility
    mine: ColumnElement[bool] = sa.true() if ctx.is_admin else own
    if visibility == "private":
        return sa.and_(I.visibility == "private", mine)
    return sa.and_(I.visibility == "shared", sa.or_(mine, shared))


def _filters(query: Any) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    for key, column in EXACT_FILTERS.items():
        raw = views.FIELDS.query_one(query, key)
        if raw is None:
            continue
        if raw.startswith("in:"):
            where.append(column.in_([v.strip() for v in raw[3:].split(",") if v.strip()]))
        else:
            where.append(column == raw)
    for tag in query.getlist("tag"):
        where.append(
            sa.exists(
                sa.select(m.ImageTag.image_id).where(
                    m.ImageTag.image_id == I.id, m.ImageTag.value == tag
                )
            )
        )
    protected = views.FIELDS.query_one(query, "protected")
    if protected is not None:
        where.append(I.protected.is_(views.FIELDS.query_flag(protected, "protected")))
    hidden = views.FIELDS.query_one(query, "os_hidden")
    where.append(I.os_hidden.is_(views.FIELDS.query_flag(hidden, "os_hidden") or False))
    size_min = views.FIELDS.query_one(query, "size_min")
    size_max = views.FIELDS.query_one(query, "size_max")
    if size_min is not None:
        where.append(I.size >= views.FIELDS.query_int(size_min, "size_min"))
    if size_max is not None:
        where.append(I.size <= views.FIELDS.query_int(size_max, "size_max"))
    for key in ("created_at", "updated_at"):
        raw = views.FIELDS.query_one(query, key)
        if raw is not None:
            where.append(_time_filter(getattr(I, key), raw, key))
    for key in query:
        if key in CONTROL or key in EXACT_FILTERS:
            continue
        value = views.FIELDS.query_one(query, key)
        where.append(
            sa.exists(
                sa.select(m.ImageProperty.image_id).where(
                    m.ImageProperty.image_id == I.id,
                    m.ImageProperty.name == key,
                    m.ImageProperty.value == value,
                )
            )
        )
    return where


def _time_filter(column: Any, raw: str, key: str) -> ColumnElement[bool]:
    op, sep, value = raw.partition(":")
    if not sep or op not in TIME_OPS:
        raise BadRequest(
            f"Query parameter '{key}' must be '<op>:<ISO 8601 time>' with op one of "
            f"{', '.join(TIME_OPS)}."
        )
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{value!r} in '{key}' is not an ISO 8601 time.") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return getattr(column, TIME_OPS[op])(when)


def _after_marker(
    sort: Sequence[tuple[str, str]], values: Sequence[Any]
) -> ColumnElement[bool]:
    clauses = []
    for i, (key, direction) in enumerate(sort):
        expr = SORT_KEYS[key]
        equal = [SORT_KEYS[k] == values[j] for j, (k, _d) in enumerate(sort[:i])]
        beyond = expr > values[i] if direction == "asc" else expr < values[i]
        clauses.append(sa.and_(*equal, beyond))
    return sa.or_(*clauses)


def list_images(service: ImageService, ctx: AuthContext, query: Any) -> dict[str, Any]:
    views.FIELDS.query_one(query, "limit")  # given at most once
    limit = LISTS.limit(query) or 0
    visibility = views.FIELDS.query_one(query, "visibility")
    if visibility is not None:
        views.choice(visibility, "visibility", (*views.VISIBILITIES, "all"))
    member_status = views.FIELDS.query_one(query, "member_status") or "accepted"
    views.choice(member_status, "member_status", (*views.MEMBER_STATUSES, "all"))
    sort = parse_sort(query)
    marker = views.FIELDS.query_one(query, "marker")

    stmt = sa.select(I)
    rights = visibility_filter(ctx, visibility, member_status)
    conditions = [c for c in [rights, *_filters(query)] if c is not None]
    if conditions:
        stmt = stmt.where(*conditions)
    with service.db.session() as s:
        if marker is not None:
            marker_img = s.get(I, marker)
            if marker_img is None or not service.can_see(s, ctx, marker_img):
                raise BadRequest(f"Invalid marker: image {marker} could not be found.")
            values = s.execute(
                sa.select(*[SORT_KEYS[k] for k, _d in sort]).where(I.id == marker)
            ).one()
            stmt = stmt.where(_after_marker(sort, list(values)))
        order = [SORT_KEYS[k].asc() if d == "asc" else SORT_KEYS[k].desc() for k, d in sort]
        rows = list(s.scalars(stmt.order_by(*order).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        body: dict[str, Any] = {
            "images": service.views(s, rows),
            "first": "/v2/images",
            "schema": "/v2/schemas/images",
        }
    if more and rows:
        body["next"] = href("/v2/images", query, ("marker", "limit"),
                            [("limit", str(limit)), ("marker", rows[-1].id)])
    return body
