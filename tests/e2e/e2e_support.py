"""What the e2e modules share: the playbook lock, and a snapshot of one deploy's host objects.

Deploys of the suite run beside each other (and beside a user's cloud): the boot module's
cloud stays up, with a guest, while the other modules deploy, churn and tear down theirs
(issue 16). What must not run at once is two ansible-playbook runs of site.yml/teardown.yml
(apt, the shared build directory of the package, pip): :func:`playbook_lock` serialises only
those, with an exclusive ``flock`` on /tmp/stratus-e2e.lock.

:class:`HostObjects` records one deploy's namespaces (by inode), interfaces (by ifindex),
nftables tables (by handle, on the host and in its namespaces) and its processes (dnsmasq,
metadata proxies: by pid and start time): a recreated object compares unequal, so "unchanged"
means never removed or rebuilt.

:func:`free_external` picks each deploy's external bridge name and /24: a name no interface
on the host has and a 172.24.X.0/24 no address on the host is in, so that a leftover of an
interrupted run (or a user's cloud, or a second suite) never makes a deploy adopt a bridge
its teardown must not delete.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import re
import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

LOCK_FILE = "/tmp/stratus-e2e.lock"


@contextlib.contextmanager
def playbook_lock() -> Iterator[None]:
    """Held around one site.yml / teardown.yml run: one such run at a time on this machine."""
    with open(LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports nothing listens on now, the kernel's picks.

    Every socket stays bound until all are picked: a port released at once can be handed out
    again by the next pick (one deploy got the same port for its volume and object APIs, and
    the second to start never could)."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("0.0.0.0", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_external(stem: str, preferred: int) -> tuple[str, str]:
    """(bridge name, "172.24.X") for a deploy's external network: ``stem`` plus four hex
    digits, not an interface of the host; X the first of ``preferred``, preferred+1, … whose
    /24 no address on the host is in."""
    links = {item.get("ifname") for item in json.loads(_run("ip", "-j", "link", "show") or "[]")}
    used = [ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}").network
            for item in json.loads(_run("ip", "-j", "addr", "show") or "[]")
            for a in item.get("addr_info", []) if a.get("family") == "inet"]
    bridge = next(name for name in (stem + secrets.token_hex(2) for _ in range(100))
                  if name not in links)
    for third in [*range(preferred, 250), *range(16, preferred)]:
        net = ipaddress.ip_network(f"172.24.{third}.0/24")
        if not any(net.overlaps(other) for other in used):
            return bridge, f"172.24.{third}"
    raise RuntimeError("no free 172.24.X.0/24 on this host for an external network")


# The deploy prefixes the e2e modules give their clouds (test_boot_aio: z+3 hex,
# test_object_store_deploy: z+2 hex, test_deploy_aio: y+2 hex+s/p; x+2 hex was
# test_image_store_deploy's, still recognised for the leftovers of older runs); a real
# deploy's default is "st".
TEST_DEPLOY_PREFIX = re.compile(r"^(z[0-9a-f]{2,3}|y[0-9a-f]{2}[sp]|x[0-9a-f]{2})$")
TRUST_DIR = Path("/usr/local/share/ca-certificates")
TRUST_FILE = re.compile(r"^stratus-([a-z0-9]+)-ca(?:-previous)?\.crt$")


def stale_test_cas(trust_dir: Path = TRUST_DIR, live_roots: tuple[str, ...] = (
        "/tmp/*/etc/stratus/tls/ca.crt", "/etc/stratus/tls/ca.crt")) -> list[Path]:
    """The CAs a killed e2e run left in the host's trust store: ``stratus-<p>-ca.crt`` (or
    ``-ca-previous.crt``, a renewed CA's predecessor) with ``<p>`` a test deploy prefix, a
    Stratus CA of that prefix (its subject), whose certificate no existing deploy's
    ``tls/ca.crt`` bundle holds (a deploy's teardown removes its own; the session cloud's,
    or another run's deploy still up, are kept)."""
    live: set[bytes] = set()
    for pattern in live_roots:
        for path in Path("/").glob(pattern.lstrip("/")):
            try:
                live.add(path.read_bytes().strip())
            except OSError:
                continue
    stale = []
    for path in sorted(trust_dir.glob("stratus-*.crt")):
        named = TRUST_FILE.match(path.name)
        prefix = named.group(1) if named else ""
        if not TEST_DEPLOY_PREFIX.match(prefix):
            continue
        try:
            text = path.read_bytes().strip()
        except OSError:
            continue
        subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", str(path)],
                                 capture_output=True, text=True, check=False).stdout
        if f"Stratus {prefix} CA" in subject and not any(text in bundle for bundle in live):
            stale.append(path)
    return stale


def remove_stale_test_cas() -> list[Path]:
    """Removes :func:`stale_test_cas` and rebuilds the trust store (``--fresh``) if any."""
    stale = stale_test_cas()
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        subprocess.run(["update-ca-certificates", "--fresh"], capture_output=True,
                       check=True, timeout=300)
    return stale


def _run(*cmd: str) -> str:
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)
    return done.stdout if done.returncode == 0 else ""


def _nft_tables(netns: str | None = None) -> set[tuple[str, str, int]]:
    cmd = ["nft", "-j", "list", "tables"]
    out = _run("ip", "netns", "exec", netns, *cmd) if netns else _run(*cmd)
    if not out.strip():
        return set()
    tables = set()
    for item in json.loads(out).get("nftables", []):
        table = item.get("table")
        if table:
            tables.add((table["family"], table["name"], int(table["handle"])))
    return tables


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


@dataclass
class HostObjects:
    """One deploy's host objects at one moment (see the module docstring)."""

    namespaces: dict[str, int] = field(default_factory=dict)
    interfaces: dict[str, int] = field(default_factory=dict)
    nft_tables: dict[str, set[tuple[str, str, int]]] = field(default_factory=dict)
    processes: dict[int, str] = field(default_factory=dict)
    dnsmasq: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, deploy_prefix: str, state_dir: Path, extra_interfaces: tuple[str, ...] = ()
           ) -> HostObjects:
        """The objects of the deploy whose prefix is ``deploy_prefix`` and whose network
        agent keeps its files in ``state_dir``: namespaces and interfaces named
        ``<prefix>-...`` (and ``extra_interfaces``, e.g. its external bridge), nftables
        tables whose name has the prefix as a ``_``-separated word, processes whose command
        line names ``state_dir``."""
        snap = cls()
        own = f"{deploy_prefix}-"
        netns_dir = Path("/run/netns")
        if netns_dir.is_dir():
            for path in netns_dir.iterdir():
                if path.name.startswith(own):
                    with contextlib.suppress(OSError):
                        snap.namespaces[path.name] = path.stat().st_ino
        links = json.loads(_run("ip", "-j", "link", "show") or "[]")
        for link in links:
            name = link.get("ifname", "")
            if name.startswith(own) or name in extra_interfaces:
                snap.interfaces[name] = int(link["ifindex"])
        word = re.compile(rf"(^|_){re.escape(deploy_prefix)}(_|$)")
        host_tables = {t for t in _nft_tables() if word.search(t[1])}
        if host_tables:
            snap.nft_tables["(host)"] = host_tables
        for ns in snap.namespaces:
            tables = _nft_tables(ns)
            if tables:
                snap.nft_tables[ns] = tables
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace")
            except OSError:
                continue
            if str(state_dir) in cmdline:
                pid = int(proc.name)
                snap.processes[pid] = _start_time(pid)
                if "dnsmasq" in cmdline.split(" ", 1)[0]:
                    snap.dnsmasq.add(pid)
        return snap

    def differences(self, later: HostObjects) -> list[str]:
        """What changed from this snapshot to ``later`` (objects gone or recreated); objects
        that only appeared later are not changes of what was there."""
        diffs = []
        for name, inode in self.namespaces.items():
            if later.namespaces.get(name) != inode:
                how = "recreated" if name in later.namespaces else "gone"
                diffs.append(f"namespace {name}: {how}")
        for name, index in self.interfaces.items():
            if later.interfaces.get(name) != index:
                how = "recreated" if name in later.interfaces else "gone"
                diffs.append(f"interface {name}: {how}")
        for where, tables in self.nft_tables.items():
            missing = tables - later.nft_tables.get(where, set())
            if missing:
                diffs.append(f"nftables tables in {where} gone or recreated: {sorted(missing)}")
        for pid, started in self.processes.items():
            if later.processes.get(pid) != started:
                kind = "dnsmasq" if pid in self.dnsmasq else "process"
                diffs.append(f"{kind} {pid} is gone (or was replaced)")
        return diffs

    def summary(self) -> str:
        return (f"{len(self.namespaces)} namespaces, {len(self.interfaces)} interfaces, "
                f"{sum(len(t) for t in self.nft_tables.values())} nftables tables, "
                f"{len(self.processes)} processes ({len(self.dnsmasq)} dnsmasq)")


def new_log_lines(path: Path, offset: int) -> list[str]:
    """The lines written to ``path`` after byte ``offset`` (all of it if it was rotated)."""
    if not path.exists():
        return []
    size = path.stat().st_size
    with open(path, "rb") as handle:
        handle.seek(offset if size >= offset else 0)
        return handle.read().decode(errors="replace").splitlines()


def log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


REMOVAL = re.compile(r"\b(remov\w*|delet\w*|destroy\w*|undefin\w*|kill\w*|tear\w* down)\b",
                     re.IGNORECASE)


def removals(lines: list[str]) -> list[str]:
    """The log lines that say an agent removed (or is removing) something."""
    return [line for line in lines if REMOVAL.search(line)]
