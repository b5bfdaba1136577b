"""Server tags (2.26): the tag routes and the listing filters, answers checked against
Tempest's own schemas (test_compute_schemas.check) and the behaviour of Tempest's
test_server_tags.py and test_list_server_filters.py (tags filters)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_compute_schemas import active, check

from compute_api import ADMIN, ALICE, BOB, READER, ComputeApi, in_process

pytestmark = pytest.mark.unit
V = "2.26"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def tags_path(sid: str, tag: str | None = None) -> str:
    return f"/v2.1/servers/{sid}/tags" + (f"/{tag}" if tag is not None else "")


@pytest.mark.parametrize("version", ["2.26", "2.73", "2.96"])
def test_tag_life_cycle_matches_tempest_schemas(api: ComputeApi, version: str) -> None:
    sid = active(api, version)
    assert check(api.call("GET", tags_path(sid), READER, version=version), "servers",
                 "list_tags", version) == {"tags": []}
    # a new tag: 201 with its Location; the same again: 204 with it too
    for status in (201, 204):
        resp = api.call("PUT", tags_path(sid, "web"), ALICE, version=version)
        check(resp, "servers", "update_tag", version)
        assert resp.status_code == status
        assert resp.headers["location"].endswith(f"/v2.1/servers/{sid}/tags/web")
    check(api.call("GET", tags_path(sid, "web"), ALICE, version=version), "servers",
          "check_tag_existence", version)
    srv = check(api.call("GET", f"/v2.1/servers/{sid}", ALICE, version=version), "servers",
                "get_server", version)["server"]
    assert srv["tags"] == ["web"]
    replaced = check(api.call("PUT", tags_path(sid), ALICE, version=version,
                              json={"tags": ["a", "b", "a"]}),
                     "servers", "update_all_tags", version)["tags"]
    assert replaced == ["a", "b"]
    assert api.call("GET", tags_path(sid, "web"), ALICE, version=version).status_code == 404
    check(api.call("DELETE", tags_path(sid, "a"), ALICE, version=version), "servers",
          "delete_tag", version)
    assert api.ok("GET", tags_path(sid), ALICE, version=version) == {"tags": ["b"]}
    check(api.call("DELETE", tags_path(sid), ALICE, version=version), "servers",
          "delete_all_tags", version)
    assert api.ok("GET", tags_path(sid), ALICE, version=version) == {"tags": []}


def test_tags_need_2_26_and_the_owner(api: ComputeApi) -> None:
    sid = active(api, V)
    for method in ("GET", "DELETE"):
        assert api.call(method, tags_path(sid), ALICE, version="2.25").status_code == 404
    assert api.call("PUT", tags_path(sid, "x"), ALICE, version="2.25").status_code == 404
    # another project sees no such server; a reader may list but not change
    assert api.call("GET", tags_path(sid), BOB, version=V).status_code == 404
    assert api.call("PUT", tags_path(sid, "x"), BOB, version=V).status_code == 404
    assert api.call("PUT", tags_path(sid, "x"), READER, version=V).status_code == 403
    missing = "00000000-0000-4000-8000-000000000000"
    assert api.call("GET", tags_path(missing), ALICE, version=V).status_code == 404


def test_tag_errors_are_novas(api: ComputeApi) -> None:
    sid = active(api, V)
    resp = api.call("PUT", tags_path(sid, "a,b"), ALICE, version=V)
    assert resp.status_code == 400 and "without '/' or ','" in resp.text
    resp = api.call("PUT", tags_path(sid, "x" * 61), ALICE, version=V)
    assert resp.status_code == 400 and "60" in resp.text
    resp = api.call("DELETE", tags_path(sid, "absent"), ALICE, version=V)
    assert resp.status_code == 404 and "absent" in resp.text
    for body in ({"tags": "a"}, {"tags": ["a/b"]}, {"tags": [""]}, {"tag": ["a"]},
                 {"tags": [f"t{i}" for i in range(51)]}):
        resp = api.call("PUT", tags_path(sid), ALICE, version=V, json=body)
        assert resp.status_code == 400, (body, resp.text)
    fifty = [f"t{i}" for i in range(50)]
    api.ok("PUT", tags_path(sid), ALICE, version=V, json={"tags": fifty})
    resp = api.call("PUT", tags_path(sid, "one-more"), ALICE, version=V)
    assert resp.status_code == 400 and "limit 50" in resp.text
    # an existing tag is still a 204 at the limit
    assert api.call("PUT", tags_path(sid, "t0"), ALICE, version=V).status_code == 204


def test_tags_change_only_in_novas_vm_states(api: ComputeApi) -> None:
    body = {"server": {"name": "vm", "imageRef": "11111111-1111-4111-8111-111111111111",
                       "flavorRef": "1", "networks": "none"}}
    sid = api.ok("POST", "/v2.1/servers", ALICE, status=202, version=V,
                 json=body)["server"]["id"]  # building until the agent reports
    resp = api.call("PUT", tags_path(sid, "x"), ALICE, version=V)
    assert resp.status_code == 409 and "vm_state building" in resp.text
    assert api.call("DELETE", tags_path(sid), ALICE, version=V).status_code == 409
    assert api.call("GET", tags_path(sid), ALICE, version=V).status_code == 200
    srv = api.server(sid)
    api.report(srv["OS-EXT-SRV-ATTR:host"], sid, vm_state="active", power_state=1)
    api.ok("POST", f"/v2.1/servers/{sid}/action", ALICE, status=202, version=V,
           json={"os-stop": None})  # a task running (powering-off) does not matter
    assert api.call("PUT", tags_path(sid, "x"), ALICE, version=V).status_code == 201
    api.report(srv["OS-EXT-SRV-ATTR:host"], sid, vm_state="stopped", power_state=4)
    assert api.call("PUT", tags_path(sid, "y"), ALICE, version=V).status_code == 201


def test_listing_filters_by_tags(api: ComputeApi) -> None:
    ids = {}
    for name, tags in (("ab", ["a", "b"]), ("a", ["a"]), ("c", ["c"]), ("none", [])):
        sid = active(api, V)
        api.ok("PUT", tags_path(sid), ALICE, version=V, json={"tags": tags})
        ids[sid] = name

    def names(query: str, version: str = V) -> set[str]:
        body = check(api.call("GET", f"/v2.1/servers/detail?{query}", ALICE,
                              version=version), "servers", "list_servers_detail", version)
        return {ids[s["id"]] for s in body["servers"]}

    assert names("tags=a,b") == {"ab"}
    assert names("tags=a") == {"ab", "a"}
    assert names("tags-any=b,c") == {"ab", "c"}
    assert names("not-tags=a,b") == {"a", "c", "none"}
    assert names("not-tags-any=a,c") == {"none"}
    assert names("tags=a&not-tags-any=b") == {"a"}
    # below 2.26 the filters are ignored, as Nova ignores them
    assert names("tags=a,b", "2.25") == {"ab", "a", "c", "none"}
    assert api.call("GET", "/v2.1/servers?tags=,", ALICE, version=V).status_code == 400
    # an admin's view of all projects filters the same way
    body = api.ok("GET", "/v2.1/servers?all_tenants=1&tags=c", ADMIN, version=V)
    assert [ids[s["id"]] for s in body["servers"]] == ["c"]
