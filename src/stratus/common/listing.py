"""List queries in memory, once for every API: filters, ``fields``, sort keys and
directions, ``marker``, ``limit``, ``page_reverse`` and the next/previous links.

Lists are small enough here (a private cloud) that a service can render the
rows a caller may see and then filter, sort and page them in Python, which
gives every attribute, computed ones included, the same behaviour. What
differs between APIs (the query parameters that are not filters, the most a
page may hold, whether ``limit=0`` means "no limit", and the 400 wording) is a
:class:`ListDialect`; :class:`Lister` is the machinery bound to one::

    NEUTRON_LISTS = ListDialect(control=..., bad_sort_key="{key} is an invalid ...", ...)
    LISTER = Lister(NEUTRON_LISTS)
    body = LISTER.apply(rendered, req.query, req.base_url, "/v2.0/ports", "ports")

The pieces (:meth:`Lister.sort_pairs`, :meth:`Lister.sort`, :meth:`Lister.page`,
:meth:`Lister.limit`, :func:`href`, :func:`fields`, :func:`trim`) also work
alone, on rendered dicts or on model objects (give ``value``/``id_of``), for an
API that filters in its own way or pages in SQL and only shares the parsing
and the links.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from stratus.common.errors import BadRequest

T = TypeVar("T")
Matcher = Callable[[Any, list[str]], bool]
"""Whether an attribute's value matches the values a filter asks for."""


@dataclass(frozen=True)
class ListDialect:
    """One API's listing rules and 400 wording (``str.format`` templates).

    - ``control``: query parameters that are not filters; ``ignored``: ones accepted
      and not acted on.
    - ``max_limit``: the most a page holds (a larger ``limit`` is cut down), None: no cap.
    - ``no_limit``: raw ``limit`` values that mean "not given"; ``default_limit``: the
      page size then (None: all).
    - ``read_limit``: reads a given raw ``limit`` in the API's own words (for an API
      whose integers already have a reader); None: ``int()`` and the two templates below.
    - ``default_dir``: the direction of a ``sort_key`` given without ``sort_dir``.
    - ``sort_dirs``: the allowed directions.
    - ``sort_count`` (no names): as many ``sort_dir`` as ``sort_key`` are needed;
      None: the count is not checked.
    - ``bad_sort_key``: ``{key}``, ``{allowed}``; ``bad_sort_dir``: ``{dir}``, ``{allowed}``.
    - ``marker_missing``: ``{marker}``.
    - ``limit_not_int``: ``{raw}``; ``limit_negative``: ``{limit}``.
    """

    control: frozenset[str] = frozenset(
        {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}
    )
    ignored: frozenset[str] = frozenset()
    max_limit: int | None = None
    no_limit: tuple[str, ...] = ()
    default_limit: int | None = None
    read_limit: Callable[[str], int] | None = None
    default_dir: str = "asc"
    sort_dirs: tuple[str, ...] = ("asc", "desc")
    sort_count: str | None = None
    bad_sort_key: str = "Invalid sort_key {key}."
    bad_sort_dir: str = "Invalid sort_dir {dir}."
    marker_missing: str = "Marker {marker} could not be found."
    limit_not_int: str = "limit {raw!r} is not an integer."
    limit_negative: str = "limit {limit} must not be negative."


def sort_value(value: Any) -> tuple[int, Any]:
    """A key that orders None first, then booleans and numbers, then text (as text)."""
    if value is None:
        return (0, "")
    if isinstance(value, bool | int):
        return (1, int(value))
    return (2, str(value))


def as_text(value: Any) -> str:
    """A value as a query string would spell it (booleans lower-case, None empty)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def matches(value: Any, wanted: list[str]) -> bool:
    """The default filter match: the value (or, for a list, any of its scalar items)
    spelled as text is one of ``wanted``; booleans compare case-insensitively."""
    if isinstance(value, list):
        return any(as_text(v) in wanted for v in value if not isinstance(v, dict))
    if isinstance(value, bool):
        return as_text(value) in [w.lower() for w in wanted]
    return as_text(value) in wanted


def fields(query: QueryParams) -> list[str]:
    """The attributes ``fields=`` asks for (empty: all)."""
    return [f for f in query.getlist("fields") if f]


def trim(item: dict[str, Any], query: QueryParams) -> dict[str, Any]:
    """``fields=`` on one rendered resource."""
    wanted = fields(query)
    return {k: v for k, v in item.items() if k in wanted} if wanted else item


def href(prefix: str, query: QueryParams | None, drop: Collection[str],
         add: Sequence[tuple[str, str]]) -> str:
    """``prefix?...``: the query's parameters (all but ``drop``; none if ``query`` is
    None) and then ``add``, URL-encoded."""
    params = [(k, v) for k, v in query.multi_items() if k not in drop] if query else []
    return f"{prefix}?{urlencode([*params, *add])}"


def _get(item: Any, key: str) -> Any:
    return item.get(key)


def _id(item: Any) -> Any:
    return item.get("id")


class Lister:
    """The in-memory listing machinery, worded and ruled by a :class:`ListDialect`."""

    def __init__(self, dialect: ListDialect) -> None:
        self.dialect = dialect

    def filters(self, query: QueryParams) -> dict[str, list[str]]:
        """The filters a query asks for: every parameter that is not control or ignored."""
        d = self.dialect
        return {k: query.getlist(k) for k in query if k not in d.control and k not in d.ignored}

    def filter(self, items: list[dict[str, Any]], query: QueryParams,
               matchers: Mapping[str, Matcher] | None = None) -> list[dict[str, Any]]:
        """Keep the rendered items every filter matches. A filter on an attribute the
        items do not have filters nothing, unless ``matchers`` has its own match for it."""
        special = matchers or {}
        for name, wanted in self.filters(query).items():
            if items and name not in items[0] and name not in special:
                continue
            match = special.get(name, matches)
            items = [i for i in items if name in i and match(i[name], wanted)]
        return items

    def sort_pairs(self, query: QueryParams,
                   known: Collection[str] | None) -> list[tuple[str, str]]:
        """[(key, direction)] from ``sort_key``/``sort_dir``; ``known``: the sortable
        keys (None: any)."""
        d = self.dialect
        keys, dirs = query.getlist("sort_key"), query.getlist("sort_dir")
        if d.sort_count is not None and dirs and len(dirs) != len(keys):
            raise BadRequest(d.sort_count.format())
        allowed = ", ".join(d.sort_dirs)
        for key in keys:
            if known is not None and key not in known:
                raise BadRequest(d.bad_sort_key.format(key=key, allowed=", ".join(known)))
        for direction in dirs:
            if direction not in d.sort_dirs:
                raise BadRequest(d.bad_sort_dir.format(dir=direction, allowed=allowed))
        return list(zip(keys, dirs or [d.default_dir] * len(keys), strict=False))

    @staticmethod
    def sort(items: list[T], pairs: Sequence[tuple[str, str]],
             value: Callable[[T, str], Any] = _get) -> list[T]:
        """``items`` ordered by the pairs, the first the most significant (a stable
        sort per key, so ties keep their incoming order)."""
        out = list(items)
        for key, direction in reversed(pairs):
            out.sort(key=lambda i: sort_value(value(i, key)), reverse=direction == "desc")
        return out

    def limit(self, query: QueryParams) -> int | None:
        """The page size asked for (the dialect's default when none is), cut to the
        dialect's maximum."""
        d = self.dialect
        raw = query.get("limit")
        if raw is None or raw in d.no_limit:
            return d.default_limit
        if d.read_limit is not None:
            limit = d.read_limit(raw)
        else:
            try:
                limit = int(raw)
            except ValueError:
                raise BadRequest(d.limit_not_int.format(raw=raw)) from None
            if limit < 0:
                raise BadRequest(d.limit_negative.format(limit=limit))
        return limit if d.max_limit is None else min(limit, d.max_limit)

    def page(self, items: list[T], marker: str | None, limit: int | None,
             reverse: bool = False, id_of: Callable[[T], Any] = _id) -> tuple[list[T], bool]:
        """(the page, whether more follow): the items after ``marker`` (before it, with
        ``reverse``; None: from the start, while an empty marker is one not found), at
        most ``limit`` of them (the last ones, with ``reverse``; as in plain slicing, a
        limit of 0 then keeps them all)."""
        if marker is not None:
            pos = next((n for n, i in enumerate(items) if id_of(i) == marker), None)
            if pos is None:
                raise BadRequest(self.dialect.marker_missing.format(marker=marker))
            items = items[:pos] if reverse else items[pos + 1:]
        if limit is None:
            return items, False
        more = len(items) > limit
        return items[-limit:] if reverse else items[:limit], more

    def apply(self, items: list[dict[str, Any]], query: QueryParams, base_url: str, path: str,
              key: str, matchers: Mapping[str, Matcher] | None = None,
              default_order: Sequence[str] = ("created_at",)) -> dict[str, Any]:
        """Filter, sort, page and trim rendered ``items``: the answer body
        ``{key: [...]}`` plus ``{key}_links`` (next/previous) when a page was asked for.

        Items are ordered by id, then by ``default_order`` when no ``sort_key`` is
        given, then by the sort keys asked for."""
        items = self.filter(items, query, matchers)
        pairs = self.sort_pairs(query, list(items[0]) if items else None)
        items = self.sort(items, [("id", "asc")])
        if not pairs:
            items = self.sort(items, [(k, "asc") for k in default_order])
        items = self.sort(items, pairs)

        marker = query.get("marker") or None
        reverse = query.get("page_reverse", "false").lower() == "true"
        links = []
        if marker:
            items, _ = self.page(items, marker, None, reverse)
        limit = self.limit(query)
        if limit is not None:
            items, more = self.page(items, None, limit, reverse)
            prefix = f"{base_url}{path}"
            if more and items:
                links.append({"rel": "next", "href": href(
                    prefix, query, ("marker", "limit"),
                    [("limit", str(limit)), ("marker", items[-1]["id"])])})
            if marker and items:
                links.append({"rel": "previous", "href": href(
                    prefix, query, ("marker", "limit", "page_reverse"),
                    [("limit", str(limit)), ("marker", items[0]["id"]),
                     ("page_reverse", "True")])})

        wanted = fields(query)
        if wanted:
            items = [{k: v for k, v in i.items() if k in wanted} for i in items]
        body: dict[str, Any] = {key: items}
        if links:
            body[f"{key}_links"] = links
        return body
