"""Booting from an existing volume: the volume API's ``bootable`` flag of the boot volume
is checked as Nova does (Tempest's test_create_server_from_non_bootable_volume)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_compute_volumes_api import VOL, VOL2, FakeVolumes

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
        vols.volumes[VOL]["bootable"] = "false"  # as the volume API answers it
        vols.volumes[VOL2]["bootable"] = "true"
        client.fake.volumes = vols
        yield client


def boot(api: ComputeApi, vid: str, index: int = 0, status: int = 202) -> dict:
    bdm = {"uuid": vid, "source_type": "volume", "destination_type": "volume",
           "boot_index": index}
    extra = [] if index == 0 else [{"uuid": VOL2, "source_type": "volume",
                                    "destination_type": "volume", "boot_index": 0}]
    body = {"server": {"name": "s8u-vm", "imageRef": "", "flavorRef": "1",
                       "networks": "none", "block_device_mapping_v2": [*extra, bdm]}}
    resp = api.call("POST", "/v2.1/servers", ALICE, json=body)
    assert resp.status_code == status, resp.text
    return dict(resp.json())


def test_a_non_bootable_boot_volume_is_a_400_and_nothing_is_made(api: ComputeApi) -> None:
    body = boot(api, VOL, status=400)
    assert f"Block Device {VOL} is not bootable" in body["badRequest"]["message"]
    assert api.ok("GET", "/v2.1/servers", ALICE)["servers"] == []
    assert api.fake.volumes.attachments == {}


def test_a_bootable_boot_volume_boots(api: ComputeApi) -> None:
    sid = boot(api, VOL2)["server"]["id"]
    assert api.server(sid)["status"] == "BUILD"


def test_a_non_bootable_data_volume_is_fine(api: ComputeApi) -> None:
    sid = boot(api, VOL, index=-1)["server"]["id"]
    attached = api.server(sid)["os-extended-volumes:volumes_attached"]
    assert sorted(v["id"] for v in attached) == sorted([VOL, VOL2])
