"""List queries the Neutron way: filters on any attribute, fields=, sorting, limit/marker,
page_reverse and next/previous links.

The machinery is stratus.common.listing (rendered rows filtered, sorted and paged in
Python); this module holds Neutron's wording and rules for it and the one filter with
a grammar of its own, ``fixed_ips=ip_address=...``.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams

from stratus.common import listing as common
from stratus.common.listing import ListDialect, Lister

MAX_LIMIT = 10000
NEUTRON_LISTS = ListDialect(
    control=frozenset({"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}),
    ignored=frozenset({"tags", "tags-any", "not-tags", "not-tags-any", "verbose"}),
    max_limit=MAX_LIMIT,
    no_limit=("", "0"),
    sort_count="The number of sort_keys and sort_dirs must be the same.",
    bad_sort_key="{key} is an invalid attribute for sort_key.",
    bad_sort_dir="{dir} is an invalid value for sort_dir, valid values are {allowed}.",
    marker_missing="Marker {marker} could not be found in the list.",
    limit_not_int="limit {raw!r} is not an integer.",
    limit_negative="limit {limit} must not be negative.",
)
LISTER = Lister(NEUTRON_LISTS)
CONTROL = NEUTRON_LISTS.control
IGNORED = NEUTRON_LISTS.ignored


def fixed_ips_match(value: Any, wanted: list[str]) -> bool:
    """fixed_ips=ip_address=10.0.0.5 / fixed_ips=subnet_id=X (and ip_address_substr):
    every condition is met by some address of the port."""
    for want in wanted:
        sub, _, val = want.partition("=")
        ok = any(
            (sub == "ip_address_substr" and val in ip["ip_address"]) or ip.get(sub) == val
            for ip in value
        )
        if not ok:
            return False
    return True


MATCHERS = {"fixed_ips": fixed_ips_match}


def apply(
    items: list[dict[str, Any]], query: QueryParams, base_url: str, path: str, key: str
) -> dict[str, Any]:
    """Filter, sort, page and trim ``items``; the answer body ``{key: [...], key_links}``."""
    return LISTER.apply(items, query, base_url, path, key, MATCHERS)


def trim(item: dict[str, Any], query: QueryParams) -> dict[str, Any]:
    """``fields=`` on a single resource (GET /v2.0/networks/{id}?fields=name)."""
    return common.trim(item, query)
