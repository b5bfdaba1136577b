"""The volume contracts: the storage host's state, its registration and its report
round-trip through JSON, and a malformed document is refused naming the bad field."""

from __future__ import annotations

import json

import pytest

from stratus.contracts.volume import (
    ContractError,
    HostRegistration,
    StorageHostState,
    StorageReport,
    VolumeSource,
    report_path,
    state_path,
)

pytestmark = pytest.mark.unit


def state_doc() -> dict:
    return {
        "generation": 7,
        "volumes": [{"id": "v1", "size_gb": 1, "format": "qcow2",
                     "source": {"kind": "blank", "id": None}},
                    {"id": "v2", "size_gb": 2, "format": "raw",
                     "source": {"kind": "image", "id": "img"}}],
        "snapshots": [{"id": "s1", "volume_id": "v1"}],
        "exports": [{"attachment_id": "a1", "volume_id": "v1",
                     "target_iqn": "iqn.2010-10.org.stratus:a1", "lun": 1,
                     "auth_username": "u", "auth_password": "p", "initiator": None}],
        "uploads": [{"volume_id": "v2", "image_id": "img2", "disk_format": "qcow2"}],
    }


def test_the_state_round_trips() -> None:
    doc = state_doc()
    state = StorageHostState.from_dict(doc)
    assert state.to_dict() == doc
    assert StorageHostState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert state.volumes[1].source == VolumeSource("image", "img")


def test_defaults_fill_optional_fields() -> None:
    state = StorageHostState.from_dict({"volumes": [{"id": "v", "size_gb": 3}],
                                        "exports": [{"attachment_id": "a", "volume_id": "v",
                                                     "target_iqn": "t", "auth_username": "u",
                                                     "auth_password": "p"}],
                                        "ignored": True})
    assert state.generation == 0
    assert state.volumes[0].format == "qcow2" and state.volumes[0].source.kind == "blank"
    assert state.exports[0].lun == 1 and state.exports[0].initiator is None


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["volumes"][0].update(size_gb=0), "volumes[0].size_gb"),
    (lambda d: d["volumes"][0].update(size_gb="1"), "volumes[0].size_gb"),
    (lambda d: d["volumes"][1].update(format="vmdk"), "volumes[1].format"),
    (lambda d: d["volumes"][1]["source"].update(kind="tape"), "volumes[1].source.kind"),
    (lambda d: d["volumes"][1]["source"].update(id=None), "volumes[1].source.id"),
    (lambda d: d["snapshots"][0].pop("volume_id"), "snapshots[0].volume_id"),
    (lambda d: d["exports"][0].update(lun=0), "exports[0].lun"),
    (lambda d: d["exports"][0].update(auth_password=""), "exports[0].auth_password"),
    (lambda d: d["uploads"][0].update(image_id=5), "uploads[0].image_id"),
    (lambda d: d.update(volumes={}), "volumes"),
])
def test_a_bad_state_names_the_field(change, field: str) -> None:
    doc = state_doc()
    change(doc)
    with pytest.raises(ContractError) as err:
        StorageHostState.from_dict(doc)
    assert err.value.field == field


def test_registration() -> None:
    doc = {"host": "stor1", "portal": "192.0.2.5:3260", "iqn_prefix": "iqn.2010-10.org.stratus",
           "capacity_gb": 100, "free_gb": 90, "formats": ["qcow2", "raw"]}
    assert HostRegistration.from_dict(doc).to_dict() == doc
    for key, value in (("portal", "192.0.2.5"), ("portal", "x:99999"), ("free_gb", -1),
                       ("host", ""), ("formats", ["vdi"])):
        bad = dict(doc, **{key: value})
        with pytest.raises(ContractError) as err:
            HostRegistration.from_dict(bad)
        assert err.value.field.startswith(key)


def test_report_round_trips_and_checks_states() -> None:
    doc = {"volumes": [{"id": "v1", "size_gb": 1, "state": "ready", "fault": None},
                       {"id": "v2", "size_gb": 0, "state": "error", "fault": "no space"}],
           "snapshots": [{"id": "s1", "state": "ready", "fault": None}],
           "exports": [{"attachment_id": "a1", "state": "ready", "fault": None}],
           "uploads": [{"volume_id": "v1", "image_id": "i", "state": "done", "fault": None}]}
    assert StorageReport.from_dict(doc).to_dict() == doc
    doc["uploads"][0]["state"] = "maybe"
    with pytest.raises(ContractError) as err:
        StorageReport.from_dict(doc)
    assert err.value.field == "uploads[0].state"
    with pytest.raises(ContractError):
        StorageReport.from_dict([])


def test_paths() -> None:
    assert state_path("h") == "/v3/storage/hosts/h/state"
    assert report_path("h") == "/v3/storage/hosts/h/report"
