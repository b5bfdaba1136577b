"""cloud_volume, cloud_volume_attachment, cloud_volume_snapshot and cloud_volume_info: their
decision logic against fake volume, compute and image APIs (tests/unit/volume_module_fakes.py).

Every convergence runs in check mode first (it must write nothing), then for real (the same
``changed`` and diff), then again (no change, nothing written). Also: a shrink, an attach of
an attached volume, a snapshot of an in-use volume without ``force`` fail or do nothing
before anything is written; the volume API client's microversion negotiation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compute_module_fakes import collections_root, compute_utils
from volume_module_fakes import VolumeCloud

pytestmark = [pytest.mark.unit]


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from collections_root(tmp_path_factory)


@pytest.fixture(scope="module")
def vu(collections_path: Path) -> Any:
    return compute_utils("stratus_volume")


@pytest.fixture(scope="module")
def au(collections_path: Path) -> Any:
    return compute_utils("stratus_volume_attachment")


@pytest.fixture(scope="module")
def su(collections_path: Path) -> Any:
    return compute_utils("stratus_volume_snapshot")


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)


def vparams(**kw: Any) -> dict[str, Any]:
    base = {"name": "vmod-data", "state": "present", "size": None, "image": None,
            "snapshot_id": None, "volume": None, "volume_type": None, "is_bootable": None,
            "metadata": None, "availability_zone": None, "description": None,
            "wait": True, "timeout": 30}
    base.update(kw)
    return base


def aparams(**kw: Any) -> dict[str, Any]:
    base = {"server": "vmod-web", "volume": "vmod-data", "device": None, "state": "present",
            "wait": True, "timeout": 30}
    base.update(kw)
    return base


def sparams(**kw: Any) -> dict[str, Any]:
    base = {"name": "vmod-snap", "state": "present", "volume": "vmod-data",
            "description": None, "force": False, "wait": True, "timeout": 30}
    base.update(kw)
    return base


def check_then_run(make: Any, cloud: VolumeCloud, p: dict[str, Any]) -> dict[str, Any]:
    """Check mode (no writes), the real run (same changed/diff), then a no-op second run."""
    before = len(cloud.writes)
    checked = dict(make(p, True).run())
    assert cloud.writes[before:] == [], "check mode must not write"
    real = dict(make(p, False).run())
    assert checked["changed"] is True and real["changed"] is True
    assert checked["diff"] == real["diff"]
    n = len(cloud.writes)
    again = dict(make(p, False).run())
    assert again["changed"] is False, again["diff"]
    assert again["diff"] == {"before": {}, "after": {}}
    assert cloud.writes[n:] == []
    assert dict(make(p, True).run())["changed"] is False
    return real


def kinds(cloud: VolumeCloud, since: int = 0) -> list[str]:
    return [w[0] for w in cloud.writes[since:]]


def volume_maker(vu: Any, cloud: VolumeCloud) -> Any:
    return lambda p, check: vu.VolumeConvergence(cloud.volumes, cloud.images, p, check)


# ---- cloud_volume ------------------------------------------------------------------------

def test_create_grow_and_delete(vu: Any) -> None:
    cloud = VolumeCloud()
    make = volume_maker(vu, cloud)
    real = check_then_run(make, cloud, vparams(size=1, description="d", metadata={"a": 1}))
    assert real["volume"]["status"] == "available" and real["volume"]["size"] == 1
    assert real["diff"]["after"]["metadata"] == {"a": "1"}
    assert kinds(cloud) == ["volume.create_volume"]
    assert cloud.writes[0][1] == {"name": "vmod-data", "size": 1, "description": "d",
                                  "metadata": {"a": "1"}}
    n = len(cloud.writes)
    grown = check_then_run(make, cloud, vparams(size=3))
    assert grown["diff"] == {"before": {"size": 1}, "after": {"size": 3}}
    assert grown["volume"]["size"] == 3 and grown["volume"]["status"] == "available"
    assert cloud.writes[n:] == [("volume.action.os-extend", {"new_size": 3})]
    gone = check_then_run(make, cloud, vparams(state="absent"))
    assert gone["volume"] is None and gone["diff"]["before"]["size"] == 3
    assert cloud.volumes.vols == {}


def test_shrink_is_a_clear_error_and_writes_nothing(vu: Any) -> None:
    cloud = VolumeCloud()
    cloud.volumes.add(name="vmod-data", size=5)
    for check in (True, False):
        with pytest.raises(vu.StratusError, match=r"is 5 GiB and size asks for 2 GiB: a volume "
                                                  r"cannot shrink"):
            vu.VolumeConvergence(cloud.volumes, cloud.images, vparams(size=2), check).run()
    assert cloud.writes == []
    same = vu.VolumeConvergence(cloud.volumes, cloud.images, vparams(size=5), False).run()
    assert same["changed"] is False


def test_update_in_place_and_immutable_warnings(vu: Any) -> None:
    cloud = VolumeCloud()
    cloud.volumes.add(name="vmod-data", size=2, metadata={"old": "x"}, description="before")
    real = check_then_run(volume_maker(vu, cloud), cloud, vparams(
        description="after", metadata={"new": "y"}, is_bootable=True, volume_type="fast"))
    assert real["diff"] == {
        "before": {"description": "before", "metadata": {"old": "x"}, "bootable": False},
        "after": {"description": "after", "metadata": {"new": "y"}, "bootable": True}}
    assert kinds(cloud) == ["volume.update_volume", "volume.action.os-set_bootable"]
    assert any("volume_type" in w for w in real["warnings"])
    assert real["volume"]["bootable"] == "true"


def test_create_from_image_snapshot_and_volume(vu: Any) -> None:
    cloud = VolumeCloud()
    make = volume_maker(vu, cloud)
    real = check_then_run(make, cloud, vparams(name="vmod-boot", image="tiny", size=2))
    assert real["diff"]["after"]["imageRef"] == cloud.image["id"]
    assert real["volume"]["bootable"] == "true"
    src = cloud.volumes.add(name="vmod-src", size=4)
    snap = cloud.volumes.add_snapshot(name="vmod-s", volume_id=src["id"], size=4)
    from_snap = check_then_run(make, cloud, vparams(name="vmod-fs", snapshot_id="vmod-s"))
    assert from_snap["volume"]["size"] == 4 and from_snap["volume"]["snapshot_id"] == snap["id"]
    clone = check_then_run(make, cloud, vparams(name="vmod-cl", volume="vmod-src", size=6))
    assert clone["volume"]["source_volid"] == src["id"] and clone["volume"]["size"] == 6
    with pytest.raises(vu.StratusError, match="smaller than the 4 GiB"):
        make(vparams(name="vmod-small", volume="vmod-src", size=2), True).run()
    with pytest.raises(vu.StratusError, match="size is needed"):
        make(vparams(name="vmod-nosize"), True).run()
    with pytest.raises(vu.StratusError, match="Snapshot 'nope' was not found"):
        make(vparams(name="vmod-x", snapshot_id="nope"), False).run()


def test_is_bootable_false_on_an_image_volume(vu: Any) -> None:
    cloud = VolumeCloud()
    real = check_then_run(volume_maker(vu, cloud), cloud,
                          vparams(image="tiny", size=1, is_bootable=False))
    assert kinds(cloud)[-1] == "volume.action.os-set_bootable"
    assert real["volume"]["bootable"] == "false"


def test_a_volume_that_goes_to_error_is_deleted_again(vu: Any) -> None:
    cloud = VolumeCloud()
    cloud.volumes.create_result = "error"
    with pytest.raises(vu.StratusError, match=r"went to error: No valid backend was found. "
                                              "The volume was deleted again"):
        vu.VolumeConvergence(cloud.volumes, cloud.images, vparams(size=1), False).run()
    assert kinds(cloud) == ["volume.create_volume", "volume.delete_volume"]


def test_absent_of_an_attached_volume_fails_before_writing(vu: Any) -> None:
    cloud = VolumeCloud()
    cloud.volumes.add(name="vmod-data", status="in-use",
                      attachments=[{"server_id": "srv-1", "device": "/dev/vdb"}])
    with pytest.raises(vu.StratusError, match=r"attached to server.*srv-1; detach it first"):
        vu.VolumeConvergence(cloud.volumes, cloud.images, vparams(state="absent"), True).run()
    assert cloud.writes == []
    kept = cloud.volumes.add(name="vmod-kept")
    cloud.volumes.add_snapshot(name="vmod-s1", volume_id=kept["id"], size=1)
    with pytest.raises(vu.StratusError, match=r"has 1 snapshot\(s\) \(vmod-s1\); delete them"):
        vu.VolumeConvergence(cloud.volumes, cloud.images,
                             vparams(name="vmod-kept", state="absent"), True).run()
    assert cloud.writes == []
    nothing = vu.VolumeConvergence(cloud.volumes, cloud.images,
                                   vparams(name="vmod-none", state="absent"), False).run()
    assert nothing["changed"] is False


def test_two_volumes_with_the_name_fail(vu: Any) -> None:
    cloud = VolumeCloud()
    cloud.volumes.add(name="vmod-data")
    cloud.volumes.add(name="vmod-data")
    with pytest.raises(vu.StratusError, match="2 volumes are named 'vmod-data'"):
        vu.VolumeConvergence(cloud.volumes, cloud.images, vparams(size=1), True).run()


def test_info_by_name_and_filters(vu: Any) -> None:
    cloud = VolumeCloud()
    a = cloud.volumes.add(name="vmod-a")
    cloud.volumes.add(name="vmod-b", status="in-use")

    def info(**kw: Any) -> list[dict[str, Any]]:
        p = {"name": None, "status": None, "availability_zone": None, "filters": None,
             "all_projects": False, **kw}
        out = vu.VolumeInfo(cloud.volumes, p).run()
        assert out["changed"] is False
        return [v["name"] for v in out["volumes"]]

    assert sorted(info()) == ["vmod-a", "vmod-b"]
    assert info(name="vmod-a") == ["vmod-a"]
    assert info(name=a["id"]) == ["vmod-a"]
    assert info(status="in-use") == ["vmod-b"]
    assert info(name="vmod-a", status="in-use") == []
    assert info(name="nope") == []


# ---- cloud_volume_attachment -------------------------------------------------------------

def attach_maker(au: Any, cloud: VolumeCloud) -> Any:
    return lambda p, check: au.AttachmentConvergence(cloud.compute, cloud.volumes, p, check)


def test_attach_detach_and_no_change(au: Any) -> None:
    cloud = VolumeCloud()
    server = cloud.compute.add_server(name="vmod-web")
    vol = cloud.volumes.add(name="vmod-data")
    make = attach_maker(au, cloud)
    real = check_then_run(make, cloud, aparams())
    assert real["attachment"]["device"] == "/dev/vdb"
    assert real["volume"]["status"] == "in-use"
    assert real["diff"]["after"] == {"server": server["id"], "volume": vol["id"],
                                     "device": "(the next free one)"}
    assert kinds(cloud) == ["compute.attach_volume"]
    # Attached already, another device asked: no change, a warning.
    moved = make(aparams(device="/dev/vdc"), False).run()
    assert moved["changed"] is False and "as /dev/vdb, not /dev/vdc" in moved["warnings"][0]
    gone = check_then_run(make, cloud, aparams(state="absent"))
    assert gone["diff"]["before"]["device"] == "/dev/vdb"
    assert cloud.volumes.vols[vol["id"]]["status"] == "available"
    assert kinds(cloud) == ["compute.attach_volume", "compute.detach_volume"]


def test_attach_to_a_second_server_or_unavailable_fails_before_writing(au: Any) -> None:
    cloud = VolumeCloud()
    cloud.compute.add_server(name="vmod-web")
    other = cloud.compute.add_server(name="vmod-other")
    cloud.volumes.add(name="vmod-data", status="in-use",
                      attachments=[{"server_id": other["id"], "device": "/dev/vdb"}])
    with pytest.raises(au.StratusError, match=r"attached to server.*detach it there first"):
        attach_maker(au, cloud)(aparams(), False).run()
    cloud.volumes.add(name="vmod-bad", status="error")
    with pytest.raises(au.StratusError, match="is error; it can be attached once available"):
        attach_maker(au, cloud)(aparams(volume="vmod-bad"), False).run()
    with pytest.raises(au.StratusError, match="Server 'nope' was not found"):
        attach_maker(au, cloud)(aparams(server="nope"), True).run()
    assert cloud.writes == []


def test_an_attach_the_compute_api_undoes_fails_at_once(au: Any) -> None:
    cloud = VolumeCloud()
    cloud.compute.add_server(name="vmod-web")
    cloud.volumes.add(name="vmod-data")
    cloud.compute.attach_undone = True
    with pytest.raises(au.StratusError, match=r"gave up attaching volume .* the volume is "
                                              r"available"):
        attach_maker(au, cloud)(aparams(timeout=1), False).run()
    assert kinds(cloud) == ["compute.attach_volume"]


def test_attach_with_a_device(au: Any) -> None:
    cloud = VolumeCloud()
    cloud.compute.add_server(name="vmod-web")
    cloud.volumes.add(name="vmod-data")
    real = check_then_run(attach_maker(au, cloud), cloud, aparams(device="/dev/vdd"))
    assert real["attachment"]["device"] == "/dev/vdd"
    assert cloud.writes[0][1][2] == "/dev/vdd"


# ---- cloud_volume_snapshot ---------------------------------------------------------------

def snap_maker(su: Any, cloud: VolumeCloud) -> Any:
    return lambda p, check: su.SnapshotConvergence(cloud.volumes, p, check)


def test_snapshot_create_update_delete(su: Any) -> None:
    cloud = VolumeCloud()
    vol = cloud.volumes.add(name="vmod-data", size=2)
    make = snap_maker(su, cloud)
    real = check_then_run(make, cloud, sparams(description="nightly"))
    assert real["snapshot"]["status"] == "available" and real["snapshot"]["size"] == 2
    assert cloud.writes[0] == ("volume.create_snapshot", {
        "volume_id": vol["id"], "name": "vmod-snap", "force": False, "description": "nightly"})
    changed = check_then_run(make, cloud, sparams(description="weekly"))
    assert changed["diff"] == {"before": {"description": "nightly"},
                               "after": {"description": "weekly"}}
    other = cloud.volumes.add(name="vmod-other")
    warned = make(sparams(volume=other["id"]), False).run()
    assert warned["changed"] is False and "not of" in warned["warnings"][0]
    check_then_run(make, cloud, sparams(state="absent"))
    assert cloud.volumes.snaps == {}


def test_snapshot_of_an_in_use_volume_needs_force(su: Any) -> None:
    cloud = VolumeCloud()
    cloud.volumes.add(name="vmod-data", status="in-use",
                      attachments=[{"server_id": "srv-1", "device": "/dev/vdb"}])
    make = snap_maker(su, cloud)
    for check in (True, False):
        with pytest.raises(su.StratusError, match=r"is in-use.*needs force: true"):
            make(sparams(), check).run()
    assert cloud.writes == []
    real = check_then_run(make, cloud, sparams(force=True))
    assert cloud.writes[0][1]["force"] is True
    assert real["snapshot"]["status"] == "available"


def test_snapshot_needs_a_volume_to_be_made(su: Any) -> None:
    cloud = VolumeCloud()
    with pytest.raises(su.StratusError, match="volume is needed"):
        snap_maker(su, cloud)(sparams(volume=None), True).run()
    with pytest.raises(su.StratusError, match="Volume 'vmod-data' was not found"):
        snap_maker(su, cloud)(sparams(), True).run()


# ---- the client --------------------------------------------------------------------------

class FakeClient:
    """Enough of StratusClient for VolumeApi: a catalog of one type, the version document."""

    project_id = "p1"

    def __init__(self, kind: str, top: str | None) -> None:
        self.kind = kind
        self.top = top
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def endpoint(self, kind: str) -> str:
        if kind != self.kind:
            from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import (
                StratusError,
            )
            raise StratusError(f"no {kind}")
        return "http://vol:8776/v3/p1"

    def get(self, kind: str, path: str) -> dict[str, Any]:
        assert path == "http://vol:8776/v3/"
        return {"versions": [{"id": "v3.0", "version": self.top}]}

    def request(self, method: str, kind: str, path: str, **kw: Any) -> Any:
        self.calls.append((kind, path, kw["headers"]))

        class Resp:
            body = {"volumes": []}
        return Resp()


@pytest.mark.parametrize(("kind", "top", "wanted"), [
    ("block-storage", "3.60", "3.42"), ("volumev3", "3.27", "3.27"), ("volume", None, "3.0")])
def test_microversion_and_service_type(collections_path: Path, kind: str, top: str | None,
                                       wanted: str) -> None:
    api_mod = compute_utils("stratus_volume_api")
    client = FakeClient(kind, top)
    api = api_mod.VolumeApi(client)
    assert api.volumes() == []
    assert client.calls == [(kind, "/volumes/detail",
                             {"OpenStack-API-Version": f"volume {wanted}"})]
