"""Helpers to build and boot the test guest images under plain QEMU (TCG).

No libvirt and no host networking: the guest gets a virtio NIC on QEMU's
user-mode network (which has its own DHCP server), its metadata from a
config drive built here or from a one-shot HTTP responder that QEMU runs for
each connection to 169.254.169.254:80 (``guestfwd``), and SSH reaches it
through a ``hostfwd`` port on 127.0.0.1. Every QEMU started here is stopped
by its pid; everything lives in a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "tests" / "images"
CACHE = IMAGES / "cache"

MARKER_NETWORK = re.compile(r"^STRATUS-GUEST: network up (\S+)\s*$", re.M)
MARKER_METADATA = re.compile(
    r"^STRATUS-GUEST: metadata fetched from (\S+) uuid=(\S*) hostname=(\S*)\s*$", re.M
)
MARKER_NO_METADATA = re.compile(r"^STRATUS-GUEST: metadata not found\s*$", re.M)
MARKER_USERDATA = re.compile(r"^STRATUS-GUEST: userdata exit=(\d+)\s*$", re.M)
MARKER_READY = re.compile(r"^STRATUS-GUEST: ready\s*$", re.M)

# Debian packages the tests need on the host, by the command they provide.
HOST_TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "genisoimage": "genisoimage",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}


def ensure_host_tools() -> str | None:
    """Install the missing host tools with apt (as root); return why not, or None."""
    missing = sorted({pkg for cmd, pkg in HOST_TOOLS.items() if shutil.which(cmd) is None})
    if not missing:
        return None
    if os.geteuid() != 0:
        return f"missing {', '.join(missing)} and not root to install them"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return f"apt-get install {' '.join(missing)} failed: {done.stderr[-500:]}"
    return None


def build_image(script: str, output_dir: Path = CACHE, timeout: float = 1200) -> Path:
    """Run tests/images/<script> (cached by the script itself); return the image path."""
    done = subprocess.run(
        [str(IMAGES / script), str(output_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_ssh_key(directory: Path) -> Path:
    """An ed25519 key pair without passphrase; returns the private key path."""
    key = directory / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stratus-test", "-f", str(key)],
        check=True,
    )
    return key


def write_metadata_tree(
    root: Path,
    meta_data: dict[str, object],
    user_data: str | None = None,
    network_data: dict[str, object] | None = None,
) -> Path:
    """openstack/latest/{meta_data.json,user_data,network_data.json} under root."""
    latest = root / "openstack" / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    (latest / "meta_data.json").write_text(json.dumps(meta_data))
    if user_data is not None:
        (latest / "user_data").write_text(user_data)
    if network_data is not None:
        (latest / "network_data.json").write_text(json.dumps(network_data))
    return root


def make_config_drive(tree: Path, output: Path, fmt: str = "iso9660") -> Path:
    """A config drive labelled config-2 holding tree, as ISO9660 or vfat."""
    if fmt == "iso9660":
        subprocess.run(
            ["genisoimage", "-quiet", "-V", "config-2", "-J", "-R", "-o", str(output), str(tree)],
            check=True,
        )
    elif fmt == "vfat":
        subprocess.run(
            ["mkfs.vfat", "-C", "-n", "config-2", str(output), "8192"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["mcopy", "-s", "-i", str(output), *[str(p) for p in tree.iterdir()], "::/"],
            check=True,
        )
    else:
        raise ValueError(f"config drive format {fmt!r}: use iso9660 or vfat")
    return output


METADATA_RESPONDER = """\
import os, sys
root = sys.argv[1]
request = sys.stdin.buffer.readline().decode("latin-1").split()
while sys.stdin.buffer.readline() not in (b"\\r\\n", b"\\n", b""):
    pass
path = os.path.normpath("/" + (request[1] if len(request) > 1 else "/")).lstrip("/")
target = os.path.join(root, path)
if request and request[0] == "GET" and os.path.isfile(target):
    body = open(target, "rb").read()
    head = "HTTP/1.0 200 OK\\r\\nContent-Type: application/octet-stream\\r\\n"
else:
    body = b"not found\\n"
    head = "HTTP/1.0 404 Not Found\\r\\nContent-Type: text/plain\\r\\n"
head += "Content-Length: %d\\r\\nConnection: close\\r\\n\\r\\n" % len(body)
sys.stdout.buffer.write(head.encode() + body)
sys.stdout.buffer.flush()
"""


class QemuGuest:
    """One QEMU (TCG) guest with its serial console in a file."""

    def __init__(self, workdir: Path, name: str = "guest") -> None:
        self.workdir = workdir
        self.name = name
        self.serial_log = workdir / f"{name}-serial.log"
        self.qemu_log = workdir / f"{name}-qemu.log"
        self.monitor = workdir / f"{name}-monitor.sock"
        self.ssh_port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(
        self,
        disk: Path,
        *,
        cdrom: Path | None = None,
        extra_disk: Path | None = None,
        kernel: Path | None = None,
        initrd: Path | None = None,
        append: str | None = None,
        metadata_root: Path | None = None,
        memory_mib: int = 256,
        disk_size: str | None = None,
        ssh: bool = True,
        mac: str = "52:54:00:12:34:56",
        extra_args: Sequence[str] = (),
    ) -> None:
        """Boot disk through a qcow2 overlay (the image is never written),
        grown to disk_size (e.g. "2G") if given, as a flavor's disk would be."""
        overlay = self.workdir / f"{self.name}-disk.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(disk), "-F", "qcow2",
             str(overlay), *([disk_size] if disk_size else [])],
            check=True,
        )
        netdev = ["user", "id=net0"]
        if metadata_root is not None:
            # guestfwd only serves addresses inside the user network: use a
            # link-local one, like a cloud's, that contains 169.254.169.254.
            responder = self.workdir / "metadata_responder.py"
            responder.write_text(METADATA_RESPONDER)
            netdev += [
                "net=169.254.169.0/24",
                "host=169.254.169.1",
                "dns=169.254.169.3",
                "dhcpstart=169.254.169.15",
                f"guestfwd=tcp:169.254.169.254:80-cmd:{sys.executable} {responder} "
                f"{metadata_root}",
            ]
        if ssh:
            self.ssh_port = free_port()
            netdev.append(f"hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22")
        cmd = [
            "qemu-system-x86_64",
            "-machine", "pc", "-accel", "tcg", "-cpu", "max", "-m", str(memory_mib),
            "-smp", "1", "-nographic", "-nodefaults",
            "-serial", f"file:{self.serial_log}",
            "-monitor", f"unix:{self.monitor},server=on,wait=off",
            "-smbios", "type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova",
            "-drive", f"file={overlay},if=virtio,format=qcow2",
            "-netdev", ",".join(netdev),
            "-device", f"virtio-net-pci,netdev=net0,mac={mac},romfile=",
        ]
        if cdrom is not None:
            cmd += ["-drive", f"file={cdrom},media=cdrom,if=ide,format=raw,readonly=on"]
        if extra_disk is not None:
            cmd += ["-drive", f"file={extra_disk},if=virtio,format=raw,readonly=on"]
        if kernel is not None:
            cmd += ["-kernel", str(kernel)]
            if initrd is not None:
                cmd += ["-initrd", str(initrd)]
            if append is not None:
                cmd += ["-append", append]
        cmd += list(extra_args)
        self.started_at = time.monotonic()
        with open(self.qemu_log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def console(self) -> str:
        try:
            return self.serial_log.read_bytes().decode("utf-8", "replace").replace("\r", "")
        except FileNotFoundError:
            return ""

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """Wait for a regex on the serial console; fail with the console tail."""
        deadline = time.monotonic() + timeout
        while True:
            match = pattern.search(self.console())
            if match:
                return match
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"qemu exited ({self.proc.returncode}) before {pattern.pattern!r}:\n"
                    f"{self.qemu_log.read_text(errors='replace')[-2000:]}\n"
                    f"--- console ---\n{self.console()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {pattern.pattern!r} on the console within {timeout} s:\n"
                    f"{self.console()[-4000:]}"
                )
            time.sleep(0.2)

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    def ssh(self, key: Path, command: str, user: str = "root",
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command over SSH, retrying the connection until timeout."""
        assert self.ssh_port is not None, "guest started without ssh forwarding"
        cmd = [
            "ssh", "-i", str(key), "-p", str(self.ssh_port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
            f"{user}@127.0.0.1", command,
        ]
        deadline = time.monotonic() + timeout
        while True:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            # 255: ssh itself failed (not up yet, or refused); anything else is the command's.
            if done.returncode != 255 or time.monotonic() > deadline:
                return done
            time.sleep(1)

    def monitor_command(self, command: str) -> None:
        """Send one human-monitor command (e.g. system_powerdown)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.monitor))
            s.recv(4096)  # banner and prompt
            s.sendall(command.encode() + b"\n")
            time.sleep(0.3)

    def wait_exit(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Stop QEMU by its pid: SIGTERM, then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
