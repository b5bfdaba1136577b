"""stratus.common.listing: filters, fields, sort keys/directions, marker, limit,
page_reverse and links, under Neutron's dialect (stratus.network.listing), compute's
(stratus.compute.views: marker wording, no cap, objects rather than dicts) and image's
(stratus.image.listing: a default page size and a cap)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.datastructures import QueryParams

from stratus.common.errors import BadRequest
from stratus.common.listing import (
    Lister,
    as_text,
    fields,
    href,
    matches,
    sort_value,
    trim,
)
from stratus.compute.views import LISTER as COMPUTE_LISTER
from stratus.compute.views import NOVA_LISTS as COMPUTE_LISTS
from stratus.image.listing import LISTS as IMAGE_LISTS
from stratus.network import listing as network_listing
from stratus.network.listing import LISTER, NEUTRON_LISTS

pytestmark = pytest.mark.unit

# compute's dialect (stratus.compute.views) without its own limit reader: int() and the
# default wording; NOVA_READ is compute's real lister, reading limit as a body integer
NOVA_LISTS = replace(COMPUTE_LISTS, read_limit=None)
NOVA = Lister(NOVA_LISTS)
NOVA_READ = COMPUTE_LISTER
# image's limit: 25 unless given, at most 1000 (stratus.image.listing)
GLANCE = IMAGE_LISTS


def says(message: str) -> Any:
    return pytest.raises(BadRequest, match="^" + re.escape(message) + "$")


def q(*pairs: tuple[str, str]) -> QueryParams:
    return QueryParams(list(pairs))


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"id{i}", "name": f"n{i % 3}", "created_at": f"2026-01-{10 - i:02d}",
             "up": i % 2 == 0, "size": i * 10, "tags": [f"t{i % 2}"],
             "fixed_ips": [{"subnet_id": "s", "ip_address": f"10.0.0.{i}"}]}
            for i in range(n)]


def ids(body: dict[str, Any], key: str = "ports") -> list[str]:
    return [i["id"] for i in body[key]]


def apply(items: list[dict[str, Any]], *pairs: tuple[str, str]) -> dict[str, Any]:
    return network_listing.apply(items, q(*pairs), "http://h:9696", "/v2.0/ports", "ports")


# ---- small pieces -------------------------------------------------------------------------


def test_sort_value_orders_none_then_numbers_then_text() -> None:
    values = ["b", 3, None, True, "a", 0]
    assert sorted(values, key=sort_value) == [None, 0, True, 3, "a", "b"]


def test_as_text_and_default_match() -> None:
    assert (as_text(True), as_text(None), as_text(5)) == ("true", "", "5")
    assert matches(True, ["True"]) and not matches(False, ["true"])
    assert matches(["a", {"x": 1}, 2], ["2"]) and not matches([{"x": 1}], ["x"])
    assert matches("a", ["b", "a"]) and not matches("a", ["A"])


def test_fields_and_trim() -> None:
    item = {"id": "1", "name": "n", "size": 2}
    assert fields(q(("fields", "name"), ("fields", ""), ("fields", "id"))) == ["name", "id"]
    assert trim(item, q(("fields", "name"))) == {"name": "n"}
    assert trim(item, q(("fields", ""))) is item
    assert trim(item, q()) is item


def test_href_keeps_the_query_drops_and_adds_in_order() -> None:
    query = q(("name", "a b"), ("marker", "m"), ("limit", "2"), ("name", "c"))
    assert href("/v2/images", query, ("marker", "limit"), [("limit", "2"), ("marker", "x")]) \
        == "/v2/images?name=a+b&name=c&limit=2&marker=x"
    assert href("http://h/v2.1/servers", None, (), [("limit", "2"), ("marker", "x")]) \
        == "http://h/v2.1/servers?limit=2&marker=x"


# ---- Neutron's dialect through apply ------------------------------------------------------


def test_default_order_is_created_at_then_id() -> None:
    items = rows(4)
    items[1]["created_at"] = items[2]["created_at"]  # tie: id decides
    assert ids(apply(list(reversed(items)))) == ["id3", "id1", "id2", "id0"]


def test_filters_exact_bool_list_and_unknown_attributes() -> None:
    items = rows(6)
    assert ids(apply(items, ("name", "n1"))) == ["id4", "id1"]
    assert ids(apply(items, ("name", "n1"), ("name", "n2"))) == ["id5", "id4", "id2", "id1"]
    assert ids(apply(items, ("up", "TRUE"))) == ["id4", "id2", "id0"]
    assert ids(apply(items, ("size", "20"))) == ["id2"]
    assert ids(apply(items, ("tags", "t1"))) == ids(apply(items))  # tags are ignored
    assert ids(apply(items, ("nothing", "x"))) == ids(apply(items))  # unknown: no filter
    assert apply([], ("name", "x")) == {"ports": []}


def test_fixed_ips_filter_has_its_own_grammar() -> None:
    items = rows(12)
    assert ids(apply(items, ("fixed_ips", "ip_address=10.0.0.3"))) == ["id3"]
    assert ids(apply(items, ("fixed_ips", "ip_address_substr=10.0.0.1"))) == [
        "id11", "id10", "id1"]
    assert ids(apply(items, ("fixed_ips", "subnet_id=s"), ("fixed_ips", "ip_address=10.0.0.2"))
               ) == ["id2"]
    # a resource without fixed_ips: the filter still applies, and keeps nothing
    assert apply([{"id": "r"}], ("fixed_ips", "ip_address=1.1.1.1")) == {"ports": []}


def test_sort_keys_and_directions() -> None:
    items = rows(6)
    assert ids(apply(items, ("sort_key", "size"), ("sort_dir", "desc")))[:2] == ["id5", "id4"]
    assert ids(apply(items, ("sort_key", "name"), ("sort_key", "size"),
                     ("sort_dir", "asc"), ("sort_dir", "desc"))) == [
        "id3", "id0", "id4", "id1", "id5", "id2"]
    assert ids(apply(items, ("sort_key", "name"))) == ["id0", "id3", "id1", "id4", "id2", "id5"]
    with says("The number of sort_keys and sort_dirs must be the same."):
        apply(items, ("sort_key", "name"), ("sort_dir", "asc"), ("sort_dir", "asc"))
    with says("bogus is an invalid attribute for sort_key."):
        apply(items, ("sort_key", "bogus"))
    with says("up is an invalid value for sort_dir, valid values are asc, desc."):
        apply(items, ("sort_key", "name"), ("sort_dir", "up"))
    assert apply([], ("sort_key", "bogus")) == {"ports": []}  # nothing to check it against


def test_limit_marker_and_next_link() -> None:
    items = rows(5)  # default order: id4, id3, id2, id1, id0
    body = apply(items, ("name", "n0"), ("name", "n1"), ("name", "n2"), ("limit", "2"))
    assert ids(body) == ["id4", "id3"]
    [link] = body["ports_links"]
    assert link["rel"] == "next"
    parts = urlsplit(link["href"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://h:9696/v2.0/ports"
    assert parse_qsl(parts.query) == [("name", "n0"), ("name", "n1"), ("name", "n2"),
                                      ("limit", "2"), ("marker", "id3")]
    body = apply(items, ("limit", "2"), ("marker", "id3"))
    assert ids(body) == ["id2", "id1"]
    assert [link["rel"] for link in body["ports_links"]] == ["next", "previous"]
    previous = dict(parse_qsl(urlsplit(body["ports_links"][1]["href"]).query))
    assert previous == {"limit": "2", "marker": "id2", "page_reverse": "True"}
    last = apply(items, ("limit", "2"), ("marker", "id1"))
    assert ids(last) == ["id0"] and [x["rel"] for x in last["ports_links"]] == ["previous"]
    assert apply(items, ("marker", "id0"), ("limit", "2")) == {"ports": []}
    assert ids(apply(items, ("marker", "id2"))) == ["id1", "id0"]  # no limit: no links
    assert "ports_links" not in apply(items, ("marker", "id2"))
    with says("Marker nope could not be found in the list."):
        apply(items, ("marker", "nope"))


def test_page_reverse_walks_backwards() -> None:
    items = rows(5)
    body = apply(items, ("limit", "2"), ("marker", "id1"), ("page_reverse", "true"))
    assert ids(body) == ["id3", "id2"]
    assert [x["rel"] for x in body["ports_links"]] == ["next", "previous"]
    assert ids(apply(items, ("marker", "id1"), ("page_reverse", "TRUE"))) == [
        "id4", "id3", "id2"]
    assert ids(apply(items, ("limit", "2"), ("page_reverse", "true"))) == ["id1", "id0"]


def test_limit_values() -> None:
    items = rows(3)
    for no_limit in ("", "0"):
        body = apply(items, ("limit", no_limit))
        assert len(body["ports"]) == 3 and "ports_links" not in body
    assert ids(apply(items, ("limit", "5"))) == ["id2", "id1", "id0"]
    assert "ports_links" not in apply(items, ("limit", "3"))
    with says("limit 'x' is not an integer."):
        apply(items, ("limit", "x"))
    with says("limit -1 must not be negative."):
        apply(items, ("limit", "-1"))
    assert LISTER.limit(q(("limit", "99999"))) == NEUTRON_LISTS.max_limit == 10000
    assert LISTER.limit(q()) is None


def test_fields_trim_the_page() -> None:
    body = apply(rows(2), ("fields", "id"), ("fields", "name"), ("limit", "1"))
    assert body["ports"] == [{"id": "id1", "name": "n1"}]
    assert "marker=id1" in body["ports_links"][0]["href"]


# ---- the pieces under another dialect, on objects -----------------------------------------


@dataclass
class Flavor:
    id: str
    ram: int


def test_page_edges_on_objects() -> None:
    flavors = [Flavor("a", 512), Flavor("b", 256), Flavor("c", 1024)]
    page, more = NOVA.page(flavors, "a", 1, id_of=lambda f: f.id)
    assert [f.id for f in page] == ["b"] and more
    page, more = NOVA.page(flavors, "c", 5, id_of=lambda f: f.id)
    assert page == [] and not more
    page, more = NOVA.page(flavors, None, 0, id_of=lambda f: f.id)
    assert page == [] and more
    page, more = NOVA.page(flavors, None, None)
    assert page == flavors and not more
    page, more = NOVA.page(flavors, "c", 1, reverse=True, id_of=lambda f: f.id)
    assert [f.id for f in page] == ["b"] and more
    with says("marker [zz] not found"):
        NOVA.page(flavors, "zz", 1, id_of=lambda f: f.id)


def test_sort_on_objects_with_a_getter_is_stable() -> None:
    flavors = [Flavor("b", 512), Flavor("a", 512), Flavor("c", 256)]
    by_ram = Lister.sort(flavors, [("ram", "asc"), ("id", "asc")],
                         lambda f, k: getattr(f, k))
    assert [f.id for f in by_ram] == ["c", "a", "b"]
    by_ram_desc = Lister.sort(flavors, [("ram", "desc"), ("id", "desc")],
                              lambda f, k: getattr(f, k))
    assert [f.id for f in by_ram_desc] == ["b", "a", "c"]
    assert Lister.sort(flavors, []) == flavors


def test_sort_pairs_under_a_dialect_without_a_count_check() -> None:
    known = ["id", "name", "ram"]
    assert NOVA.sort_pairs(q(("sort_key", "ram")), known) == [("ram", "asc")]
    assert NOVA.sort_pairs(q(("sort_key", "ram"), ("sort_key", "id"), ("sort_dir", "desc")),
                           known) == [("ram", "desc")]
    assert NOVA.sort_pairs(q(), known) == []
    with says("Invalid sort_key disk; use one of id, name, ram."):
        NOVA.sort_pairs(q(("sort_key", "disk")), known)
    with says("Invalid sort_dir; use asc or desc."):
        NOVA.sort_pairs(q(("sort_dir", "sideways")), known)


def test_limit_under_a_dialect_with_no_cap_and_zero_meaning_zero() -> None:
    assert NOVA.limit(q(("limit", "0"))) == 0
    assert NOVA.limit(q(("limit", "123456"))) == 123456
    with says("limit '1.5' is not an integer."):
        NOVA.limit(q(("limit", "1.5")))


def test_filters_name_what_is_not_control() -> None:
    query = q(("limit", "1"), ("name", "a"), ("name", "b"), ("verbose", "1"))
    assert NOVA.filters(query) == {"name": ["a", "b"], "verbose": ["1"]}
    assert LISTER.filters(query) == {"name": ["a", "b"]}


def test_limit_read_by_the_api_s_own_integer_reader() -> None:
    assert NOVA_READ.limit(q(("limit", " 3 "))) == 3
    assert NOVA_READ.limit(q()) is None
    with says("Invalid input: 'limit' is a required property."):
        NOVA_READ.limit(q(("limit", "")))
    with says("Invalid input for field/attribute limit: 'x' is not an integer."):
        NOVA_READ.limit(q(("limit", "x")))
    with says("Invalid input for field/attribute limit: -1 must be between 0 and 2147483647."):
        NOVA_READ.limit(q(("limit", "-1")))


def test_limit_with_a_default_and_a_cap() -> None:
    assert GLANCE.limit(q()) == 25
    assert GLANCE.limit(q(("limit", "0"))) == 0
    assert GLANCE.limit(q(("limit", "5000"))) == 1000
    with says("Query parameter 'limit' must be an integer, not ''."):
        GLANCE.limit(q(("limit", "")))
    with says("Query parameter 'limit' must be at least 0."):
        GLANCE.limit(q(("limit", "-2")))


def test_an_empty_marker_is_a_marker_not_found() -> None:
    with says("marker [] not found"):
        NOVA.page([{"id": "a"}], "", None)
    # Neutron's apply reads ?marker= as no marker
    assert ids(apply(rows(2), ("marker", ""))) == ["id1", "id0"]
