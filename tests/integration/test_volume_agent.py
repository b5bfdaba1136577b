"""The storage agent's pass against a REAL tgtd, real qemu-img, and qemu-io as the iSCSI initiator.

The desired state is given as contract documents (``StorageHostState``) straight to
the reconcile pass; the volume API is not involved here. A tgtd of this test runs
on its own control port and its own portal on 127.0.0.1 (never the user's tgtd),
started and stopped by its pid. Every host object carries the prefix ``tv``: pool
files ``/tmp/tv-*/tv-…``, targets ``iqn.2010-10.org.stratus:tv-…``.
The kill -9 test runs the pass in a child process and kills it while it writes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import IdentityServer, ImageServer
from stratus.agent.runner import Runner
from stratus.agent.storage.pool import Pool
from stratus.agent.storage.reconcile import StorageReconciler
from stratus.agent.storage.tgt import AccountJournal, Tgt
from stratus.contracts.volume import (
    ExportSpec,
    SnapshotSpec,
    StorageHostState,
    VolumeSource,
    VolumeSpec,
)

pytestmark = pytest.mark.integration

IQN_PREFIX = "iqn.2010-10.org.stratus:tv-host"
INITIATOR = "iqn.2010-10.org.stratus:tv-compute"
V1 = "a0000000-0000-4000-8000-000000000001"
V2 = "a0000000-0000-4000-8000-000000000002"
V3 = "a0000000-0000-4000-8000-000000000003"
S1 = "b0000000-0000-4000-8000-000000000001"
A1 = "c0000000-0000-4000-8000-000000000001"
IMG = "d0000000-0000-4000-8000-000000000001"

needs_tools = pytest.mark.skipif(
    not (shutil.which("tgtd") and shutil.which("qemu-io")
         and Path("/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so").exists()),
    reason="needs tgt and qemu-block-extra (scripts/install-test-deps.sh)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tgtd:
    """A tgtd of this test: own control port, own portal, stopped by pid."""

    def __init__(self, workdir: Path):
        self.control = 2000 + os.getpid() % 20000
        self.portal = _free_port()
        self.log = open(workdir / "tgtd.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["tgtd", "-f", "-C", str(self.control), "--iscsi",
             f"portal=127.0.0.1:{self.portal}"], stdout=self.log, stderr=self.log,
            start_new_session=True)
        for _ in range(100):
            if subprocess.run(["tgtadm", "-C", str(self.control), "--op", "show", "--mode",
                               "sys"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("tgtd did not answer on its control port")

    def show(self) -> str:
        return subprocess.run(["tgtadm", "-C", str(self.control), "--lld", "iscsi", "--op",
                               "show", "--mode", "target"], capture_output=True, text=True,
                              check=True).stdout

    def accounts(self) -> str:
        return subprocess.run(["tgtadm", "-C", str(self.control), "--lld", "iscsi", "--op",
                               "show", "--mode", "account"], capture_output=True, text=True,
                              check=True).stdout

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()


class Images:
    def __init__(self, data: dict[str, bytes]):
        self.data = data

    def fetch(self, image_id: str) -> Iterator[bytes]:
        yield self.data[image_id]

    def upload(self, image_id: str, path: str) -> None:
        self.data[image_id] = Path(path).read_bytes()


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="tv-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tgtd(workdir: Path) -> Iterator[Tgtd]:
    if not shutil.which("tgtd"):
        pytest.skip("tgtd is not installed (scripts/install-test-deps.sh)")
    t = Tgtd(workdir)
    yield t
    t.stop()


@pytest.fixture
def image(workdir: Path) -> bytes:
    raw = workdir / "src.raw"
    raw.write_bytes(b"\xa5" * (1 << 20) + b"\0" * (3 << 20))
    out = workdir / "src.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out)],
                   check=True)
    return out.read_bytes()


def make_reconciler(workdir: Path, tgtd: Tgtd, image: bytes) -> StorageReconciler:
    pool = Pool(workdir / "pool", "tv", Runner(timeout=300))
    tgt = Tgt(Runner(timeout=30), IQN_PREFIX,
              AccountJournal(workdir / "pool" / "tv-tgt-accounts.json"),
              control_port=tgtd.control)
    return StorageReconciler(pool, tgt, Images({IMG: image}), workers=2, retry_interval=0.0)


def converge(rec: StorageReconciler, state: StorageHostState):
    rec.reconcile(state)
    rec.wait_jobs()
    return rec.reconcile(state)


def qemu_io(portal: int, password: str, *cmds: str, initiator: str = INITIATOR
            ) -> subprocess.CompletedProcess[str]:
    opts = (f"driver=iscsi,transport=tcp,portal=127.0.0.1:{portal},"
            f"target={IQN_PREFIX}:{A1},lun=1,user=user-{A1[:8]},password-secret=sec0,"
            f"initiator-name={initiator}")
    argv = ["qemu-io", "--object", f"secret,id=sec0,data={password}", "--image-opts", opts]
    for c in cmds:
        argv += ["-c", c]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def vol(vid: str, size: int, kind: str = "blank", src: str | None = None) -> VolumeSpec:
    return VolumeSpec(vid, size, "raw", VolumeSource(kind, src))


@needs_tools
def test_volumes_snapshot_clone_and_chap_export_through_real_tgt(workdir, tgtd, image):
    rec = make_reconciler(workdir, tgtd, image)
    try:
        pool = rec.pool
        vols = [vol(V1, 1), vol(V2, 1, "image", IMG)]
        report = converge(rec, StorageHostState(1, volumes=vols))
        assert {(v.id, v.size_gb, v.state) for v in report.volumes} == {
            (V1, 1, "ready"), (V2, 1, "ready")}
        # grow, snapshot, clone from the snapshot
        vols = [vol(V1, 2), vol(V2, 1, "image", IMG)]
        snaps = [SnapshotSpec(S1, V2)]
        report = converge(rec, StorageHostState(2, volumes=vols, snapshots=snaps))
        assert {(v.id, v.size_gb) for v in report.volumes} == {(V1, 2), (V2, 1)}
        assert [(s.id, s.state) for s in report.snapshots] == [(S1, "ready")]
        vols.append(vol(V3, 1, "snapshot", S1))
        report = converge(rec, StorageHostState(3, volumes=vols, snapshots=snaps))
        assert (V3, 1, "ready") in {(v.id, v.size_gb, v.state) for v in report.volumes}

        # export the clone with CHAP to one initiator; read the image's data through iSCSI
        password = "tv-secret-0123456789"
        exp = ExportSpec(A1, V3, f"{IQN_PREFIX}:{A1}", f"user-{A1[:8]}", password, 1,
                         INITIATOR)
        state = StorageHostState(4, volumes=vols, snapshots=snaps, exports=[exp])
        report = converge(rec, state)
        assert [(e.attachment_id, e.state) for e in report.exports] == [(A1, "ready")]
        shown = tgtd.show()
        assert f"{IQN_PREFIX}:{A1}" in shown and str(pool.volume_path(V3, "raw")) in shown
        ok = qemu_io(tgtd.portal, password, "read -P 0xa5 0 1M", "write -P 0x3c 2M 64k",
                     "read -P 0x3c 2M 64k")
        assert ok.returncode == 0 and "failed" not in ok.stdout + ok.stderr, ok.stderr
        with open(pool.volume_path(V3, "raw"), "rb") as fh:
            fh.seek(2 << 20)
            assert fh.read(65536) == b"\x3c" * 65536
        bad = qemu_io(tgtd.portal, "wrong-password-000", "read 0 4k")
        assert bad.returncode != 0 and "Authentication failure" in bad.stderr
        other = qemu_io(tgtd.portal, password, "read 0 4k", initiator=INITIATOR + "-x")
        assert other.returncode != 0
        # a second pass changes nothing
        before = tgtd.show()
        converge(rec, state)
        assert tgtd.show() == before

        # the export goes: target and CHAP account gone; then everything goes
        converge(rec, StorageHostState(5, volumes=vols, snapshots=snaps))
        assert f"{IQN_PREFIX}:{A1}" not in tgtd.show()
        assert f"user-{A1[:8]}" not in tgtd.accounts()
        report = converge(rec, StorageHostState(6))
        assert report.volumes == [] and report.snapshots == []
        assert not list((workdir / "pool").glob("tv-*.raw"))
        assert not list((workdir / "pool").glob("tv-*.qcow2"))
    finally:
        rec.shutdown()


CHILD = """
import sys, time
from pathlib import Path
from stratus.agent.runner import Runner
from stratus.agent.storage.pool import Pool
from stratus.agent.storage.reconcile import StorageReconciler
from stratus.agent.storage.tgt import AccountJournal, Tgt
from stratus.contracts.volume import StorageHostState, VolumeSpec, VolumeSource

workdir, control, iqn, img = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

class SlowImages:
    def fetch(self, image_id):
        while True:  # an endless download: killed mid-create
            yield b"\\xa5" * 65536
            time.sleep(0.01)
    def upload(self, image_id, path):
        pass

pool = Pool(Path(workdir) / "pool", "tv", Runner(timeout=300))
tgt = Tgt(Runner(timeout=30), iqn, AccountJournal(Path(workdir) / "pool" / "tv-tgt-accounts.json"),
          control_port=control)
rec = StorageReconciler(pool, tgt, SlowImages())
rec.reconcile(StorageHostState(1, volumes=[VolumeSpec(img, 1, "raw", VolumeSource("image", "x"))]))
rec.wait_jobs()
"""


@needs_tools
def test_kill_9_mid_create_and_half_made_export_leave_nothing(workdir, tgtd, image):
    pool_dir = workdir / "pool"
    pool_dir.mkdir()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(workdir), str(tgtd.control),
                              IQN_PREFIX, V1], start_new_session=True)
    try:
        part = pool_dir / f"tv-download-{V1}.part"
        for _ in range(200):
            if part.exists() and part.stat().st_size > 0:
                break
            time.sleep(0.05)
        assert part.exists(), "the child never started its download"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    # a half-made export as a kill -9 leaves it: a target with its LUN, an account made
    # (journaled) but never bound
    adm = ["tgtadm", "-C", str(tgtd.control), "--lld", "iscsi"]
    (pool_dir / f"tv-volume-{V2}.raw").write_bytes(b"\0" * 4096)
    subprocess.run([*adm, "--op", "new", "--mode", "target", "--tid", "1", "-T",
                    f"{IQN_PREFIX}:{A1}"], check=True)
    subprocess.run([*adm, "--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1",
                    "-b", str(pool_dir / f"tv-volume-{V2}.raw")], check=True)
    AccountJournal(pool_dir / "tv-tgt-accounts.json").save({"tv-half": "x"})
    subprocess.run([*adm, "--op", "new", "--mode", "account", "--user", "tv-half",
                    "--password", "tv-half-password"], check=True)
    # someone else's target in the same tgtd is never touched
    subprocess.run([*adm, "--op", "new", "--mode", "target", "--tid", "7", "-T",
                    "iqn.2010-10.org.other:tv-keep"], check=True)

    rec = make_reconciler(workdir, tgtd, image)
    try:
        report = converge(rec, StorageHostState(2))
        assert report.volumes == [] and report.exports == []
        assert sorted(p.name for p in pool_dir.iterdir()) == ["tv-tgt-accounts.json"]
        shown = tgtd.show()
        assert f"{IQN_PREFIX}:{A1}" not in shown and "iqn.2010-10.org.other:tv-keep" in shown
        assert "tv-half" not in tgtd.accounts()
        # the create that was killed is finished by the next passes when still wanted
        report = converge(rec, StorageHostState(3, volumes=[vol(V1, 1, "image", IMG)]))
        assert [(v.id, v.state) for v in report.volumes] == [(V1, "ready")]
    finally:
        rec.shutdown()


# --- the whole path: real identity, image and volume APIs, the agent's console script ----------
AGENT_HOST = "tvstor"


def _wait_status(client: Any, path: str, key: str, want: set[str], timeout: float = 90.0
                 ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = client.call("GET", path)
        if resp.status_code == 404 and "deleted" in want:
            return {"status": "deleted"}
        assert resp.status_code == 200, resp.text
        body = dict(resp.json()[key])
        if body["status"] in want:
            return body
        assert "error" not in body["status"], body
        time.sleep(0.3)
    raise AssertionError(f"{path} stayed {body.get('status')}, wanted {want}")


class AgentProcess:
    """stratus-storage-agent (the console script) with its own config, stopped by pid."""

    def __init__(self, root: Path, conf: str):
        self.root = root
        self.conf = root / "agent.conf"
        self.conf.write_text(conf)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.root / "agent.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "stratus-storage-agent"), "--config-file",
             str(self.conf)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@needs_tools
def test_volume_api_and_agent_end_to_end(workdir, tgtd, image):
    """Volumes made through the volume API by the agent process: blank, from an image,
    extended, snapshot and a clone of it, an attachment whose connection_info qemu-io
    uses, deletion; a killed agent's create is finished by its restart."""
    volume_api = pytest.importorskip("volume_api", reason="tests/volume_api.py (V-api)")

    identity = IdentityServer(workdir / "identity", f"sqlite:///{workdir}/identity.sqlite")
    identity.prepare()
    identity.start()
    images = ImageServer(workdir / "image", identity)
    vols = volume_api.VolumeServer(workdir / "volume", f"sqlite:///{workdir}/volume.sqlite",
                                   identity)
    agent: AgentProcess | None = None
    client = None
    try:
        images.prepare()
        images.start()
        vols.image_url = images.url
        vols.prepare()
        vols.start()
        svc_pw = "tv-agent-" + os.urandom(6).hex()
        subprocess.run([str(Path(sys.executable).parent / "stratus-manage"), "service-user",
                        "ensure", "--name", "tv-storage-agent"],
                       env={**identity.env, "STRATUS_SERVICE_PASSWORD": svc_pw}, check=True,
                       capture_output=True)
        token = identity.token()
        info = httpx.get(f"{identity.url}/v3/auth/tokens",
                         headers={"X-Auth-Token": token, "X-Subject-Token": token}).json()
        project = info["token"]["project"]["id"]
        # an image in the image API (qcow2 holding 1 MiB of 0xa5)
        h = {"X-Auth-Token": token}
        img = httpx.post(f"{images.url}/v2/images", headers=h, json={
            "name": "tv-img", "disk_format": "qcow2", "container_format": "bare"}).json()
        put = httpx.put(f"{images.url}/v2/images/{img['id']}/file", content=image,
                        headers={**h, "Content-Type": "application/octet-stream"})
        assert put.status_code == 204, put.text

        pool = workdir / "agent-pool"
        agent = AgentProcess(workdir, (
            "[DEFAULT]\ndeploy_prefix = tv\n[storage_agent]\n"
            f"host = {AGENT_HOST}\nvolume_url = {vols.url}\nimage_url = {images.url}\n"
            f"identity_url = {identity.url}/v3\nusername = tv-storage-agent\n"
            f"password = {svc_pw}\npool_path = {pool}\nportal_ip = 127.0.0.1\n"
            f"portal_port = {tgtd.portal}\ntgt_control_port = {tgtd.control}\n"
            "report_interval = 1\nresync_interval = 2\npoll_wait = 5\nretry_interval = 1\n"))
        agent.start()
        client = volume_api.VolumeClient(vols.url, token, project)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            hosts = client.call("GET", "/v3/storage/hosts").json().get("hosts", [])
            if any(x["host"] == AGENT_HOST for x in hosts):
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the agent never registered: " + (workdir / "agent.log")
                                 .read_text(errors="replace")[-3000:])

        def create(**body: object) -> dict[str, Any]:
            resp = client.call("POST", "/volumes", json={"volume": {"size": 1, **body}})
            assert resp.status_code == 202, resp.text
            vid = resp.json()["volume"]["id"]
            return _wait_status(client, f"/volumes/{vid}", "volume", {"available"})

        def path_of(vid: str) -> Path:
            return pool / f"tv-volume-{vid}.raw"

        blank = create(name="tv-blank")
        assert path_of(blank["id"]).stat().st_size == 1 << 30
        from_image = create(name="tv-img", imageRef=img["id"])
        with open(path_of(from_image["id"]), "rb") as fh:
            assert fh.read(1 << 20) == b"\xa5" * (1 << 20)
        assert from_image["bootable"] == "true"
        # upload to an image (raw): the image holds the volume's data
        resp = client.call("POST", f"/volumes/{from_image['id']}/action", json={
            "os-volume_upload_image": {"image_name": "tv-up", "disk_format": "raw"}})
        assert resp.status_code == 202, resp.text
        up_id = resp.json()["os-volume_upload_image"]["image_id"]
        _wait_status(client, f"/volumes/{from_image['id']}", "volume", {"available"})
        got = httpx.get(f"{images.url}/v2/images/{up_id}", headers=h).json()
        assert got["status"] == "active" and got["size"] == 1 << 30, got
        with httpx.stream("GET", f"{images.url}/v2/images/{up_id}/file", headers=h) as r:
            first = next(r.iter_bytes(1 << 20))
        assert first[:65536] == b"\xa5" * 65536
        # extend while detached
        resp = client.call("POST", f"/volumes/{blank['id']}/action",
                           json={"os-extend": {"new_size": 2}})
        assert resp.status_code == 202, resp.text
        grown = _wait_status(client, f"/volumes/{blank['id']}", "volume", {"available"})
        assert grown["size"] == 2 and path_of(blank["id"]).stat().st_size == 2 << 30
        # snapshot, and a volume from it
        resp = client.call("POST", "/snapshots",
                           json={"snapshot": {"volume_id": from_image["id"], "name": "tv-s"}})
        assert resp.status_code == 202, resp.text
        snap = _wait_status(client, f"/snapshots/{resp.json()['snapshot']['id']}", "snapshot",
                            {"available"})
        clone = create(name="tv-clone", snapshot_id=snap["id"])
        with open(path_of(clone["id"]), "rb") as fh:
            assert fh.read(1 << 20) == b"\xa5" * (1 << 20)

        # attach: connection_info from the attachments API, used by qemu-io over iSCSI
        resp = client.call("POST", "/attachments", json={"attachment": {
            "volume_uuid": clone["id"], "instance_uuid": str(uuid.uuid4()), "mode": "rw"}})
        assert resp.status_code == 200, resp.text
        att = resp.json()["attachment"]
        resp = client.call("PUT", f"/attachments/{att['id']}", json={"attachment": {
            "connector": {"initiator": INITIATOR, "host": "tv-compute", "ip": "127.0.0.1",
                          "platform": "x86_64", "os_type": "linux", "multipath": False}}})
        assert resp.status_code == 200, resp.text
        data = resp.json()["attachment"]["connection_info"]["data"]
        portal = data["target_portal"]
        assert portal == f"127.0.0.1:{tgtd.portal}"
        opts = (f"driver=iscsi,transport=tcp,portal={portal},target={data['target_iqn']},"
                f"lun={data['target_lun']},user={data['auth_username']},"
                f"password-secret=sec0,initiator-name={INITIATOR}")
        out = subprocess.run(["qemu-io", "--object",
                              f"secret,id=sec0,data={data['auth_password']}", "--image-opts",
                              opts, "-c", "read -P 0xa5 0 1M"], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0 and "failed" not in out.stdout, out.stdout + out.stderr
        resp = client.call("DELETE", f"/attachments/{att['id']}")
        assert resp.status_code == 200, resp.text
        _wait_status(client, f"/volumes/{clone['id']}", "volume", {"available"})
        deadline = time.monotonic() + 30
        while data["target_iqn"] in tgtd.show() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert data["target_iqn"] not in tgtd.show()

        # a create while the agent is dead stays creating; the restarted agent makes it
        agent.kill()
        resp = client.call("POST", "/volumes", json={"volume": {"size": 1, "name": "tv-late"}})
        assert resp.status_code == 202, resp.text
        late = resp.json()["volume"]["id"]
        assert client.call("GET", f"/volumes/{late}").json()["volume"]["status"] == "creating"
        agent.start()
        _wait_status(client, f"/volumes/{late}", "volume", {"available"})

        # delete everything: the files go
        assert client.call("DELETE", f"/snapshots/{snap['id']}").status_code == 202
        _wait_status(client, f"/snapshots/{snap['id']}", "snapshot", {"deleted"})
        for vid in (blank["id"], from_image["id"], clone["id"], late):
            resp = client.call("DELETE", f"/volumes/{vid}")
            assert resp.status_code == 202, resp.text
        for vid in (blank["id"], from_image["id"], clone["id"], late):
            _wait_status(client, f"/volumes/{vid}", "volume", {"deleted"})
            assert not path_of(vid).exists()
        assert not [p for p in pool.iterdir() if p.name != "tv-tgt-accounts.json"]
    finally:
        if client is not None:
            client.close()
        if agent is not None:
            agent.stop()
        vols.stop()
        images.stop()
        identity.stop()
