"""No malformed request makes the volume API answer 5xx, on SQLite and PostgreSQL.

In-process against the real database engines, like the network fuzz test: every route
gets odd path values, every body field odd values (None, numbers, lists, NUL bytes,
70,000-character strings...), and bodies shaped like real ones get one odd field at a
time on real objects (a volume, a snapshot, an attachment, a storage host).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fuzz import requests_for
from helpers import Postgres
from stratus.volume.core import Settings
from volume_api import ADMIN, ALICE, VolumeApi, in_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ODD = [None, 7, -1, True, [], {}, "", "\x00", "x" * 70000, 2**40, 1.5, [{"x": 1}]]
SHAPES: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "volume": ("volume", {"size": 1}, ["size", "name", "description", "imageRef",
                                       "source_volid", "snapshot_id", "volume_type",
                                       "availability_zone", "metadata", "multiattach"]),
    "snapshot": ("snapshot", {}, ["volume_id", "force", "name", "description", "metadata"]),
    "attachment": ("attachment", {}, ["volume_uuid", "instance_uuid", "connector", "mode"]),
    "volume_type": ("volume_type", {"name": "t"}, ["name", "description", "extra_specs",
                                                   "is_public"]),
    "quota_set": ("quota_set", {}, ["volumes", "gigabytes", "snapshots", "backups"]),
}
ACTIONS = {"os-extend": ["new_size"], "os-set_bootable": ["bootable"],
           "os-update_readonly_flag": ["readonly"],
           "os-volume_upload_image": ["image_name", "disk_format", "container_format", "force"],
           "os-reset_status": ["status", "attach_status"], "os-attach": [
               "instance_uuid", "mountpoint", "host_name", "mode"],
           "os-detach": ["attachment_id"], "os-initialize_connection": ["connector"],
           "os-terminate_connection": ["connector"], "os-reserve": [], "os-unreserve": [],
           "os-begin_detaching": [], "os-roll_detaching": [], "os-force_delete": []}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VolumeApi]:
    url = None
    if request.param == "postgresql":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"volfuzz_{os.getpid()}")
    with in_process(tmp_path, Settings(export_timeout=0.2), url=url,
                    raise_server_exceptions=False) as api:
        yield api


BODY_OF = {"volumes": "volume", "snapshots": "snapshot", "attachments": "attachment",
           "types": "volume_type", "os-quota-sets": "quota_set"}


def entity(path: str) -> str:
    """The body key of a route: its last literal segment's resource."""
    literal = [p for p in path.split("/") if p and not p.startswith("{")]
    return BODY_OF.get(literal[-1], "") if literal else ""


def shaped(routes: list[Any], valid: dict[str, str]) -> Iterator[tuple[str, str, Any]]:
    for route in routes:
        methods = sorted((getattr(route, "methods", None) or set()) & {"POST", "PUT"})
        for method in methods:
            path = route.path
            for param, value in valid.items():
                path = path.replace("{" + param + "}", value)
            if route.path.endswith("/volumes/{volume_id}/action"):
                for name, fields in ACTIONS.items():
                    yield method, path, {name: None}
                    for field in fields:
                        for value in ODD:
                            yield method, path, {name: {field: value}}
                continue
            key = entity(route.path)
            if not key:
                continue
            name, base, fields = SHAPES[key]
            for field in fields:
                for value in ODD:
                    yield method, path, {name: {**base, field: value}}


def test_no_route_answers_5xx_to_malformed_requests(engine_api: VolumeApi) -> None:
    api = engine_api
    api.register()
    vol = api.volume(size=1)
    api.converge()
    snap = api.ok("POST", "/snapshots", json={"snapshot": {"volume_id": vol["id"]}})
    att = api.ok("POST", "/attachments", status=200, json={"attachment": {
        "volume_uuid": vol["id"]}})["attachment"]
    api.converge()
    valid = {"project_id": "p-alice", "volume_id": vol["id"],
             "snapshot_id": snap["snapshot"]["id"], "attachment_id": att["id"],
             "type_id": "default", "key": "k", "target": "p-alice", "host": "stor1"}
    routes = api.client.app.routes
    count = 0
    runs = [(ADMIN, list(requests_for(routes))),
            (ALICE, [r for r in requests_for(routes) if r[0] != "POST"]),
            (ADMIN, list(shaped(routes, valid))), (ALICE, list(shaped(routes, valid)))]
    params = {"sort": "\x00:x", "limit": "x", "marker": "\x00", "name": "\x00",
              "metadata": "{bad", "offset": "-3", "with_count": "maybe", "since": "x",
              "wait": "nan"}
    for token, requests in runs:
        for method, path, body in requests:
            if token == ALICE:  # the member's own project, so checks past the URL run
                path = path.replace("/v3/x/", "/v3/p-alice/", 1)
            content = None if body is None else json.dumps(body)
            resp = api.client.request(method, path, content=content, headers={
                "X-Auth-Token": token, "OpenStack-API-Version": "volume 3.60"},
                params=params if method == "GET" else None)
            count += 1
            assert resp.status_code < 500, (method, path, body, resp.text[:300])
            if resp.status_code >= 400 and resp.content:
                assert next(iter(resp.json().values()))["message"], (method, path, body)
    assert count > 3000, count
    # The service still works normally afterwards.
    assert api.volume(size=1)["status"] == "creating"
