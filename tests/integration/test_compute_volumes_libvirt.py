"""Volume hot-plug with REAL libvirt, qemu (TCG, the tiny guest) and a REAL tgtd.

The test starts its own tgtd (control port 61, portal 127.0.0.1:13261) with one target
(``iqn.2010-10.org.stratus-test:tvc-…``, a file-backed LUN, CHAP, only the compute host's
initiator name allowed), boots the tiny guest as domain ``tvc-<id>`` through the libvirt
driver, and converges the agent's volume step (``agent/compute/volumes.py``) with an
assignment carrying the block device and the connection_info the volume API would give:
the network disk appears in the live domain, qemu holds an iSCSI session with the
initiator name and has the drive open in its block layer; dropping the block device unplugs it and
removes its secret; a leftover secret of the agent's prefix is swept, another is not.
The first test also grows the plugged disk after the LUN is made again at a larger size
(an extend while attached), and kills the agent's volume step (a forked child armed with
a crash point, SIGKILL) after the secret, after the plug and after the unplug: the next
pass finishes it, nothing is plugged twice, no secret is left.

In the first test the volume API is not involved (the connection_info is written by the
test, as the volume API would answer it). The second runs the whole chain: the compute
API in-process (its volume client finds the volume API in a real identity's catalog,
as the admin service user), a real ``stratus-volume`` (tests/volume_api.py) and a real
``stratus-storage-agent`` exporting through this tgtd; the agent's volume step is driven
from the compute API's assignment, and its report completes or deletes the attachment;
then boot from volume through the compute API and the compute agent's loop.
The data path is iSCSI through QEMU's own initiator in both (not the pool file).
Host objects carry ``tvc``: domains ``tvc-``, secrets ``tvc-volume-``/``tvc-other-``,
targets ``iqn.2010-10.org.stratus-test:tvc-…``, files ``/tmp/tvc-*``; tgtd, the storage
agent, identity and the volume API are stopped by their pids.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import SystemLibvirt
from stratus.agent.compute.reconcile import ComputeAgent
from stratus.agent.compute.state import AgentSettings
from stratus.agent.compute.virt.base import InstanceSpec
from stratus.agent.compute.virt.libvirt import LibvirtDriver
from stratus.agent.compute.virt.volumes import parse_capacity, parse_secret_list, secret_xml
from stratus.agent.compute.volumes import boot_volume, converge_volumes, sweep_secrets
from stratus.agent.ip_lib import IpLib
from stratus.agent.runner import Runner
from stratus.common.config import Config
from stratus.common.crashpoints import arm
from stratus.contracts.compute import Assignment, AssignmentSet, BlockDevice, ServerReport

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
URI = "qemu:///system"
PREFIX = "tvc-"
CONTROL_PORT = "61"
PORTAL = ("127.0.0.1", 13261)
INITIATOR = "iqn.2010-10.org.stratus:tvc-host"


def virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True)


def tgtadm(*args: str, check: bool = True) -> str:
    done = subprocess.run(["tgtadm", "-C", CONTROL_PORT, "--lld", "iscsi", *args],
                          capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"tgtadm {args}: {done.stderr}")
    return done.stdout


def our_secrets() -> dict[str, str]:
    return {u: i for u, i in parse_secret_list(virsh("secret-list").stdout).items()
            if u.startswith(PREFIX)}


def cleanup_libvirt() -> None:
    names = virsh("list", "--all", "--name").stdout.split()
    for name in names:
        if name.startswith(PREFIX):
            virsh("destroy", name)
            virsh("undefine", "--managed-save", "--nvram", name)
    for secret_uuid in our_secrets().values():
        virsh("secret-undefine", secret_uuid)


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def host() -> Iterator[dict[str, Any]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (libvirt, tgtd)")
    for tool in ("virsh", "qemu-img", "qemu-system-x86_64", "tgtd", "tgtadm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not any(Path(d).glob("block-iscsi.so") for d in ("/usr/lib/x86_64-linux-gnu/qemu",)):
        pytest.skip("qemu-block-extra (QEMU's iSCSI client) is not installed")
    kvm = Path("/dev/kvm")
    if kvm.exists():
        shutil.chown(kvm, group="kvm")
        kvm.chmod(0o660)
    libvirt = SystemLibvirt()
    libvirt.ensure()
    built = subprocess.run(["bash", str(REPO / "tests/images/build-tiny.sh")],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    image = REPO / "tests/images/cache/tiny.qcow2"
    work = Path(tempfile.mkdtemp(prefix="tvc-"))
    work.chmod(0o755)  # qemu runs as libvirt-qemu
    cleanup_libvirt()
    log = (work / "tgtd.log").open("w")
    tgtd = subprocess.Popen(["tgtd", "-f", "-C", CONTROL_PORT, "--iscsi",
                             f"portal={PORTAL[0]}:{PORTAL[1]}"], stdout=log, stderr=log)
    try:
        wait_for(lambda: subprocess.run(
            ["tgtadm", "-C", CONTROL_PORT, "--mode", "sys", "--op", "show"],
            capture_output=True).returncode == 0, 20, "tgtd's control port")
        yield {"image": image, "work": work}
    finally:
        cleanup_libvirt()
        tgtd.send_signal(signal.SIGTERM)
        try:
            tgtd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            tgtd.kill()
            tgtd.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
        libvirt.stop()


def make_target(work: Path, name: str) -> dict[str, Any]:
    """One target with a 64 MiB LUN, CHAP, and only INITIATOR allowed (as the storage
    agent exports an attachment)."""
    iqn = f"iqn.2010-10.org.stratus-test:{PREFIX}{name}"
    backing = work / f"{name}.img"
    with backing.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    user, password = f"{PREFIX}u{name[:8]}", uuid.uuid4().hex[:16]
    tgtadm("--mode", "target", "--op", "new", "--tid", "1", "-T", iqn)
    tgtadm("--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", "1",
           "-b", str(backing))
    tgtadm("--mode", "account", "--op", "new", "--user", user, "--password", password)
    tgtadm("--mode", "account", "--op", "bind", "--tid", "1", "--user", user)
    tgtadm("--mode", "target", "--op", "bind", "--tid", "1", "--initiator-name", INITIATOR)
    return {"iqn": iqn, "user": user, "password": password}


def test_hot_plug_and_unplug_an_iscsi_volume(host: dict[str, Any]) -> None:
    work: Path = host["work"]
    sid = str(uuid.uuid4())
    runner = Runner(timeout=120)
    driver = LibvirtDriver(runner, IpLib(runner), str(work / "instances"),
                           domain_prefix=PREFIX, virt_type="qemu", poll_interval=0.2)
    domain = f"{PREFIX}{sid}"
    spec = InstanceSpec(sid, "tvc-guest", 1, 128, 0, str(host["image"]), "qcow2")
    driver.prepare_disks(spec)
    driver.define(spec)
    driver.power_on(sid)
    console = work / "instances" / sid / "console.log"
    # the kernel is up (ACPI PCI hotplug ready) once it runs init
    wait_for(lambda: console.exists() and b"Run /init" in console.read_bytes(), 180,
             "the tiny guest's kernel to run init")

    target = make_target(work, sid[:8])
    volume_id, aid = str(uuid.uuid4()), str(uuid.uuid4())
    device = BlockDevice(volume_id=volume_id, attachment_id=aid, device="vdb",
                         initiator=INITIATOR, connection_info={
                             "driver_volume_type": "iscsi", "data": {
                                 "target_iqn": target["iqn"],
                                 "target_portal": f"{PORTAL[0]}:{PORTAL[1]}",
                                 "target_lun": 1, "auth_method": "CHAP",
                                 "auth_username": target["user"],
                                 "auth_password": target["password"],
                                 "volume_id": volume_id}})
    wanted = Assignment(id=sid, vm_state="active", block_devices=[device])

    assert converge_volumes(driver, wanted) == [aid]
    # in the live domain and its definition, a network disk through QEMU's initiator
    blk = virsh("domblklist", domain).stdout
    assert "vdb" in blk and f"{target['iqn']}/1" in blk, blk
    assert "vdb" in virsh("domblklist", "--inactive", domain).stdout
    assert f"{PREFIX}volume-{aid}" in our_secrets()
    assert target["password"] not in virsh("dumpxml", domain).stdout
    # qemu holds the iSCSI session, logged in with the compute host's initiator name
    shown = tgtadm("--mode", "target", "--op", "show")
    assert f"Initiator: {INITIATOR}" in shown, shown
    # qemu has the iSCSI drive open (its block layer, not only the domain XML); the tiny
    # guest lowers its console log level, so its kernel's "[vdb]" line is not checked
    block = virsh("qemu-monitor-command", "--hmp", domain, "info block").stdout
    assert "iscsi" in block and target["iqn"] in block, block
    # a second pass changes nothing
    assert converge_volumes(driver, wanted) == [aid]

    # extended while attached: until the LUN shows the new size QEMU refuses to grow
    # (retried next pass); once the LUN is made again (as the storage agent does), the
    # pass has QEMU re-read the capacity and the running domain's disk is 1 GiB
    def capacity() -> int | None:
        return parse_capacity(virsh("domblkinfo", domain, "vdb").stdout)
    assert capacity() == 64 * 1024 * 1024
    grown = Assignment(id=sid, vm_state="active",
                       block_devices=[dataclasses.replace(device, size_gb=1)])
    os.truncate(work / f"{sid[:8]}.img", 1024 ** 3)
    assert converge_volumes(driver, grown) == [aid]
    assert capacity() == 64 * 1024 * 1024
    tgtadm("--mode", "logicalunit", "--op", "delete", "--tid", "1", "--lun", "1")
    tgtadm("--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", "1",
           "-b", str(work / f"{sid[:8]}.img"))
    assert converge_volumes(driver, grown) == [aid]
    assert capacity() == 1024 ** 3
    assert f"Initiator: {INITIATOR}" in tgtadm("--mode", "target", "--op", "show")

    # kill -9 of the agent in the middle of an attach or a detach
    crash_steps(driver, work, domain, target["iqn"], wanted)

    # leftovers: a secret of ours nothing uses is swept, another prefix's is kept
    leak_id = str(uuid.uuid4())
    for usage in (f"{PREFIX}volume-{leak_id}", f"{PREFIX}other-{leak_id}"):
        xml = work / "secret.xml"
        xml.write_text(secret_xml(usage, leak_id))
        assert virsh("secret-define", str(xml)).returncode == 0
    assert sweep_secrets(driver, [wanted]) == [leak_id]
    assert set(our_secrets()) == {f"{PREFIX}volume-{aid}", f"{PREFIX}other-{leak_id}"}

    # unplug: gone from the live domain and its definition, the secret removed
    assert converge_volumes(driver, Assignment(id=sid, vm_state="active")) == []
    assert "vdb" not in virsh("domblklist", domain).stdout
    assert "vdb" not in virsh("domblklist", "--inactive", domain).stdout
    assert f"{PREFIX}volume-{aid}" not in our_secrets()
    wait_for(lambda: f"Initiator: {INITIATOR}" not in tgtadm("--mode", "target", "--op",
                                                              "show"),
             30, "qemu to log out of the target")
    driver.destroy(sid, [])
    tgtadm("--mode", "target", "--op", "delete", "--force", "--tid", "1")
    virsh("secret-undefine", our_secrets()[f"{PREFIX}other-{leak_id}"])


def test_boot_from_an_iscsi_root_volume(host: dict[str, Any]) -> None:
    """The tiny image copied onto a LUN; the domain's vda is that network disk (no local
    disk file): the guest's bootloader and kernel come over iSCSI, and the kernel runs
    init. Destroying the domain leaves the secret to the sweep."""
    work: Path = host["work"]
    sid = str(uuid.uuid4())
    runner = Runner(timeout=120)
    driver = LibvirtDriver(runner, IpLib(runner), str(work / "instances"),
                           domain_prefix=PREFIX, virt_type="qemu", poll_interval=0.2)
    target = make_target(work, sid[:8])
    lun = work / f"{sid[:8]}.img"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(host["image"]), str(lun)],
                   check=True)
    aid = str(uuid.uuid4())
    root = BlockDevice(volume_id=str(uuid.uuid4()), attachment_id=aid, device="vda",
                       boot_index=0, initiator=INITIATOR, connection_info={
                           "driver_volume_type": "iscsi", "data": {
                               "target_iqn": target["iqn"],
                               "target_portal": f"{PORTAL[0]}:{PORTAL[1]}",
                               "target_lun": 1, "auth_username": target["user"],
                               "auth_password": target["password"]}})
    a = Assignment(id=sid, vm_state="active", block_devices=[root])
    spec = InstanceSpec(sid, "tvc-bfv", 1, 128, 0, "", "raw",
                        root_volume=boot_volume(a))
    try:
        driver.prepare_disks(spec)
        assert not driver.has_disk(sid)  # no local disk file
        driver.define(spec)
        driver.power_on(sid)
        console = work / "instances" / sid / "console.log"
        wait_for(lambda: console.exists() and b"Run /init" in console.read_bytes(), 180,
                 "the guest booted from the iSCSI volume to run init")
        blk = virsh("domblklist", f"{PREFIX}{sid}").stdout
        assert "vda" in blk and f"{target['iqn']}/1" in blk, blk
        assert converge_volumes(driver, a) == [aid]  # the root volume is left alone
    finally:
        driver.destroy(sid, [])
        tgtadm("--mode", "target", "--op", "delete", "--force", "--tid", "1")
    assert sweep_secrets(driver, []) == [aid]

# --- the whole chain: compute API -> real volume API -> real storage agent -> tgtd -> qemu --
class AgentApi:
    """The compute agent's view of the in-process compute API (host cmp1); also its
    image API, which boot from volume never calls."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def assignments(self, wait: float | None = None, since: int | None = None
                    ) -> AssignmentSet:
        return AssignmentSet.from_dict(
            self.api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers"))

    def report(self, server_id: str, report: ServerReport) -> None:
        self.api.report("cmp1", server_id, **report.to_dict())

    def heartbeat(self, resources: Any) -> None:
        pass

    def fetch(self, image_id: str) -> Iterator[bytes]:
        raise AssertionError("boot from volume fetched an image")

    def upload(self, image_id: str, path: str) -> None:
        raise AssertionError("no snapshot here")


def our_domains_named(sid: str) -> list[str]:
    return [n for n in virsh("list", "--all", "--name").stdout.split() if n.endswith(sid)]


def test_attach_and_detach_through_the_real_volume_api_and_storage_agent(
        host: dict[str, Any]) -> None:
    """The compute API (in-process, its volume client finding the volume API in the real
    identity catalog with the admin service user) attaches a volume of the real
    ``stratus-volume``; the real ``stratus-storage-agent`` exports it with this test's
    tgtd; the agent's step plugs it into the running tiny guest; the report completes the
    attachment (volume ``in-use``); detach unplugs, deletes the attachment (volume
    ``available``) and the storage agent removes the target. Then the tiny image is
    written into that volume's pool file and a server is created booting from it
    (``block_device_mapping_v2`` source volume, boot_index 0): the compute agent's own
    loop spawns it with vda on iSCSI, the guest boots, the volume is ``in-use``; deleting
    the server leaves the volume ``available`` and no secret."""
    from compute_api import ALICE, in_process
    from helpers import ADMIN_PASSWORD, BIN, IdentityServer
    from stratus.common.clients import PasswordAuth
    from stratus.compute.downstream import HttpVolumes
    from volume_api import VolumeClient, VolumeServer

    work: Path = host["work"]
    root = work / "chain"
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    identity.prepare()
    identity.start()
    volume = VolumeServer(root / "volume", f"sqlite:///{root}/volume.sqlite", identity,
                          extra_env={"STRATUS_VOLUME__EXPORT_TIMEOUT": "60"})
    agent: subprocess.Popen[bytes] | None = None
    sid = ""
    runner = Runner(timeout=120)
    driver = LibvirtDriver(runner, IpLib(runner), str(work / "instances"),
                           domain_prefix=PREFIX, virt_type="qemu", poll_interval=0.2)
    try:
        volume.prepare()
        volume.start()
        conf = root / "storage.conf"
        conf.write_text("[DEFAULT]\ndeploy_prefix = tvc\n")
        env = {**os.environ, "STRATUS_CONFIG_FILE": str(conf),
               "STRATUS_STORAGE_AGENT__HOST": "tvc-stor",
               "STRATUS_STORAGE_AGENT__VOLUME_URL": volume.url,
               "STRATUS_STORAGE_AGENT__IDENTITY_URL": f"{identity.url}/v3",
               "STRATUS_STORAGE_AGENT__USERNAME": "admin",
               "STRATUS_STORAGE_AGENT__PASSWORD": ADMIN_PASSWORD,
               "STRATUS_STORAGE_AGENT__PROJECT_NAME": "admin",
               "STRATUS_STORAGE_AGENT__POOL_PATH": str(root / "pool"),
               "STRATUS_STORAGE_AGENT__IQN_BASE": "iqn.2010-10.org.stratus-test",
               "STRATUS_STORAGE_AGENT__PORTAL_IP": PORTAL[0],
               "STRATUS_STORAGE_AGENT__PORTAL_PORT": str(PORTAL[1]),
               "STRATUS_STORAGE_AGENT__TGT_CONTROL_PORT": CONTROL_PORT,
               "STRATUS_STORAGE_AGENT__RESYNC_INTERVAL": "2",
               "STRATUS_STORAGE_AGENT__REPORT_INTERVAL": "2"}
        log = (root / "storage-agent.log").open("ab")
        agent = subprocess.Popen([str(BIN / "stratus-storage-agent")], env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        admin = VolumeClient(volume.url, identity.token(), "p-alice")
        wait_for(lambda: "tvc-stor" in admin.call("GET", "/v3/storage/hosts").text, 30,
                 "the storage agent's registration")
        # a 1 GiB blank volume of the server's project, made by the storage agent
        made = admin.call("POST", "/volumes", json={"volume": {"size": 1, "name": "tvc"}})
        assert made.status_code == 202, made.text
        vid = made.json()["volume"]["id"]

        def status() -> str:
            return str(admin.call("GET", f"/volumes/{vid}").json()["volume"]["status"])

        wait_for(lambda: status() == "available", 60, "the volume to be created")

        (root / "compute").mkdir()
        with in_process(root / "compute") as api:
            api.fake.volumes = HttpVolumes(
                identity.url, "", PasswordAuth(identity.url, "admin", ADMIN_PASSWORD,
                                               "admin"))
            api.flavor(id="1")
            api.host("cmp1", host_ip="127.0.0.1")
            sid = api.boot()["server"]["id"]
            spec = InstanceSpec(sid, "tvc-guest", 1, 128, 0, str(host["image"]), "qcow2")
            driver.prepare_disks(spec)
            driver.define(spec)
            driver.power_on(sid)
            api.report("cmp1", sid, vm_state="active", power_state=1)
            console = work / "instances" / sid / "console.log"
            wait_for(lambda: console.exists() and b"Run /init" in console.read_bytes(), 180,
                     "the tiny guest's kernel to run init")

            path = f"/v2.1/servers/{sid}/os-volume_attachments"
            att = api.ok("POST", path, ALICE, json={"volumeAttachment": {"volumeId": vid}})
            assert att["volumeAttachment"]["device"] == "/dev/vdb"
            assert status() == "attaching"

            def converge() -> list[str]:
                doc = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")
                a = next(Assignment.from_dict(s) for s in doc["servers"] if s["id"] == sid)
                plugged = converge_volumes(driver, a)
                api.report("cmp1", sid, vm_state="active", power_state=1, volumes=plugged)
                return plugged

            assert len(converge()) == 1
            assert status() == "in-use"
            blk = virsh("domblklist", f"{PREFIX}{sid}").stdout
            assert "vdb" in blk and "iqn.2010-10.org.stratus-test:tvc-tvc-stor" in blk, blk
            assert "Initiator: iqn.2010-10.org.stratus:cmp1" in tgtadm(
                "--mode", "target", "--op", "show")
            shown = api.server(sid)["os-extended-volumes:volumes_attached"]
            assert [v["id"] for v in shown] == [vid]

            api.ok("DELETE", f"{path}/{vid}", ALICE, status=202)
            assert converge() == []
            assert "vdb" not in virsh("domblklist", f"{PREFIX}{sid}").stdout
            assert status() == "available"
            assert api.ok("GET", path, ALICE)["volumeAttachments"] == []
            wait_for(lambda: "tvc-tvc-stor" not in tgtadm("--mode", "target", "--op",
                                                          "show"),
                     30, "the storage agent to remove the target")
            assert not [u for u in our_secrets() if u.startswith(f"{PREFIX}volume-")]
            driver.destroy(sid, [])
            sid = ""

            # boot from that volume (the tiny image written into its pool file), spawned by
            # the compute agent's own loop from the compute API's assignment
            raw = root / "tiny.raw"
            subprocess.run(["qemu-img", "convert", "-O", "raw", str(host["image"]),
                            str(raw)], check=True)
            pool_file = next((root / "pool").glob(f"tvc-volume-{vid}*"))
            subprocess.run(["dd", f"if={raw}", f"of={pool_file}", "bs=1M", "conv=notrunc",
                            "status=none"], check=True)
            # a blank volume is not bootable; its owner marks it so (Nova refuses it otherwise)
            marked = admin.call("POST", f"/volumes/{vid}/action",
                                json={"os-set_bootable": {"bootable": True}})
            assert marked.status_code == 200, marked.text
            shim = AgentApi(api)
            loop = ComputeAgent(
                AgentSettings(host="cmp1", instances_path=str(work / "instances"),
                              deploy_prefix="tvc", vif_plug_wait=False, shutdown_timeout=0),
                driver, shim, shim, None, render=lambda _doc: {})
            try:
                bfv = api.ok("POST", "/v2.1/servers", ALICE, status=202, json={"server": {
                    "name": "tvc-bfv", "flavorRef": "1", "networks": "none",
                    "block_device_mapping_v2": [{
                        "uuid": vid, "source_type": "volume", "destination_type": "volume",
                        "boot_index": 0}]}})
                sid = bfv["server"]["id"]
                assert api.server(sid)["image"] == ""
                assert loop.reconcile_once().ok
                assert api.server(sid)["status"] == "ACTIVE"
                console = work / "instances" / sid / "console.log"
                wait_for(lambda: console.exists() and b"Run /init" in console.read_bytes(),
                         180, "the guest to boot from the volume over iSCSI")
                assert "vda" in virsh("domblklist", f"{PREFIX}{sid}").stdout
                assert loop.reconcile_once().ok
                assert status() == "in-use"
                api.host("cmp1", host_ip="127.0.0.1")  # alive: the agent finishes the delete
                api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE, status=204)
                assert loop.reconcile_once().ok
                assert not our_domains_named(sid)
                sid = ""
                assert status() == "available"  # not delete_on_termination
                assert loop.reconcile_once().ok
                assert not [u for u in our_secrets() if u.startswith(f"{PREFIX}volume-")]
            finally:
                loop.pool.shutdown(wait=True)
        assert admin.call("DELETE", f"/volumes/{vid}").status_code == 202
        wait_for(lambda: admin.call("GET", f"/volumes/{vid}").status_code == 404, 30,
                 "the volume to be deleted")
        assert not list((root / "pool").glob("tvc-volume-*"))
    except BaseException:
        with contextlib.suppress(Exception):
            print("VOLUMES", admin.call("GET", "/volumes/detail").text)
        for name in ("storage-agent.log", "volume/volume.log"):
            logfile = root / name
            if logfile.exists():
                lines = [x for x in logfile.read_text(errors="replace").splitlines()
                         if "httpx" not in x and "stratus.access" not in x]
                print(f"--- {name}\n" + "\n".join(lines)[-4000:])
        raise
    finally:
        if sid:
            driver.destroy(sid, [])
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout=15)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
        volume.stop()
        identity.stop()


def _killed_in(point: str, work: Path, driver: LibvirtDriver, wanted: Assignment) -> None:
    """Run the agent's volume step in a forked child armed to SIGKILL itself at
    ``point`` (common/crashpoints.py), as a kill -9 of the compute agent there would."""
    conf = work / "crash.conf"
    conf.write_text(f"[debug]\ncrash_at = {point}\n")

    def child() -> None:
        arm(Config.load(str(conf)))
        converge_volumes(driver, wanted)
        os._exit(0)  # the point was not reached

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL, (point, proc.exitcode)


def crash_steps(driver: LibvirtDriver, work: Path, domain: str, iqn: str,
                wanted: Assignment) -> None:
    """kill -9 of the agent's volume step after the secret, after the plug (not
    reported) and after the unplug (secret left): the next pass plugs it once and reports
    it; after the unplug the sweep removes the secret. Ends with the volume plugged."""
    aid = wanted.block_devices[0].attachment_id
    gone = Assignment(id=wanted.id, vm_state="active")
    # killed after the unplug, before the secret's removal: the sweep removes it
    _killed_in("compute_agent.volume_detach.after_unplug", work, driver, gone)
    assert "vdb" not in virsh("domblklist", domain).stdout
    assert list(our_secrets()) == [f"{PREFIX}volume-{aid}"]
    assert converge_volumes(driver, gone) == []
    assert sweep_secrets(driver, [gone]) == [aid]
    assert our_secrets() == {}
    # killed after the secret, before the plug: the next pass plugs it
    _killed_in("compute_agent.volume_attach.after_secret", work, driver, wanted)
    assert list(our_secrets()) == [f"{PREFIX}volume-{aid}"]
    assert "vdb" not in virsh("domblklist", domain).stdout
    assert converge_volumes(driver, wanted) == [aid]
    assert virsh("domblklist", domain).stdout.count(f"{iqn}/1") == 1
    # killed after the plug, before its report: the next pass plugs nothing more and
    # reports it (the compute API then completes the attachment)
    assert converge_volumes(driver, gone) == []
    _killed_in("compute_agent.volume_attach.after_plug", work, driver, wanted)
    assert converge_volumes(driver, wanted) == [aid]
    assert virsh("domblklist", domain).stdout.count(f"{iqn}/1") == 1
    assert list(our_secrets()) == [f"{PREFIX}volume-{aid}"]
