"""Nova's os-volumes and os-snapshots proxies in front of the real volume API (both
in-process): the shapes checked against Tempest's own schemas, the behaviour of
Tempest's compute volumes tests (create/get/list/delete, limit and offset, the size
negatives, snapshots create/get/list/delete), 404 from 2.36, and failures never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from starlette.testclient import TestClient
from tempest.lib.common.jsonschema_validator import FORMAT_CHECKER, JSONSCHEMA_VALIDATOR
from test_compute_schemas import check, schema

import volume_api
from compute_api import ALICE, BOB, READER, ComputeApi, FakeDownstream, fake_validate, make_core
from stratus.common.clients import ApiClient, ServiceError
from stratus.compute.app import build_app
from stratus.compute.downstream import HttpVolumes
from stratus.compute.volume_proxy import nova_volume
from volume_api import VolumeApi

pytestmark = pytest.mark.unit
VOLUME_URL = "http://volume.test:8776"
V = "/v2.1/os-volumes"
S = "/v2.1/os-snapshots"


@dataclass
class Cloud:
    api: ComputeApi
    vol: VolumeApi
    volumes: HttpVolumes

    def call(self, method: str, path: str, token: str = ALICE, version: str = "2.1",
             **kw: Any) -> httpx.Response:
        return self.api.call(method, path, token, version, **kw)

    def ready(self) -> None:
        """Play the storage agent: every volume and snapshot asked for is made."""
        self.vol.converge()


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with volume_api.in_process(tmp_path, raise_server_exceptions=False) as vol:
        vol.register()
        volumes = HttpVolumes("http://identity.test:5000", VOLUME_URL, auth=None)
        volumes._caller = ApiClient(VOLUME_URL, None, service="volume", http=vol.client)
        fake = FakeDownstream()
        fake.volumes = volumes
        core = make_core(f"sqlite:///{tmp_path}/compute.sqlite", None, fake)
        app = build_app(core, fake_validate, public_url="http://compute.test:8774")
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Cloud(ComputeApi(client, core, fake), vol, volumes)
        core.db.dispose()


def create(cloud: Cloud, token: str = ALICE, **attrs: Any) -> dict[str, Any]:
    body = {"volume": {"size": 1, **attrs}}
    made = check(cloud.call("POST", V, token, json=body), "volumes", "create_get_volume",
                 "2.1")["volume"]
    return dict(made)


@pytest.mark.parametrize("version", ["2.1", "2.35"])
def test_volume_create_get_list_delete_as_tempest(cloud: Cloud, version: str) -> None:
    resp = cloud.call("POST", V, version=version, json={"volume": {
        "size": "1", "display_name": "v-one", "display_description": "d",
        "metadata": {"Type": "work"}}})
    made = check(resp, "volumes", "create_get_volume", version)["volume"]
    assert resp.headers["location"].endswith(f"/v2.1/os-volumes/{made['id']}")
    assert (made["displayName"], made["size"], made["attachments"]) == ("v-one", 1, [{}])
    cloud.ready()
    shown = check(cloud.call("GET", f"{V}/{made['id']}", READER, version=version),
                  "volumes", "create_get_volume", version)["volume"]
    assert shown["status"] == "available" and shown["metadata"] == {"Type": "work"}
    assert shown["displayDescription"] == "d"
    for path in (V, V + "/detail"):
        listed = check(cloud.call("GET", path, READER, version=version), "volumes",
                       "list_volumes", version)["volumes"]
        assert [v["id"] for v in listed] == [made["id"]]
    # another project sees nothing of it
    assert cloud.call("GET", f"{V}/{made['id']}", BOB).status_code == 404
    assert check(cloud.call("GET", V, BOB), "volumes", "list_volumes", "2.1") == {
        "volumes": []}
    check(cloud.call("DELETE", f"{V}/{made['id']}", version=version), "volumes",
          "delete_volume", version)
    cloud.ready()
    assert cloud.call("GET", f"{V}/{made['id']}").status_code == 404


def test_attached_volume_shows_its_server(cloud: Cloud) -> None:
    """An attached volume as the volume API lists it (its legacy ``attachments``
    entries) in Nova's shape; one attached to nothing shows Nova's ``[{}]``."""
    made = create(cloud)
    cloud.ready()
    doc = cloud.vol.show(made["id"])
    sid = "44444444-4444-4444-8444-444444444444"
    doc["attachments"] = [{"id": made["id"], "attachment_id": "a1", "volume_id": made["id"],
                           "server_id": sid, "host_name": "cmp1", "device": "/dev/vdb",
                           "attached_at": doc["created_at"]}]
    shown = nova_volume(doc)
    jsonschema.validate({"volume": shown}, schema("volumes", "create_get_volume", "2.1")[
        "response_body"], cls=JSONSCHEMA_VALIDATOR, format_checker=FORMAT_CHECKER)
    assert shown["attachments"] == [{"id": made["id"], "volumeId": made["id"],
                                     "serverId": sid, "device": "/dev/vdb"}]


def test_limit_and_offset(cloud: Cloud) -> None:
    ids = [create(cloud, display_name=f"v{i}")["id"] for i in range(3)]
    every = [v["id"] for v in cloud.call("GET", V).json()["volumes"]]
    assert sorted(every) == sorted(ids)
    for path in (V, V + "/detail"):
        two = cloud.call("GET", f"{path}?limit=2").json()["volumes"]
        assert [v["id"] for v in two] == every[:2]
        one = cloud.call("GET", f"{path}?offset=1&limit=1").json()["volumes"]
        assert [v["id"] for v in one] == every[1:2]
    for bad in ("limit=-1", "offset=x"):
        assert cloud.call("GET", f"{V}?{bad}").status_code == 400


@pytest.mark.parametrize("size", ["#$%", "", "0", 0, -1, 1.5, True, None])
def test_bad_sizes_are_400_and_make_nothing(cloud: Cloud, size: Any) -> None:
    body: dict[str, Any] = {"display_name": "bad", "metadata": {"Type": "work"}}
    if size is not None:
        body["size"] = size
    resp = cloud.call("POST", V, json={"volume": body})
    assert resp.status_code == 400 and "size" in resp.text, resp.text
    assert cloud.vol.ok("GET", "/volumes")["volumes"] == []


def test_other_create_errors(cloud: Cloud) -> None:
    assert cloud.call("POST", V, json={"volume": {"size": 1, "colour": "red"}}
                      ).status_code == 400
    assert cloud.call("POST", V, json={"volume": {"size": 1, "metadata": "x"}}
                      ).status_code == 400
    assert cloud.call("POST", V, json={"vol": {"size": 1}}).status_code == 400
    resp = cloud.call("POST", V, json={"volume": {"display_name": "no-size"}})
    assert resp.status_code == 400 and "snapshot_id" in resp.text
    assert cloud.call("POST", V, READER, json={"volume": {"size": 1}}).status_code == 403
    missing = "55555555-5555-4555-8555-555555555555"
    # the volume API's 404 for a snapshot source stays a 404 or a 400, never a 500
    resp = cloud.call("POST", V, json={"volume": {"size": 1, "snapshot_id": missing}})
    assert resp.status_code in (400, 404), resp.text
    assert cloud.call("DELETE", f"{V}/{missing}").status_code == 404
    assert cloud.call("DELETE", f"{V}/invalid-id").status_code == 404
    # Tempest's show_volume('') and delete_volume(''): 404, not a redirect to the list
    for method in ("GET", "DELETE"):
        for path in (V + "/", S + "/"):
            resp = cloud.api.client.request(method, path, headers={"X-Auth-Token": ALICE},
                                            follow_redirects=False)
            assert resp.status_code == 404, (method, path, resp.status_code)


def test_snapshot_create_get_list_delete_as_tempest(cloud: Cloud) -> None:
    volume = create(cloud)
    cloud.ready()
    resp = cloud.call("POST", S, json={"snapshot": {"volume_id": volume["id"],
                                                    "display_name": "s-one"}})
    snap = check(resp, "snapshots", "create_get_snapshot", "2.1")["snapshot"]
    assert snap["volumeId"] == volume["id"] and snap["displayName"] == "s-one"
    cloud.ready()
    shown = check(cloud.call("GET", f"{S}/{snap['id']}", READER), "snapshots",
                  "create_get_snapshot", "2.1")["snapshot"]
    assert (shown["status"], shown["volumeId"]) == ("available", volume["id"])
    for path in (S, S + "/detail"):
        listed = check(cloud.call("GET", path, READER), "snapshots", "list_snapshots",
                       "2.1")["snapshots"]
        assert snap["id"] in [s["id"] for s in listed]
    assert cloud.call("GET", f"{S}/{snap['id']}", BOB).status_code == 404
    check(cloud.call("DELETE", f"{S}/{snap['id']}"), "snapshots", "delete_snapshot", "2.1")
    cloud.ready()
    assert cloud.call("GET", f"{S}/{snap['id']}").status_code == 404


def test_a_volume_from_a_snapshot_or_an_image(cloud: Cloud) -> None:
    volume = create(cloud, size=2)
    cloud.ready()
    snap = cloud.call("POST", S, json={"snapshot": {"volume_id": volume["id"]}}).json()
    cloud.ready()
    made = create_without_size(cloud, snapshot_id=snap["snapshot"]["id"])
    assert (made["snapshotId"], made["size"]) == (snap["snapshot"]["id"], 2)
    made = create(cloud, imageRef=volume_api.IMAGE)
    cloud.ready()
    assert cloud.vol.show(made["id"])["bootable"] == "true"


def create_without_size(cloud: Cloud, **attrs: Any) -> dict[str, Any]:
    resp = cloud.call("POST", V, json={"volume": attrs})
    return dict(check(resp, "volumes", "create_get_volume", "2.1")["volume"])


def test_snapshot_errors(cloud: Cloud) -> None:
    missing = "55555555-5555-4555-8555-555555555555"
    resp = cloud.call("POST", S, json={"snapshot": {"volume_id": missing}})
    assert resp.status_code == 404 and missing in resp.text
    for body in ({}, {"volume_id": ""}, {"volume_id": missing, "force": "maybe"},
                 {"volume_id": missing, "extra": 1}):
        assert cloud.call("POST", S, json={"snapshot": body}).status_code == 400, body
    assert cloud.call("DELETE", f"{S}/{missing}").status_code == 404


def test_the_proxies_end_at_2_36(cloud: Cloud) -> None:
    for path in (V, V + "/detail", S, S + "/detail"):
        assert cloud.call("GET", path, version="2.36").status_code == 404
        assert cloud.call("GET", path, version="2.35").status_code == 200
    resp = cloud.call("POST", V, version="2.36", json={"volume": {"size": 1}})
    assert resp.status_code == 404 and cloud.vol.ok("GET", "/volumes")["volumes"] == []


def test_a_failing_volume_api_is_503_never_500(cloud: Cloud) -> None:
    def down(*args: Any, **kw: Any) -> Any:
        raise ServiceError("connection refused", temporary=True)

    cloud.volumes._caller.request = down
    assert cloud.call("GET", V).status_code == 503
    assert cloud.call("POST", V, json={"volume": {"size": 1}}).status_code == 503
    assert cloud.call("GET", S + "/x").status_code == 503


def test_no_volume_api_configured_is_503(cloud: Cloud) -> None:
    cloud.api.fake.volumes = None
    resp = cloud.call("GET", V)
    assert resp.status_code == 503 and "volume" in resp.text
