"""Admin server actions and the limits they touch (issue 12): the metadata_items limit at
create and rebuild read from the project's quota (its override, else the ``default``
quota class), os-resetState, injectNetworkInfo, addFloatingIp/removeFloatingIp and
os-instance_usage_audit_log, each answer checked against Tempest's own response schemas
and Nova's policy (admin-only where Nova's default is admin)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_compute_microversions import active

from compute_api import ADMIN, ALICE, BOB, IMAGE, ComputeApi, in_process

pytestmark = pytest.mark.unit
QC = "/v2.1/os-quota-class-sets/default"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def action(api: ComputeApi, sid: str, body: dict[str, Any], token: str = ADMIN,
           version: str = "2.1") -> Any:
    return api.call("POST", f"/v2.1/servers/{sid}/action", token, version=version, json=body)


def meta(n: int) -> dict[str, str]:
    return {f"k{i}": "v" for i in range(n)}


def test_metadata_limit_at_create_and_rebuild_is_the_quota_class_s(api: ComputeApi) -> None:
    api.ok("PUT", QC, json={"quota_class_set": {"metadata_items": 2}})
    body = {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}
    over = api.call("POST", "/v2.1/servers", ALICE, json={"server": {**body,
                                                                      "metadata": meta(3)}})
    assert over.status_code == 403 and "at most 2 items" in over.text, over.text
    sid = active(api, metadata=meta(2))
    rebuild = action(api, sid, {"rebuild": {"imageRef": IMAGE, "metadata": meta(3)}}, ALICE)
    assert rebuild.status_code == 403 and "metadata_items" in rebuild.text
    # a project's own override wins over the class
    api.ok("PUT", "/v2.1/os-quota-sets/p-alice", json={"quota_set": {"metadata_items": 3}})
    assert action(api, sid, {"rebuild": {"imageRef": IMAGE, "metadata": meta(3)}},
                  ALICE).status_code == 202
    # the class raised: more than the configured default (128) is allowed
    api.ok("PUT", QC, json={"quota_class_set": {"metadata_items": 200}})
    assert api.call("POST", "/v2.1/servers", BOB, json={"server": {
        **body, "metadata": meta(150)}}).status_code == 202
