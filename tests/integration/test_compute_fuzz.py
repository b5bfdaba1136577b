"""No malformed request makes the compute API answer 5xx, on SQLite and PostgreSQL.

In-process against the real database engines (fake image and network APIs): every
route gets odd path values, every body field odd values, and server-create / action /
agent bodies shaped like real ones get one odd field at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute_api import ADMIN, ALICE, IMAGE, ComputeApi, in_process
from fuzz import requests_for
from helpers import Postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ODD = [None, 7, True, -1, 2**40, 1.5, {}, [], "", "\x00", "x" * 70000, [{"x": 1}], "a/b"]


def shaped(valid: dict[str, str]) -> Iterator[tuple[str, str, Any]]:
    sid = valid["server_id"]
    server = {"name": "f", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}
    for field in [*server, "key_name", "user_data", "metadata", "security_groups",
                  "availability_zone", "config_drive", "min_count", "max_count"]:
        for value in ODD:
            yield "POST", "/v2.1/servers", {"server": {**server, field: value}}
    for value in ODD:
        yield "POST", "/v2.1/servers", {"server": server, "os:scheduler_hints": value}
        yield "POST", "/v2.1/servers", {"server": server,
                                        "os:scheduler_hints": {"group": value}}
        yield "POST", "/v2.1/servers", {"server": {**server, "networks": [
            {"uuid": valid["network_id"], "fixed_ip": value}]}}
        for action in ("reboot", "os-stop", "os-start", "pause", "createImage",
                       "os-getConsoleOutput"):
            yield "POST", f"/v2.1/servers/{sid}/action", {action: value}
            yield "POST", f"/v2.1/servers/{sid}/action", {action: {"type": value,
                                                                    "name": value,
                                                                    "length": value}}
        flavor = {"name": "f", "vcpus": 1, "ram": 1, "disk": 1}
        for field in [*flavor, "id", "swap", "rxtx_factor", "os-flavor-access:is_public"]:
            yield "POST", "/v2.1/flavors", {"flavor": {**flavor, field: value}}
        for field in ("name", "public_key", "type", "key_type", "user_id"):
            yield "POST", "/v2.1/os-keypairs", {"keypair": {"name": "k", field: value}}
        yield "POST", "/v2.1/os-keypairs", {"keypair": {"name": "k", "type": "x509",
                                                        "public_key": value}}
        yield "POST", "/v2.1/os-floating-ips", {"pool": value}
        yield "POST", "/v2.1/os-server-groups", {"server_group": {"name": "g",
                                                                  "policies": value}}
        yield "PUT", "/v2.1/os-quota-sets/p-alice", {"quota_set": {"instances": value}}
        yield "PUT", "/v2.1/os-services/disable", {"host": value, "binary": "nova-compute"}
        for field in ("vcpus", "memory_mb", "virt_type", "availability_zone", "host"):
            yield "PUT", "/v2.1/stratus/compute-hosts/cmpf", {"host": {"vcpus": 2, field: value}}
        for field in ("vm_state", "power_state", "fault", "reschedule", "deleted",
                      "snapshots_done", "console_tail", "reboot_generation"):
            yield "POST", f"/v2.1/stratus/compute-hosts/cmp1/servers/{sid}/report", {
                field: value}
        yield "PUT", f"/v2.1/stratus/metadata/{sid}/password", {"password": value}
        yield "PUT", f"/v2.1/servers/{sid}/metadata", {"metadata": value}
        yield "PUT", f"/v2.1/servers/{sid}", {"server": {"name": value}}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ComputeApi]:
    url = None
    if request.param == "postgresql":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"scapi_fuzz_{os.getpid()}")
    with in_process(tmp_path, url=url, raise_server_exceptions=False) as api:
        yield api


def test_no_route_answers_5xx_to_malformed_requests(engine_api: ComputeApi) -> None:
    api = engine_api
    api.flavor(id="1")
    api.host("cmp1", vcpus=1000, memory_mb=10**7, local_gb=10**6)
    api.ok("PUT", "/v2.1/os-quota-sets/p-alice", json={"quota_set": {
        "instances": -1, "cores": -1, "ram": -1}})
    net = api.fake.network()
    sid = api.boot(networks=[{"uuid": net["id"]}])["server"]["id"]
    valid = {"server_id": sid, "network_id": net["id"]}
    count = 0
    routes = api.client.app.routes
    runs = [(ADMIN, list(requests_for(routes))),
            (ALICE, [r for r in requests_for(routes) if r[0] != "POST"]),
            (ADMIN, list(shaped(valid))), (ALICE, list(shaped(valid)))]
    for token, requests in runs:
        for method, path, body in requests:
            content = None if body is None else json.dumps(body)
            params = {"limit": "x", "marker": "\x00", "name": "(", "changes-since": "x",
                      "minRam": "y", "is_public": "z"}
            resp = api.call(method, path, token, content=content,
                            params=params if method == "GET" else None)
            count += 1
            assert resp.status_code < 500, (method, path, str(body)[:200], resp.text)
            if resp.status_code >= 400 and resp.content:
                assert next(iter(resp.json().values()))["message"], (method, path)
    assert count > 1500, count
    # The service still works normally afterwards.
    assert api.boot(name="after")["server"]["id"]
