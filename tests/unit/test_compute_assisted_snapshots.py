"""os-assisted-volume-snapshots (compute/api/assisted_volume_snapshots.py): 501 for an
attached iSCSI volume, 404 for one attached to nothing, 400 for a bad request, admin only;
with the fake volume API of test_compute_volumes_api.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_compute_volumes_api import VOL, VOL2, FakeVolumes, P, active, msg

from compute_api import ALICE, ComputeApi, in_process

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1", host_ip="192.0.2.10")
        vols = FakeVolumes()
        vols.volume(VOL)
        vols.volume(VOL2)
        client.fake.volumes = vols
        yield client


AVS = "/v2.1/os-assisted-volume-snapshots"


def assisted(volume_id: str, **info: Any) -> dict[str, Any]:
    create_info = {"snapshot_id": "77777777-7777-4777-8777-777777777777", "type": "qcow2",
                   "new_file": "new_file", **info}
    return {"snapshot": {"volume_id": volume_id, "create_info": create_info}}


def test_assisted_snapshots_of_iscsi_volumes_answer_501(api: ComputeApi) -> None:
    """An attached volume is an iSCSI block device: 501 saying so (create and delete);
    a volume attached to nothing 404; admin only."""
    sid = active(api)
    assert api.call("POST", AVS, json=assisted(VOL)).status_code == 404  # not attached
    api.ok("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    resp = api.call("POST", AVS, json=assisted(VOL))
    assert resp.status_code == 501, resp.text
    assert "iSCSI" in msg(resp) and "notImplemented" in resp.json()
    delete = f"{AVS}/77777777-7777-4777-8777-777777777777"
    resp = api.call("DELETE", delete, params={"delete_info": json.dumps({"volume_id": VOL})})
    assert resp.status_code == 501, resp.text
    resp = api.call("DELETE", delete, params={"delete_info": json.dumps({"volume_id": VOL2})})
    assert resp.status_code == 404 and VOL2 in msg(resp)
    assert api.call("POST", AVS, ALICE, json=assisted(VOL)).status_code == 403
    assert api.call("DELETE", delete, ALICE, params={
        "delete_info": json.dumps({"volume_id": VOL})}).status_code == 403


@pytest.mark.parametrize(("body", "text"), [
    ({}, "snapshot"), ({"snapshot": {"create_info": {}}}, "volume_id"),
    ({"snapshot": {"volume_id": VOL}}, "create_info"),
    (assisted(VOL, snapshot_id=""), "snapshot_id"), (assisted(VOL, type="raw"), "qcow2"),
    (assisted(VOL, new_file=None), "new_file"),
])
def test_assisted_snapshot_bad_input_is_400(api: ComputeApi, body: dict[str, Any],
                                                text: str) -> None:
    resp = api.call("POST", AVS, json=body)
    assert resp.status_code == 400 and text in msg(resp), resp.text


@pytest.mark.parametrize("query", [{}, {"delete_info": "nope"}, {"delete_info": "[]"},
                                   {"delete_info": "{}"}])
def test_assisted_snapshot_delete_needs_delete_info(api: ComputeApi,
                                                        query: dict[str, str]) -> None:
    resp = api.call("DELETE", f"{AVS}/x", params=query)
    assert resp.status_code == 400 and "delete_info" in msg(resp), resp.text
