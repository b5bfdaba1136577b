"""os-aggregates (compute/aggregates.py, api/aggregates.py) in the in-process compute API:
every answer validated against Tempest's own schemas (2.1 and 2.41+), Nova's errors, the
zone a host takes from its aggregate (os-availability-zone, os-services, the scheduler)
and the 2.81 image cache refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_compute_schemas import check

from compute_api import ADMIN, ALICE, ComputeApi, in_process

pytestmark = pytest.mark.unit
A = "/v2.1/os-aggregates"
H1, H2 = "s8g-cmp1", "s8g-cmp2"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host(H1)
        client.host(H2)
        yield client


def message(resp: httpx.Response) -> str:
    (fault,) = resp.json().values()
    return str(fault["message"])


def create(api: ComputeApi, name: str, zone: str | None = None, version: str = "2.41"
           ) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if zone is not None:
        body["availability_zone"] = zone
    resp = api.call("POST", A, version=version, json={"aggregate": body})
    return dict(check(resp, "aggregates", "create_aggregate", version)["aggregate"])


def action(api: ComputeApi, aid: int, name: str, value: Any, version: str = "2.41"
           ) -> httpx.Response:
    return api.call("POST", f"{A}/{aid}/action", version=version, json={name: value})


@pytest.mark.parametrize("version", ("2.1", "2.40", "2.41", "2.96"))
def test_lifecycle_in_tempests_shapes(api: ComputeApi, version: str) -> None:
    agg = create(api, "s8g-agg", version=version)
    assert ("uuid" in agg) == (version >= "2.41")
    assert (agg["name"], agg["availability_zone"], agg["deleted"]) == ("s8g-agg", None, False)
    aid = agg["id"]
    got = check(api.call("GET", A, version=version), "aggregates", "list_aggregates",
                version)["aggregates"]
    assert [(a["id"], a["hosts"], a["metadata"]) for a in got] == [(aid, [], {})]
    shown = check(api.call("GET", f"{A}/{aid}", version=version), "aggregates",
                  "get_aggregate", version)["aggregate"]
    assert shown["updated_at"] is None
    upd = check(api.call("PUT", f"{A}/{aid}", version=version, json={"aggregate": {
        "name": "s8g-renamed", "availability_zone": "s8g-az"}}), "aggregates",
        "update_aggregate", version)["aggregate"]
    assert (upd["name"], upd["availability_zone"]) == ("s8g-renamed", "s8g-az")
    assert upd["metadata"] == {"availability_zone": "s8g-az"}
    body = check(action(api, aid, "set_metadata", {"metadata": {"ssd": "true"}}, version),
                 "aggregates", "aggregate_set_metadata", version)["aggregate"]
    assert body["metadata"] == {"ssd": "true", "availability_zone": "s8g-az"}
    body = check(action(api, aid, "set_metadata", {"metadata": {"ssd": None}}, version),
                 "aggregates", "aggregate_set_metadata", version)["aggregate"]
    assert body["metadata"] == {"availability_zone": "s8g-az"}
    body = check(action(api, aid, "add_host", {"host": H1}, version), "aggregates",
                 "aggregate_add_remove_host", version)["aggregate"]
    assert body["hosts"] == [H1]
    body = check(action(api, aid, "add_host", {"host": H2}, version), "aggregates",
                 "aggregate_add_remove_host", version)["aggregate"]
    assert body["hosts"] == [H1, H2]
    body = check(action(api, aid, "remove_host", {"host": H1}, version), "aggregates",
                 "aggregate_add_remove_host", version)["aggregate"]
    assert body["hosts"] == [H2]
    action(api, aid, "remove_host", {"host": H2}, version)
    check(api.call("DELETE", f"{A}/{aid}", version=version), "aggregates",
          "delete_aggregate", version)
    assert api.call("GET", f"{A}/{aid}", version=version).status_code == 404
    # the name is free again once deleted
    create(api, "s8g-renamed", version=version)


def test_nova_errors(api: ComputeApi) -> None:
    for bad in ({"name": ""}, {"name": "x" * 256}, {}, {"name": " s8g"},
                {"name": "s8g", "availability_zone": "a:b"},
                {"name": "s8g", "availability_zone": ""}, {"name": "s8g", "hosts": []}):
        resp = api.call("POST", A, json={"aggregate": bad})
        assert resp.status_code == 400, (bad, resp.text)
    aid = create(api, "s8g-one")["id"]
    other = create(api, "s8g-two")["id"]
    resp = api.call("POST", A, json={"aggregate": {"name": "s8g-one"}})
    assert resp.status_code == 409 and "s8g-one" in message(resp)
    resp = api.call("PUT", f"{A}/{other}", json={"aggregate": {"name": "s8g-one"}})
    assert resp.status_code == 409
    assert api.call("PUT", f"{A}/{other}", json={"aggregate": {}}).status_code == 400
    for path in (f"{A}/-1", f"{A}/999"):
        assert api.call("GET", path).status_code == 404
        assert api.call("DELETE", path).status_code == 404
    assert api.call("GET", f"{A}/abc").status_code == 400
    resp = action(api, aid, "add_host", {"host": "s8g-nowhere"})
    assert resp.status_code == 404 and "s8g-nowhere" in message(resp)
    assert action(api, aid, "add_host", {"host": H1}).status_code == 200
    resp = action(api, aid, "add_host", {"host": H1})
    assert resp.status_code == 409, resp.text
    resp = action(api, aid, "remove_host", {"host": H2})
    assert resp.status_code == 404 and H2 in message(resp)
    resp = api.call("DELETE", f"{A}/{aid}")  # Nova: 400 while it has hosts
    assert resp.status_code == 400 and "hosts" in message(resp)
    assert action(api, aid, "reboot", {}).status_code == 400
    assert action(api, aid, "set_metadata", {"metadata": {}}).status_code == 400
    assert action(api, aid, "set_metadata", {"metadata": {"k": 1}}).status_code == 400
    assert action(api, aid, "add_host", {"host": H1, "x": 1}).status_code == 400


def test_admin_only(api: ComputeApi) -> None:
    aid = create(api, "s8g-adm")["id"]
    for method, path, body in (
            ("GET", A, None), ("POST", A, {"aggregate": {"name": "s8g-u"}}),
            ("GET", f"{A}/{aid}", None),
            ("PUT", f"{A}/{aid}", {"aggregate": {"name": "s8g-u"}}),
            ("DELETE", f"{A}/{aid}", None),
            ("POST", f"{A}/{aid}/action", {"add_host": {"host": H1}}),
            ("POST", f"{A}/{aid}/action", {"remove_host": {"host": H1}}),
            ("POST", f"{A}/{aid}/action", {"set_metadata": {"metadata": {"a": "b"}}})):
        resp = api.call(method, path, ALICE, json=body)
        assert resp.status_code == 403, (method, path, resp.text)
    assert api.call("GET", f"{A}/{aid}", ADMIN).status_code == 200


def zones(api: ComputeApi, detail: bool = False) -> dict[str, Any]:
    path = "/v2.1/os-availability-zone" + ("/detail" if detail else "")
    body = check(api.call("GET", path, ADMIN if detail else ALICE), "availability_zone",
                 "list_availability_zone_list_detail" if detail
                 else "list_availability_zone_list", "2.47")
    return {z["zoneName"]: z["hosts"] for z in body["availabilityZoneInfo"]}


def service_zones(api: ComputeApi) -> dict[str, str]:
    return {s["host"]: s["zone"] for s in api.ok(
        "GET", "/v2.1/os-services?binary=nova-compute")["services"]}


def test_a_host_takes_its_aggregates_zone(api: ComputeApi) -> None:
    assert set(zones(api)) == {"nova"}
    aid = create(api, "s8g-zoned", "s8g-az1")["id"]
    action(api, aid, "add_host", {"host": H1})
    assert set(zones(api)) == {"nova", "s8g-az1"}
    assert set(zones(api, detail=True)["s8g-az1"]) == {H1}
    assert service_zones(api) == {H1: "s8g-az1", H2: "nova"}
    # one zone per host: another aggregate of another zone cannot take H1
    other = create(api, "s8g-other", "s8g-az2")["id"]
    resp = action(api, other, "add_host", {"host": H1})
    assert resp.status_code == 400 and "s8g-az1" in message(resp)
    # ... nor can H1's aggregate-less membership be re-zoned through another aggregate
    plain = create(api, "s8g-plain")["id"]
    assert action(api, plain, "add_host", {"host": H1}).status_code == 200
    resp = api.call("PUT", f"{A}/{plain}", json={"aggregate": {
        "availability_zone": "s8g-az2"}})
    assert resp.status_code == 400
    resp = action(api, plain, "set_metadata", {"metadata": {
        "availability_zone": "s8g-az2"}})
    assert resp.status_code == 400
    assert action(api, plain, "set_metadata", {"metadata": {
        "availability_zone": "s8g-az1"}}).status_code == 200  # the same zone is fine
    # a zone renamed moves its hosts; removed, they are back in their agent's zone
    action(api, plain, "remove_host", {"host": H1})
    api.ok("PUT", f"{A}/{aid}", json={"aggregate": {"availability_zone": "s8g-az3"}})
    assert service_zones(api)[H1] == "s8g-az3"
    action(api, aid, "set_metadata", {"metadata": {"availability_zone": None}})
    assert api.ok("GET", f"{A}/{aid}")["aggregate"]["availability_zone"] is None
    assert service_zones(api)[H1] == "nova"


def placed(api: ComputeApi, sid: str) -> tuple[str, str]:
    srv = api.server(sid)
    return srv["OS-EXT-SRV-ATTR:host"], srv["OS-EXT-AZ:availability_zone"]


def test_servers_are_scheduled_into_the_aggregates_zone(api: ComputeApi) -> None:
    # a first boot fills the scheduler's host cache: the zone change must reach it
    first = api.boot()["server"]["id"]
    assert placed(api, first)[1] == "nova"
    aid = create(api, "s8g-sched", "s8g-az1")["id"]
    action(api, aid, "add_host", {"host": H2})
    for _ in range(3):
        sid = api.boot(availability_zone="s8g-az1")["server"]["id"]
        assert placed(api, sid) == (H2, "s8g-az1")
        sid = api.boot(availability_zone="nova")["server"]["id"]
        assert placed(api, sid) == (H1, "nova")
    sid = api.boot(ADMIN, availability_zone=f"s8g-az1:{H2}")["server"]["id"]
    assert placed(api, sid) == (H2, "s8g-az1")
    # the zone of hosts with servers of that zone cannot move
    resp = api.call("PUT", f"{A}/{aid}", json={"aggregate": {
        "availability_zone": "s8g-az2"}})
    assert resp.status_code == 400 and "servers" in message(resp)
    # a zone no enabled host is in is refused at create (Nova's 400)
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm", "imageRef": "11111111-1111-4111-8111-111111111111",
        "flavorRef": "1", "networks": "none", "availability_zone": "s8g-nowhere"}})
    assert resp.status_code == 400 and "s8g-nowhere" in message(resp), resp.text
    api.ok("PUT", "/v2.1/os-services/disable", json={"host": H2, "binary": "nova-compute"})
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm", "imageRef": "11111111-1111-4111-8111-111111111111",
        "flavorRef": "1", "networks": "none", "availability_zone": "s8g-az1"}})
    assert resp.status_code == 400, resp.text


def test_image_cache_281(api: ComputeApi) -> None:
    aid = create(api, "s8g-cache")["id"]
    body = {"cache": [{"id": "11111111-1111-4111-8111-111111111111"}]}
    resp = api.call("POST", f"{A}/{aid}/images", version="2.80", json=body)
    assert resp.status_code == 404
    resp = api.call("POST", f"{A}/{aid}/images", version="2.81", json=body)
    assert resp.status_code == 400 and "not supported" in message(resp)
    assert api.call("POST", f"{A}/999/images", version="2.81",
                    json=body).status_code == 404
    assert api.call("POST", f"{A}/{aid}/images", ALICE, version="2.81",
                    json=body).status_code == 403


def test_a_zone_with_servers_in_it_cannot_move(api: ComputeApi) -> None:
    before = api.boot()["server"]["id"]
    host, zone = placed(api, before)
    assert zone == "nova"
    aid = create(api, "s8g-move", "s8g-az1")["id"]
    action(api, aid, "add_host", {"host": host})
    # the server was booted into nova, not into the aggregate's zone: the zone may move
    api.ok("PUT", f"{A}/{aid}", json={"aggregate": {"availability_zone": "s8g-az2"}})
    inside = api.boot(availability_zone="s8g-az2")["server"]["id"]
    assert placed(api, inside) == (host, "s8g-az2")
    for body in ({"availability_zone": "s8g-az3"}, {"availability_zone": None}):
        resp = api.call("PUT", f"{A}/{aid}", json={"aggregate": body})
        assert resp.status_code == 400 and "s8g-az2" in message(resp), resp.text
    resp = action(api, aid, "set_metadata", {"metadata": {"availability_zone": "s8g-az3"}})
    assert resp.status_code == 400
    api.ok("PUT", f"{A}/{aid}", json={"aggregate": {"name": "s8g-renamed"}})  # name: fine
    api.ok("DELETE", f"/v2.1/servers/{inside}", status=204)
    api.report(host, inside, deleted=True)
    # with no server left in it, the zone moves
    api.ok("PUT", f"{A}/{aid}", json={"aggregate": {"availability_zone": "s8g-az3"}})


def flavor_with(api: ComputeApi, fid: str, specs: dict[str, str]) -> None:
    api.flavor(name=f"s8g-f{fid}", id=fid)
    api.ok("POST", f"/v2.1/flavors/{fid}/os-extra_specs", json={"extra_specs": specs})


def test_aggregate_instance_extra_specs_filter(api: ComputeApi) -> None:
    aid = create(api, "s8g-ssd")["id"]
    action(api, aid, "add_host", {"host": H1})
    action(api, aid, "set_metadata", {"metadata": {"ssd": "true, fast"}})
    flavor_with(api, "2", {"aggregate_instance_extra_specs:ssd": "true"})
    flavor_with(api, "3", {"aggregate_instance_extra_specs:ssd": "fast"})
    for fid in ("2", "3", "2", "3"):
        sid = api.boot(flavorRef=fid)["server"]["id"]
        assert placed(api, sid)[0] == H1
    flavor_with(api, "4", {"aggregate_instance_extra_specs:ssd": "false"})
    sid = api.boot(flavorRef="4")["server"]["id"]
    srv = api.server(sid)
    assert srv["status"] == "ERROR"
    assert "AggregateInstanceExtraSpecsFilter" in srv["fault"]["message"]
    # unscoped keys are not the filter's: both hosts stay candidates
    flavor_with(api, "5", {"ssd": "false"})
    hosts = {placed(api, api.boot(flavorRef="5")["server"]["id"])[0] for _ in range(4)}
    assert H2 in hosts
