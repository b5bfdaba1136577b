"""Volume responses against Tempest's own response schemas (issue 12).

Tempest 47.0.0 ships response schemas (tempest.lib.api_schema.response) for compute
(tests/unit/test_compute_schemas.py) and volume only: identity, network and image have
none. Its volume clients validate every answer against the base schemas below, which
describe the base microversion 3.0 that they send by default (Cinder itself adds keys
later, e.g. a snapshot's group_snapshot_id from 3.14 and user_id from 3.41, as Stratus
does at 3.60; Tempest's vX_Y directories for volumes start above 3.60). The volume API
runs in-process (tests/volume_api.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from tempest.lib.api_schema.response.volume import snapshots as snapshot_schemas
from tempest.lib.api_schema.response.volume import versions as version_schemas
from tempest.lib.api_schema.response.volume import volumes as volume_schemas
from tempest.lib.common.jsonschema_validator import FORMAT_CHECKER, JSONSCHEMA_VALIDATOR

from volume_api import VolumeApi, in_process

pytestmark = pytest.mark.unit


def check(resp: httpx.Response, sch: dict[str, Any], what: str) -> Any:
    """Assert the status and body are what Tempest's schema allows."""
    assert resp.status_code in sch["status_code"], (what, resp.status_code, resp.text)
    body = resp.json() if resp.content else None
    if sch.get("response_body"):
        try:
            jsonschema.validate(body, sch["response_body"], cls=JSONSCHEMA_VALIDATOR,
                                format_checker=FORMAT_CHECKER)
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{what}: {exc.message} at {list(exc.absolute_path)}\n{body}")
    return body


@pytest.fixture
def api(tmp_path: Path) -> Iterator[VolumeApi]:
    with in_process(tmp_path) as client:
        client.register()
        yield client


@pytest.mark.parametrize("version", ["3.0"])
def test_volume_responses_match_tempest_schemas(api: VolumeApi, version: str) -> None:
    vs = volume_schemas
    made = check(api.call("POST", "/volumes", version=version, json={"volume": {
        "size": 1, "name": "v", "metadata": {"k": "v"}}}), vs.create_volume, "create_volume")
    vid = made["volume"]["id"]
    api.converge()
    check(api.call("GET", f"/volumes/{vid}", version=version), vs.show_volume, "show_volume")
    check(api.call("GET", "/volumes", version=version), vs.list_volumes_no_detail,
          "list_volumes")
    check(api.call("GET", "/volumes/detail", version=version), vs.list_volumes_with_detail,
          "list_volumes_detail")
    check(api.call("PUT", f"/volumes/{vid}", version=version, json={"volume": {
        "name": "v2", "description": "d"}}), vs.update_volume, "update_volume")
    check(api.call("GET", f"/volumes/{vid}/metadata", version=version),
          vs.show_volume_metadata, "show_volume_metadata")
    check(api.call("POST", f"/volumes/{vid}/metadata", version=version,
                   json={"metadata": {"a": "b"}}), vs.create_volume_metadata,
          "create_volume_metadata")
    check(api.call("PUT", f"/volumes/{vid}/metadata", version=version,
                   json={"metadata": {"a": "c"}}), vs.update_volume_metadata,
          "update_volume_metadata")

    ss = snapshot_schemas
    snap = check(api.call("POST", "/snapshots", version=version, json={"snapshot": {
        "volume_id": vid, "name": "s"}}), ss.create_snapshot, "create_snapshot")
    sid = snap["snapshot"]["id"]
    api.converge()
    check(api.call("GET", f"/snapshots/{sid}", version=version), ss.show_snapshot,
          "show_snapshot")
    check(api.call("GET", "/snapshots", version=version), ss.list_snapshots_no_detail,
          "list_snapshots")
    check(api.call("GET", "/snapshots/detail", version=version),
          ss.list_snapshots_with_detail, "list_snapshots_detail")
    check(api.call("PUT", f"/snapshots/{sid}", version=version, json={"snapshot": {
        "name": "s2"}}), ss.update_snapshot, "update_snapshot")


def test_version_list_matches_tempest_schema(api: VolumeApi) -> None:
    check(api.call("GET", "/"), version_schemas.list_versions, "list_versions")
