"""The storage agent's reconcile pass with a fake tgt and the real pool (qemu-img in a temp dir).

The targets are a fake (:class:`FakeExports`, same interface as ``tgt.Tgt``); the
real tgtd is exercised in tests/integration/test_volume_agent.py. qemu-img is real
here: it is installed on every test machine and takes milliseconds.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus.agent.runner import CommandError, Runner
from stratus.agent.storage.pool import GIB, Pool, PoolError
from stratus.agent.storage.reconcile import StorageReconciler
from stratus.agent.storage.tgt import Target
from stratus.common.clients import ServiceError
from stratus.contracts.volume import (
    ExportSpec,
    SnapshotSpec,
    StorageHostState,
    UploadSpec,
    VolumeSource,
    VolumeSpec,
)

pytestmark = pytest.mark.unit

V1 = "11111111-0000-4000-8000-000000000001"
V2 = "11111111-0000-4000-8000-000000000002"
V3 = "11111111-0000-4000-8000-000000000003"
S1 = "22222222-0000-4000-8000-000000000001"
A1 = "33333333-0000-4000-8000-000000000001"
IMG = "44444444-0000-4000-8000-000000000001"
PREFIX = "iqn.2010-10.org.stratus:tv-host"


class FakeExports:
    """The targets in memory, with tgt's rules (one LUN path per target, accounts)."""

    def __init__(self) -> None:
        self.targets_: dict[str, Target] = {}
        self.accts: dict[str, str] = {}
        self.journal: set[str] = set()
        self.down = False

    def targets(self) -> list[Target]:
        if self.down:
            raise CommandError(["tgtadm"], 107, "can't send the request to the tgt daemon")
        return list(self.targets_.values())

    def ours(self, targets: list[Target] | None = None) -> dict[str, Target]:
        return {t.iqn: t for t in (targets if targets is not None else self.targets())
                if t.iqn.startswith(PREFIX + ":")}

    def accounts(self) -> set[str]:
        return set(self.accts)

    def ensure(self, spec: ExportSpec, backing: str, all_targets: list[Target],
               accounts: set[str]) -> None:
        tid = max((t.tid for t in self.targets_.values()), default=0) + 1
        t = self.targets_.setdefault(spec.target_iqn, Target(tid, spec.target_iqn))
        t.luns = {spec.lun: backing}
        self.journal.add(spec.auth_username)
        self.accts[spec.auth_username] = spec.auth_password
        t.accounts = [spec.auth_username]
        t.acls = [spec.initiator or "ALL"]

    def delete_target(self, tid: int) -> None:
        self.targets_ = {k: v for k, v in self.targets_.items() if v.tid != tid}

    def prune_accounts(self, keep: set[str], accounts: set[str] | None = None) -> list[str]:
        gone = sorted(self.journal - keep)
        for user in gone:
            self.accts.pop(user, None)
            self.journal.discard(user)
        return gone


class FakeImages:
    def __init__(self, data: dict[str, bytes]):
        self.data = data
        self.uploaded: dict[str, bytes] = {}
        self.fail_upload: ServiceError | None = None

    def fetch(self, image_id: str) -> Iterator[bytes]:
        if image_id not in self.data:
            raise ServiceError(f"image {image_id} not found", status=404)
        blob = self.data[image_id]
        for i in range(0, len(blob), 4096):
            yield blob[i:i + 4096]

    def upload(self, image_id: str, path: str) -> None:
        if self.fail_upload is not None:
            raise self.fail_upload
        self.uploaded[image_id] = Path(path).read_bytes()


@pytest.fixture
def image_qcow2(tmp_path: Path) -> bytes:
    """A small qcow2 image holding a known pattern at offset 0."""
    raw = tmp_path / "img.raw"
    raw.write_bytes(b"\x5a" * 65536 + b"\0" * (1 << 20))
    out = tmp_path / "img.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out)],
                   check=True)
    return out.read_bytes()


@pytest.fixture
def env(tmp_path: Path, image_qcow2: bytes):
    pool = Pool(tmp_path / "pool", "tv", Runner(timeout=60))
    exports = FakeExports()
    images = FakeImages({IMG: image_qcow2})
    rec = StorageReconciler(pool, exports, images, workers=2, retry_interval=0.0)
    yield pool, exports, images, rec
    rec.shutdown()


def converge(rec: StorageReconciler, state: StorageHostState):
    """A pass, its jobs, and the pass that reports them (as the loop does)."""
    rec.reconcile(state)
    rec.wait_jobs()
    return rec.reconcile(state)


def head(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def vol(vid: str, size: int = 1, fmt: str = "raw", kind: str = "blank",
        src: str | None = None) -> VolumeSpec:
    return VolumeSpec(vid, size, fmt, VolumeSource(kind, src))


def export(vid: str = V1, initiator: str | None = "iqn.2010-10.org.stratus:c1"
           ) -> ExportSpec:
    return ExportSpec(A1, vid, f"{PREFIX}:{A1}", "user-a1", "pass-a1-0123456789", 1, initiator)


def test_blank_volume_made_reported_and_removed(env):
    pool, _, _, rec = env
    report = converge(rec, StorageHostState(1, volumes=[vol(V1, 2)]))
    path = pool.volume_path(V1, "raw")
    assert path.exists() and path.stat().st_size == 2 * GIB
    assert [(v.id, v.size_gb, v.state) for v in report.volumes] == [(V1, 2, "ready")]
    report = converge(rec, StorageHostState(2))
    assert not path.exists() and report.volumes == []


def test_qcow2_volume_grows_never_shrinks(env):
    _, _, _, rec = env
    converge(rec, StorageHostState(1, volumes=[vol(V1, 1, "qcow2")]))
    report = converge(rec, StorageHostState(2, volumes=[vol(V1, 3, "qcow2")]))
    assert report.volumes[0].size_gb == 3
    report = converge(rec, StorageHostState(3, volumes=[vol(V1, 2, "qcow2")]))
    assert report.volumes[0].size_gb == 3  # the API refuses shrinks; the agent never does one


def test_volume_from_image_holds_its_data_at_the_volume_size(env, tmp_path: Path):
    pool, _, _, rec = env
    report = converge(rec, StorageHostState(1, volumes=[vol(V1, 1, "raw", "image", IMG)]))
    assert report.volumes[0].state == "ready" and report.volumes[0].size_gb == 1
    data = head(pool.volume_path(V1, "raw"), 65537)
    assert data[:65536] == b"\x5a" * 65536 and data[65536] == 0
    assert not list((tmp_path / "pool").glob("*.part"))  # the download is gone


def test_image_with_a_backing_file_is_refused(env, tmp_path: Path):
    pool, _, images, rec = env
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "1M"], check=True)
    top = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2",
                    str(top)], check=True)
    images.data["evil"] = top.read_bytes()
    report = converge(rec, StorageHostState(1, volumes=[vol(V1, 1, "raw", "image", "evil")]))
    assert [(v.id, v.state) for v in report.volumes] == [(V1, "error")]
    assert "backing file" in (report.volumes[0].fault or "")
    assert not pool.scan().volumes and not pool.scan().partials


def test_image_larger_than_the_volume_is_an_error(env, tmp_path: Path):
    _, _, images, rec = env
    big = tmp_path / "big.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "2G"], check=True)
    images.data["big"] = big.read_bytes()
    report = converge(rec, StorageHostState(1, volumes=[vol(V1, 1, "raw", "image", "big")]))
    assert report.volumes[0].state == "error"
    assert "larger than the volume's 1 GiB" in (report.volumes[0].fault or "")


def test_snapshot_and_clones_from_snapshot_and_volume(env):
    pool, _, _, rec = env
    converge(rec, StorageHostState(1, volumes=[vol(V1, 1, "raw", "image", IMG)]))
    state = StorageHostState(2, volumes=[vol(V1, 1, "raw", "image", IMG)],
                             snapshots=[SnapshotSpec(S1, V1)])
    report = converge(rec, state)
    assert [(s.id, s.state) for s in report.snapshots] == [(S1, "ready")]
    state = StorageHostState(3, volumes=[*state.volumes, vol(V2, 2, "raw", "snapshot", S1),
                                         vol(V3, 1, "qcow2", "volume", V1)],
                             snapshots=state.snapshots)
    report = converge(rec, state)
    assert {(v.id, v.size_gb, v.state) for v in report.volumes} == {
        (V1, 1, "ready"), (V2, 2, "ready"), (V3, 1, "ready")}
    assert head(pool.volume_path(V2, "raw"), 4) == b"\x5a" * 4
    out = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 0 64k",
                          str(pool.volume_path(V3, "qcow2"))], capture_output=True, text=True)
    assert out.returncode == 0 and "Pattern verification failed" not in out.stdout
    report = converge(rec, StorageHostState(4, volumes=state.volumes))
    assert report.snapshots == [] and not pool.snapshot_path(S1).exists()


def test_unfinished_and_foreign_files(env, tmp_path: Path):
    pool, _, _, rec = env
    pool.path.mkdir(parents=True, exist_ok=True)
    half = pool.path / f"tv-volume-{V1}.raw.part"
    half.write_bytes(b"x")
    download = pool.path / f"tv-download-{V2}.part"
    download.write_bytes(b"x")
    foreign = [pool.path / f"xx-volume-{V3}.raw", pool.path / "notes.txt",
               pool.path / f"volume-{V3}.raw"]
    for f in foreign:
        f.write_bytes(b"keep")
    orphan = pool.path / f"tv-volume-{V3}.raw"
    orphan.write_bytes(b"")
    report = converge(rec, StorageHostState(1))
    assert not half.exists() and not download.exists() and not orphan.exists()
    assert all(f.read_bytes() == b"keep" for f in foreign)
    assert report.volumes == []


def test_export_made_reported_and_removed_with_its_account(env):
    pool, exports, _, rec = env
    exports.targets_["iqn.other:keep"] = Target(1, "iqn.other:keep", {1: "/x"})
    state = StorageHostState(1, volumes=[vol(V1)], exports=[export()])
    report = converge(rec, state)
    assert [(e.attachment_id, e.state) for e in report.exports] == [(A1, "ready")]
    t = exports.targets_[f"{PREFIX}:{A1}"]
    assert t.luns == {1: str(pool.volume_path(V1, "raw"))}
    assert t.accounts == ["user-a1"] and t.acls == ["iqn.2010-10.org.stratus:c1"]
    # the export leaves the desired state: target and account go, the volume stays
    report = converge(rec, StorageHostState(2, volumes=[vol(V1)]))
    assert report.exports == [] and list(exports.targets_) == ["iqn.other:keep"]
    assert exports.accts == {} and pool.volume_path(V1, "raw").exists()


def test_exported_volume_is_not_deleted_until_its_export_goes(env):
    pool, exports, _, rec = env
    converge(rec, StorageHostState(1, volumes=[vol(V1)], exports=[export()]))
    converge(rec, StorageHostState(2, exports=[export()]))
    assert pool.volume_path(V1, "raw").exists()
    converge(rec, StorageHostState(3))
    assert not pool.volume_path(V1, "raw").exists() and not exports.targets_


def test_export_errors_name_the_reason(env):
    _, exports, _, rec = env
    report = converge(rec, StorageHostState(1, volumes=[vol(V1, fmt="qcow2")],
                                            exports=[export(V1), export(V2)]))
    faults = {e.fault for e in report.exports}
    assert any("raw files only" in (f or "") for f in faults)
    assert any(f"volume {V2} is not on this host" in (f or "") for f in faults)
    exports.down = True
    report = rec.reconcile(StorageHostState(2, volumes=[vol(V1)], exports=[export()]))
    assert report.exports[0].state == "error" and "tgtd" in (report.exports[0].fault or "")


def test_upload_converts_and_reports_done_once(env):
    _, _, images, rec = env
    vols = [vol(V1, 1, "raw", "image", IMG)]
    converge(rec, StorageHostState(1, volumes=vols))
    up = UploadSpec(V1, "img-2", "qcow2")
    report = converge(rec, StorageHostState(2, volumes=vols, uploads=[up]))
    assert [(u.image_id, u.state) for u in report.uploads] == [("img-2", "done")]
    assert images.uploaded["img-2"][:4] == b"QFI\xfb"
    report = converge(rec, StorageHostState(3, volumes=vols))
    assert report.uploads == [] and not rec.uploads_done


def test_upload_refused_format_is_an_error(env):
    _, _, _, rec = env
    vols = [vol(V1)]
    converge(rec, StorageHostState(1, volumes=vols))
    report = converge(rec, StorageHostState(2, volumes=vols,
                                            uploads=[UploadSpec(V1, "img-3", "ploop")]))
    assert report.uploads[0].state == "error" and "ploop" in (report.uploads[0].fault or "")


def test_missing_image_is_an_error_and_a_new_spec_retries(env):
    _, _, images, rec = env
    report = converge(rec, StorageHostState(1, volumes=[vol(V1, 1, "raw", "image", "nope")]))
    assert report.volumes[0].state == "error" and "not found" in (report.volumes[0].fault or "")
    # the volume is deleted (the fault is forgotten), the image appears, a new create works
    converge(rec, StorageHostState(2))
    images.data["nope"] = images.data[IMG]
    report = converge(rec, StorageHostState(3, volumes=[vol(V1, 1, "raw", "image", "nope")]))
    assert report.volumes[0].state == "ready"


def test_ids_that_cannot_be_file_names_are_refused(env):
    pool, _, _, rec = env
    with pytest.raises(PoolError, match="cannot carry"):
        pool.volume_path("../../etc/passwd", "raw")
    report = converge(rec, StorageHostState(1, volumes=[vol("../x")]))
    assert report.volumes[0].state == "error"


def test_a_failed_removal_is_reported_as_an_error(env, monkeypatch: pytest.MonkeyPatch):
    pool, _, _, rec = env
    converge(rec, StorageHostState(1, volumes=[vol(V1)]))

    def refuse(volume_id: str, fmt: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pool, "delete_volume", refuse)
    report = converge(rec, StorageHostState(2))
    assert [(v.id, v.state) for v in report.volumes] == [(V1, "error")]
    assert "Permission denied" in (report.volumes[0].fault or "")
    monkeypatch.undo()
    report = converge(rec, StorageHostState(3))
    assert report.volumes == []
