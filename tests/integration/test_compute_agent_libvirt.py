"""stratus-compute-agent against real libvirt and qemu (TCG) with the tiny guest image.

A small fake compute API (an HTTP server in a thread serving the assignment document,
recording reports and heartbeats) and a fake image API (serving tiny.qcow2 with its
checksums, receiving snapshot uploads) stand in for the controller. Host objects carry
the prefix ``scag``: domains ``scag-<id>``, taps ``tapscag…``, files in ``/tmp/scag-*``.
The agent runs as its own process (the console script) and is stopped by its pid.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers import SystemLibvirt
from stratus.contracts.network import tap_name

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
URI = "qemu:///system"
PREFIX = "scag-"
MARKER = re.compile(r"STRATUS-GUEST: metadata fetched from config-drive uuid=(\S+) "
                    r"hostname=(\S+)")


def virsh(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True,
                          check=check)


def our_domains() -> list[str]:
    out = virsh("list", "--all", "--name").stdout
    return [n.strip() for n in out.splitlines() if n.strip().startswith(PREFIX)]


def our_taps() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return re.findall(r"^\d+: (scag-tp[^:@ ]*)", out, re.M)


def cleanup_host() -> None:
    for name in our_domains():
        virsh("destroy", name)
        virsh("undefine", "--managed-save", "--nvram", name)
    for tap in our_taps():
        subprocess.run(["ip", "link", "delete", tap], capture_output=True)


@pytest.fixture(scope="module")
def host_ready() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root (libvirt, taps)")
    for tool in ("virsh", "qemu-img", "genisoimage", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    kvm = Path("/dev/kvm")
    if kvm.exists():
        # MACHINE.md: root:kvm 0660, otherwise libvirt re-probes qemu on every define (~40 s)
        shutil.chown(kvm, group="kvm")
        kvm.chmod(0o660)
    libvirt = SystemLibvirt()
    libvirt.ensure()
    built = subprocess.run(["bash", str(REPO / "tests/images/build-tiny.sh")],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    image = REPO / "tests/images/cache/tiny.qcow2"
    assert image.is_file()
    cleanup_host()
    try:
        yield image
    finally:
        cleanup_host()
        libvirt.stop()


# --- the fake controller --------------------------------------------------------------------
class Controller:
    """Compute agent endpoints + image file endpoints on one HTTP server."""

    def __init__(self, image: Path, host: str, workdir: Path):
        self.image = image
        self.image_data = image.read_bytes()
        self.host = host
        self.workdir = workdir
        self.servers: dict[str, dict[str, Any]] = {}
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.uploads: dict[str, Path] = {}
        self.generation = 1
        self.cond = threading.Condition()
        self.image_gets = 0
        self.port_status: dict[str, str] = {}  # the network API's view (default DOWN)
        self.port_polls = 0
        ctl = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == f"/v2.1/stratus/compute-hosts/{ctl.host}/servers":
                    q = parse_qs(url.query)
                    wait = min(float(q.get("wait", ["0"])[0]), 30)
                    since = q.get("since", [None])[0]
                    with ctl.cond:
                        if wait and since is not None:
                            ctl.cond.wait_for(lambda: str(ctl.generation) != since, wait)
                        body = {"generation": ctl.generation,
                                "servers": copy.deepcopy(list(ctl.servers.values()))}
                    self._json(200, body)
                elif m := re.fullmatch(r"/v2.0/ports/([^/]+)", url.path):
                    ctl.port_polls += 1
                    self._json(200, {"port": {"id": m.group(1),
                                              "status": ctl.port_status.get(m.group(1),
                                                                            "DOWN")}})
                elif m := re.fullmatch(r"/v2/images/([^/]+)/file", url.path):
                    ctl.image_gets += 1
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(ctl.image_data)))
                    self.end_headers()
                    self.wfile.write(ctl.image_data)
                    assert m
                else:
                    self._json(404, {"itemNotFound": {"code": 404, "message": self.path}})

            def do_PUT(self) -> None:
                url = urlsplit(self.path)
                if url.path == f"/v2.1/stratus/compute-hosts/{ctl.host}":
                    body = json.loads(self._body())
                    ctl.heartbeats.append(body["host"])
                    self._json(200, {"host": dict(body["host"], enabled=True)})
                elif m := re.fullmatch(r"/v2/images/([^/]+)/file", url.path):
                    dest = ctl.workdir / f"upload-{m.group(1)}"
                    dest.write_bytes(self._body())
                    ctl.uploads[m.group(1)] = dest
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._json(404, {"itemNotFound": {"code": 404, "message": self.path}})

            def do_POST(self) -> None:
                m = re.fullmatch(rf"/v2.1/stratus/compute-hosts/{ctl.host}/servers/([^/]+)/report",
                                 urlsplit(self.path).path)
                if not m:
                    self._json(404, {"itemNotFound": {"code": 404, "message": self.path}})
                    return
                body = json.loads(self._body())
                sid = m.group(1)
                with ctl.cond:
                    ctl.reports.append((sid, body))
                    server = ctl.servers.get(sid)
                    if server is None:
                        self._json(409, {"conflictingRequest": {"code": 409,
                                                                "message": "not here"}})
                        return
                    if body.get("deleted") or body.get("reschedule"):
                        del ctl.servers[sid]
                        ctl.generation += 1
                    else:
                        for key in ("vm_state", "task_state"):
                            if key in body:
                                server[key] = body[key]
                        if "snapshots_done" in body:
                            server["snapshots"] = [
                                s for s in server["snapshots"]
                                if s["image_id"] not in body["snapshots_done"]]
                    ctl.cond.notify_all()
                self._json(200, {})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def assign(self, server: dict[str, Any]) -> None:
        with self.cond:
            self.servers[server["id"]] = server
            self.generation += 1
            self.cond.notify_all()

    def update(self, sid: str, **changes: Any) -> None:
        with self.cond:
            self.servers[sid].update(changes)
            self.generation += 1
            self.cond.notify_all()

    def wait_report(self, sid: str, pred: Callable[[dict[str, Any]], bool],
                    timeout: float = 120, since: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for rsid, body in self.reports[since:]:
                    if rsid == sid and pred(body):
                        return body
                left = deadline - time.monotonic()
                if left <= 0:
                    recent = [(s, {k: v for k, v in b.items() if k != "console_tail"})
                              for s, b in self.reports[-10:]]
                    raise AssertionError(f"no matching report for {sid}; reports: {recent}")
                self.cond.wait(min(left, 1.0))

    def console(self, sid: str) -> str:
        with self.cond:
            tails = [b["console_tail"] for s, b in self.reports
                     if s == sid and "console_tail" in b]
        return tails[-1] if tails else ""

    def server_doc(self, sid: str, port_id: str, config_drive: bool = True) -> dict[str, Any]:
        data = self.image_data
        return {
            "id": sid, "name": "scag-vm", "hostname": "scag-vm", "project_id": "p",
            "user_id": "u", "image_id": "tiny-" + hashlib.sha1(data).hexdigest()[:8],
            "image": {"disk_format": "qcow2", "checksum": hashlib.md5(data).hexdigest(),
                      "os_hash_algo": "sha512",
                      "os_hash_value": hashlib.sha512(data).hexdigest(), "size": len(data),
                      "min_disk": 0, "properties": {}},
            "flavor": {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 256, "disk": 1,
                       "swap": 0, "ephemeral": 0, "extra_specs": {}},
            "vm_state": "building", "task_state": "spawning", "desired_power": "running",
            "reboot": {"generation": 0, "type": "SOFT"}, "delete": False,
            "config_drive": config_drive,
            "ports": [{"id": port_id, "network_id": "net", "mac_address": "fa:16:3e:5c:a9:01",
                       "mtu": 1450,
                       "fixed_ips": [{"subnet_id": "sub", "ip_address": "192.168.77.11"}]}],
            "metadata_document": {
                "uuid": sid, "name": "scag-vm", "hostname": "scag-vm", "project_id": "p",
                "availability_zone": "nova", "launch_index": 0,
                "created_at": "2026-01-01T00:00:00Z", "meta": {},
                "keys": [{"name": "k", "type": "ssh",
                          "data": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq scag"}],
                "user_data": None, "password": None,
                "networks": [{"port_id": port_id, "network_id": "net",
                              "mac_address": "fa:16:3e:5c:a9:01", "mtu": 1450,
                              "ip_address": "192.168.77.11", "floating_ip": None,
                              "subnet": {"id": "sub", "cidr": "192.168.77.0/24",
                                         "gateway_ip": "192.168.77.1",
                                         "dns_nameservers": [], "host_routes": [],
                                         "enable_dhcp": True}}],
                "vendor_data": {}},
            "snapshots": [], "attempt": 1, "created_at": "2026-01-01T00:00:00Z",
        }


class Lab:
    def __init__(self, image: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="scag-"))
        self.dir.chmod(0o755)
        self.instances = self.dir / "instances"
        self.ctl = Controller(image, "scag-host", self.dir)
        self.config = self.dir / "stratus.conf"
        self.config.write_text(
            "[DEFAULT]\n"
            "deploy_prefix = scag\n"  # taps are scag-tp<port id> (contracts.network.tap_name)
            "[compute_agent]\n"
            "host = scag-host\n"
            f"compute_url = http://127.0.0.1:{self.ctl.port}/v2.1\n"
            f"image_url = http://127.0.0.1:{self.ctl.port}\n"
            f"instances_path = {self.instances}\n"
            f"domain_prefix = {PREFIX}\n"
            f"libvirt_uri = {URI}\n"
            "virt_type = auto\n"
            f"network_url = http://127.0.0.1:{self.ctl.port}\n"
            "vif_plug_wait = false\n"
            "vif_plug_timeout = 2\n"
            "resync_interval = 3\n"
            "heartbeat_interval = 2\n"
            "retry_interval = 2\n"
            "shutdown_timeout = 3\n"
            "console_interval = 1\n")
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_agent(self, *extra: str, env: dict[str, str] | None = None
                    ) -> subprocess.Popen[bytes]:
        log = open(self.dir / "agent.log", "ab")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen([str(VENV_BIN / "stratus-compute-agent"), "--config-file",
                                 str(self.config), *extra], stdout=log, stderr=log,
                                env={**os.environ, **(env or {})})
        log.close()
        self.procs.append(proc)
        return proc

    def stop_agent(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, sig)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            self.stop_agent(proc)
        self.ctl.close()
        cleanup_host()
        if os.environ.get("SCAG_KEEP_LOG"):
            shutil.copy(self.dir / "agent.log", os.environ["SCAG_KEEP_LOG"])
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        return (self.dir / "agent.log").read_text(errors="replace")[-4000:]


@pytest.fixture
def lab(host_ready: Path) -> Iterator[Lab]:
    lab = Lab(host_ready)
    yield lab
    lab.close()


def new_ids() -> tuple[str, str]:
    sid = str(uuid.uuid4())
    return sid, "scag" + sid[:7] + "-port"


def domstate(sid: str) -> str:
    return virsh("domstate", PREFIX + sid).stdout.strip()


def assert_no_leftovers(lab: Lab, sid: str) -> None:
    assert PREFIX + sid not in our_domains()
    assert not (lab.instances / sid).exists()
    assert our_taps() == []
    assert not (lab.instances / "_state" / f"{sid}.json").exists()
    leftovers = [p for p in lab.instances.rglob("*")
                 if p.name.endswith(".part") or p.name.startswith(".cd-")]
    assert leftovers == []


def test_boot_power_reboot_snapshot_delete(lab: Lab) -> None:
    ctl = lab.ctl
    agent = lab.start_agent()
    sid, port = new_ids()
    ctl.assign(ctl.server_doc(sid, port))

    # spawn: ACTIVE, a running TCG domain of ours, the tap, and the config drive read
    active = ctl.wait_report(sid, lambda b: b.get("vm_state") == "active", timeout=120)
    assert active["power_state"] == 1 and active["task_state"] is None
    assert domstate(sid) == "running"
    xml = virsh("dumpxml", PREFIX + sid, check=True).stdout
    assert "type='qemu'" in xml.split("\n", 1)[0] and "OpenStack Nova" in xml
    assert our_taps() == [tap_name("scag", port)]
    assert (lab.instances / sid / "disk.config").is_file()
    backing = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(lab.instances / sid / "disk")],
        capture_output=True, text=True, check=True).stdout)
    assert backing["backing-filename"] == str(
        lab.instances / "_base" / hashlib.sha1(ctl.servers[sid]["image_id"].encode()).hexdigest())
    assert backing["virtual-size"] == 1 << 30  # resized to the flavor's 1 GB
    deadline = time.monotonic() + 120
    while not MARKER.search(ctl.console(sid)):
        assert time.monotonic() < deadline, ctl.console(sid)[-2000:] + lab.log()
        time.sleep(0.5)
    m = MARKER.search(ctl.console(sid))
    assert m and m.group(1) == sid and m.group(2) == "scag-vm"
    beat = ctl.heartbeats[-1]
    assert beat["virt_type"] == "qemu" and beat["running_vms"] >= 1
    assert beat["hypervisor_type"] == "QEMU" and beat["hypervisor_version"] > 0

    # stop, then start again
    n = len(ctl.reports)
    ctl.update(sid, task_state="powering-off", desired_power="shutdown")
    stopped = ctl.wait_report(sid, lambda b: b.get("vm_state") == "stopped", since=n)
    assert stopped["power_state"] == 4 and stopped["task_state"] is None
    assert domstate(sid) == "shut off"
    n = len(ctl.reports)
    ctl.update(sid, task_state="powering-on", desired_power="running")
    ctl.wait_report(sid, lambda b: b.get("vm_state") == "active" and "task_state" in b,
                    since=n)
    assert domstate(sid) == "running"

    # hard reboot: one more boot in the (appended) console log
    boots = len(MARKER.findall(ctl.console(sid)))
    n = len(ctl.reports)
    ctl.update(sid, task_state="rebooting_hard", reboot={"generation": 1, "type": "HARD"})
    ctl.wait_report(sid, lambda b: b.get("reboot_generation") == 1, since=n)
    deadline = time.monotonic() + 120
    while len(MARKER.findall(ctl.console(sid))) <= boots:
        assert time.monotonic() < deadline, ctl.console(sid)[-2000:]
        time.sleep(0.5)

    # snapshot: a flattened qcow2 uploaded to the image API
    snap = str(uuid.uuid4())
    n = len(ctl.reports)
    ctl.update(sid, task_state="image_uploading",
               snapshots=[{"image_id": snap, "name": "scag-snap"}])
    done = ctl.wait_report(sid, lambda b: snap in b.get("snapshots_done", []), since=n)
    assert done["task_state"] is None
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json",
                                      str(ctl.uploads[snap])], capture_output=True, text=True,
                                     check=True).stdout)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert domstate(sid) == "running"

    # delete: nothing of the server is left; the image stays cached
    n = len(ctl.reports)
    ctl.update(sid, delete=True, task_state="deleting")
    ctl.wait_report(sid, lambda b: b.get("deleted") is True, since=n)
    assert_no_leftovers(lab, sid)
    assert ctl.image_gets == 1
    assert len(list((lab.instances / "_base").glob("[0-9a-f]*"))) == 1
    lab.stop_agent(agent)
    assert agent.returncode == 0, lab.log()


def test_agent_killed_during_spawn_finishes_after_restart(lab: Lab) -> None:
    ctl = lab.ctl
    agent = lab.start_agent()
    sid, port = new_ids()
    ctl.assign(ctl.server_doc(sid, port, config_drive=True))
    state = lab.instances / "_state" / f"{sid}.json"
    deadline = time.monotonic() + 60
    while not state.exists():  # the spawn has begun
        assert time.monotonic() < deadline, lab.log()
        time.sleep(0.01)
    os.kill(agent.pid, signal.SIGKILL)
    agent.wait()
    assert not [b for s, b in ctl.reports if s == sid and b.get("vm_state") == "active"]

    n = len(ctl.reports)
    lab.start_agent()
    body = ctl.wait_report(sid, lambda b: b.get("vm_state") in ("active", "error"), since=n)
    assert body["vm_state"] == "active", body
    assert our_domains() == [PREFIX + sid] and domstate(sid) == "running"
    assert sorted(p.name for p in (lab.instances / sid).iterdir()) == \
        ["console.log", "disk", "disk.config", "domain.xml"]

    n = len(ctl.reports)
    ctl.update(sid, delete=True, task_state="deleting")
    ctl.wait_report(sid, lambda b: b.get("deleted") is True, since=n)
    assert_no_leftovers(lab, sid)


def test_orphan_domain_is_removed_and_spawn_failure_reschedules(lab: Lab) -> None:
    """A domain of ours nobody assigns goes away (no boot needed: it is never started);
    a spawn that cannot succeed (image checksum wrong) asks for a reschedule and
    leaves nothing behind."""
    ctl = lab.ctl
    sid, port = new_ids()
    doc = ctl.server_doc(sid, port, config_drive=False)
    doc["image"]["checksum"] = "0" * 32
    ctl.assign(doc)
    orphan = str(uuid.uuid4())
    # an orphan as a previous agent would have left it: domain, files, state, tap
    from stratus.agent.compute.virt.base import InstanceSpec, PortSpec
    from stratus.agent.compute.virt.domain_xml import build_domain, to_string
    odir = lab.instances / orphan
    odir.mkdir(parents=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(odir / "disk"), "64M"],
                   check=True)
    otap = "scag-tp" + orphan[:7]
    subprocess.run(["ip", "tuntap", "add", "dev", otap, "mode", "tap"], check=True)
    spec = InstanceSpec(orphan, "o", 1, 64, 0, "", "qcow2",
                        ports=[PortSpec("p", "fa:16:3e:5c:a9:02", None, otap)])
    (odir / "domain.xml").write_text(to_string(build_domain(
        spec, domain_name=PREFIX + orphan, virt_type="qemu", disk_path=str(odir / "disk"),
        config_drive_path=None, console_path=str(odir / "console.log"))))
    virsh("define", str(odir / "domain.xml"), check=True)
    # a foreign domain with our prefix but without our metadata is left alone
    foreign = PREFIX + "foreign-" + orphan[:8]
    (lab.dir / "foreign.xml").write_text(
        f"<domain type='qemu'><name>{foreign}</name><memory unit='MiB'>32</memory>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>")
    virsh("define", str(lab.dir / "foreign.xml"), check=True)
    try:
        proc = lab.start_agent("--once")
        assert proc.wait(timeout=120) == 0, lab.log()
        body = ctl.wait_report(sid, lambda b: "reschedule" in b, timeout=5)
        assert body["reschedule"] is True and "md5" in body["fault"]["message"]
        assert our_domains() == [foreign]
        assert not odir.exists() and our_taps() == []
        assert_no_leftovers(lab, sid)
    finally:
        virsh("undefine", foreign)


def test_port_never_active_fails_the_spawn_without_leftovers(lab: Lab) -> None:
    """vif_plug_wait: the disk, config drive and tap are made, the port stays DOWN in the
    network API, the spawn fails after vif_plug_timeout and everything is removed; a port
    that becomes ACTIVE lets the spawn define the domain (not started: desired shutdown,
    so no guest boots here)."""
    ctl = lab.ctl
    sid, port = new_ids()
    ctl.assign(ctl.server_doc(sid, port, config_drive=True))
    wait_on = {"STRATUS_COMPUTE_AGENT__VIF_PLUG_WAIT": "true"}
    proc = lab.start_agent("--once", env=wait_on)
    assert proc.wait(timeout=120) == 0, lab.log()
    body = ctl.wait_report(sid, lambda b: "reschedule" in b, timeout=5)
    assert body["reschedule"] is True and "not ACTIVE" in body["fault"]["message"]
    assert ctl.port_polls >= 2
    assert_no_leftovers(lab, sid)

    sid2, port2 = new_ids()
    ctl.port_status[port2] = "ACTIVE"
    doc = ctl.server_doc(sid2, port2, config_drive=True)
    doc["desired_power"] = "shutdown"
    ctl.assign(doc)
    proc = lab.start_agent("--once", env=wait_on)
    assert proc.wait(timeout=120) == 0, lab.log()
    body = ctl.wait_report(sid2, lambda b: "vm_state" in b, timeout=5)
    assert body["vm_state"] == "stopped" and body["power_state"] == 4, body
    assert domstate(sid2) == "shut off" and our_taps() == [tap_name("scag", port2)]
    ctl.update(sid2, delete=True, task_state="deleting")
    proc = lab.start_agent("--once")
    assert proc.wait(timeout=120) == 0, lab.log()
    assert_no_leftovers(lab, sid2)
