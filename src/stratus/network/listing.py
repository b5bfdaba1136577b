"""List queries the Neutron way: filters on any attribute, fields=, sorting, limit/marker.

Lists are small enough here (a private cloud) that the visible rows are
rendered and then filtered, sorted and paged in Python, which gives every
attribute, including computed ones, the same behaviour.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from stratus.common.errors import BadRequest

CONTROL = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}
IGNORED = {"tags", "tags-any", "not-tags", "not-tags-any", "verbose"}
MAX_LIMIT = 10000


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _matches(value: Any, wanted: list[str], key: str) -> bool:
    if key == "fixed_ips":
        # fixed_ips=ip_address=10.0.0.5 / fixed_ips=subnet_id=X (and ip_address_substr)
        for want in wanted:
            sub, _, val = want.partition("=")
            ok = any(
                (sub == "ip_address_substr" and val in ip["ip_address"])
                or ip.get(sub) == val
                for ip in value
            )
            if not ok:
                return False
        return True
    if isinstance(value, list):
        return any(_as_text(v) in wanted for v in value if not isinstance(v, dict))
    if isinstance(value, bool):
        return _as_text(value) in [w.lower() for w in wanted]
    return _as_text(value) in wanted


def apply(
    items: list[dict[str, Any]], query: QueryParams, base_url: str, path: str, key: str
) -> dict[str, Any]:
    """Filter, sort, page and trim ``items``; the answer body ``{key: [...], key_links}``."""
    for name in {k for k in query if k not in CONTROL and k not in IGNORED}:
        wanted = query.getlist(name)
        if items and name not in items[0] and name != "fixed_ips":
            continue  # an attribute this resource does not have filters nothing (older Neutron)
        items = [i for i in items if name in i and _matches(i[name], wanted, name)]

    sort_keys = query.getlist("sort_key")
    sort_dirs = query.getlist("sort_dir")
    if sort_dirs and len(sort_dirs) != len(sort_keys):
        raise BadRequest("The number of sort_keys and sort_dirs must be the same.")
    for sk in sort_keys:
        if items and sk not in items[0]:
            raise BadRequest(f"{sk} is an invalid attribute for sort_key.")
    for sd in sort_dirs:
        if sd not in ("asc", "desc"):
            raise BadRequest(f"{sd} is an invalid value for sort_dir, valid values are asc, desc.")
    items = sorted(items, key=lambda i: _as_text(i.get("id")))
    if not sort_keys:
        items.sort(key=lambda i: _as_text(i.get("created_at")))
    for sk, sd in reversed(list(zip(sort_keys, sort_dirs or ["asc"] * len(sort_keys),
                                    strict=False))):
        items.sort(key=_sort_by(sk), reverse=sd == "desc")

    links = []
    limit_raw = query.get("limit")
    marker = query.get("marker")
    reverse = query.get("page_reverse", "false").lower() == "true"
    if marker:
        pos = next((n for n, i in enumerate(items) if i.get("id") == marker), None)
        if pos is None:
            raise BadRequest(f"Marker {marker} could not be found in the list.")
        before = items[:pos]
        items = before if reverse else items[pos + 1:]
    if limit_raw not in (None, "", "0"):
        try:
            limit = int(limit_raw or 0)
        except ValueError:
            raise BadRequest(f"limit {limit_raw!r} is not an integer.") from None
        if limit < 0:
            raise BadRequest(f"limit {limit} must not be negative.")
        limit = min(limit, MAX_LIMIT)
        more = len(items) > limit
        items = items[-limit:] if reverse else items[:limit]
        if more and items:
            params = [(k, v) for k, v in query.multi_items() if k not in ("marker", "limit")]
            params += [("limit", str(limit)), ("marker", items[-1]["id"])]
            links.append({"rel": "next", "href": f"{base_url}{path}?{urlencode(params)}"})
        if marker and items:
            params = [(k, v) for k, v in query.multi_items()
                      if k not in ("marker", "limit", "page_reverse")]
            params += [("limit", str(limit)), ("marker", items[0]["id"]),
                       ("page_reverse", "True")]
            links.append({"rel": "previous", "href": f"{base_url}{path}?{urlencode(params)}"})

    fields = [f for f in query.getlist("fields") if f]
    if fields:
        items = [{k: v for k, v in i.items() if k in fields} for i in items]
    body: dict[str, Any] = {key: items}
    if links:
        body[f"{key}_links"] = links
    return body


def _sort_by(key: str) -> Any:
    return lambda item: _sort_value(item.get(key))


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int):
        return (1, int(value))
    return (2, str(value))


def trim(item: dict[str, Any], query: QueryParams) -> dict[str, Any]:
    """``fields=`` on a single resource (GET /v2.0/networks/{id}?fields=name)."""
    fields = [f for f in query.getlist("fields") if f]
    return {k: v for k, v in item.items() if k in fields} if fields else item
