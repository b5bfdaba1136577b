"""The molecule scenario ``aio`` run from the suite, and what it leaves on the host (issue 11).

``molecule test -s aio`` (extensions/molecule/, docs/molecule.md) makes a rootful podman
container running systemd as PID 1, deploys playbooks/site.yml into it over SSH (every service
a systemd unit), converges a second time (idempotence: changed=0), verifies (each unit active,
the APIs answer, a SIGKILLed service restarted by systemd, the cloud answering after it) and
destroys the container. This module runs that whole sequence once and then checks that the
host is as it was, but for the cached base image: no container, podman network, volume or
image layer of the run; no podman bridge or interface of ours; the firewall chains and nftables
tables netavark adds removed again; ``net.ipv4.ip_forward`` back; no file of the run in /tmp.

Its container, network and volume names carry ``zmo<random>`` (STRATUS_MOLECULE_PREFIX); the
run's molecule state lives in a temporary directory removed at the end. The whole molecule run
holds the e2e flock (/tmp/stratus-e2e.lock): it changes host-wide things (a podman network, the
firewall, ip_forward) and builds the package in the controller's shared build directory as
site.yml does. Nothing is installed here: molecule comes with pyproject's test extra, podman,
runc, netavark and mmdebstrap with scripts/install-test-deps.sh.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import playbook_lock

pytestmark = [
    pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(2400),
    # Out of `make test` until its verify follows the APIs' management-address binding
    # (it asks 127.0.0.1, and the APIs no longer listen there); `make test-molecule` runs it.
    pytest.mark.skipif(os.environ.get("STRATUS_MOLECULE") != "1",
                       reason="molecule runs with STRATUS_MOLECULE=1 (make test-molecule)"),
]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BASE_IMAGE = "localhost/stratus-molecule-base:bookworm"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _out(*cmd: str) -> str:
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr.strip()}"
    return done.stdout


def _netavark_chains() -> set[str]:
    """Every NETAVARK* chain of iptables/ip6tables (filter and nat), as 'tool table chain'."""
    chains = set()
    for tool in ("iptables", "ip6tables"):
        if not shutil.which(tool):
            continue
        for table in ("filter", "nat"):
            for line in _out(tool, "-w", "-t", table, "-S").splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == "-N" and parts[1].startswith("NETAVARK"):
                    chains.add(f"{tool} {table} {parts[1]}")
    return chains


@dataclass(frozen=True)
class HostState:
    """What a molecule run may touch on this host (names, not identities)."""

    containers: frozenset[str]
    networks: frozenset[str]
    volumes: frozenset[str]
    images: frozenset[str]
    links: frozenset[str]
    firewall_tables: frozenset[str]
    netavark_chains: frozenset[str]
    ip_forward: str
    tmp_entries: frozenset[str]

    @classmethod
    def read(cls) -> HostState:
        """The state now."""
        links = {item["ifname"] for item in json.loads(_out("ip", "-j", "link", "show"))}
        tables = set()
        for item in json.loads(_out("nft", "-j", "list", "tables")).get("nftables", []):
            table = item.get("table")
            if table and table["name"] in ("filter", "nat"):
                tables.add(f"{table['family']} {table['name']}")
        return cls(
            containers=frozenset(_out("podman", "ps", "-a", "--format", "{{.Names}}").split()),
            networks=frozenset(_out("podman", "network", "ls", "--format", "{{.Name}}").split()),
            volumes=frozenset(_out("podman", "volume", "ls", "--format", "{{.Name}}").split()),
            images=frozenset(_out("podman", "images", "-a", "--no-trunc", "--format",
                                  "{{.ID}}").split()),
            links=frozenset(links),
            firewall_tables=frozenset(tables),
            netavark_chains=frozenset(_netavark_chains()),
            ip_forward=Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
            tmp_entries=frozenset(os.listdir("/tmp")),
        )


def _base_image_id() -> str | None:
    done = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", BASE_IMAGE],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def test_molecule_aio_passes_and_leaves_only_the_base_image() -> None:
    missing = [tool for tool in ("podman", "runc", "mmdebstrap", "nft", "iptables")
               if not shutil.which(tool)]
    assert not missing, f"{missing} missing: run scripts/install-test-deps.sh"
    assert (BIN / "molecule").exists(), "molecule missing: pip install -e '.[test]'"

    prefix = "zmo" + secrets.token_hex(3)
    state_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-molecule-"))
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "STRATUS_MOLECULE_PREFIX": prefix,
        "MOLECULE_EPHEMERAL_DIRECTORY": str(state_dir),
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
    }
    try:
        with playbook_lock():
            before = HostState.read()
            started = time.monotonic()
            run = subprocess.run([str(BIN / "molecule"), "test", "-s", "aio"], cwd=REPO,
                                 env=env, capture_output=True, text=True, timeout=2300,
                                 stdin=subprocess.DEVNULL, check=False)
            took = time.monotonic() - started
            after = HostState.read()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    log = ANSI.sub("", run.stdout + run.stderr)
    print(f"molecule test -s aio: rc={run.returncode}, {took:.0f} s")
    assert run.returncode == 0, log[-6000:]
    for step in ("create", "prepare", "converge", "idempotence", "verify", "destroy"):
        assert re.search(rf"aio\W+{step}: Executed: Successful", log), f"{step} did not pass"

    assert not {c for c in after.containers if prefix in c}, after.containers
    assert after.containers <= before.containers, after.containers - before.containers
    assert after.networks <= before.networks, after.networks - before.networks
    assert after.volumes <= before.volumes, after.volumes - before.volumes
    kept = before.images | {_base_image_id()}
    assert after.images <= kept, f"image layers left: {after.images - kept}"
    new_links = {name for name in after.links - before.links
                 if prefix in name or re.match(r"(podman|veth)", name)}
    assert not new_links, f"interfaces left: {new_links}"
    assert after.firewall_tables <= before.firewall_tables, (
        after.firewall_tables - before.firewall_tables)
    assert after.netavark_chains <= before.netavark_chains, (
        after.netavark_chains - before.netavark_chains)
    assert after.ip_forward == before.ip_forward
    # (the run's molecule state directory is removed by this test, above)
    assert not {e for e in after.tmp_entries - before.tmp_entries
                if prefix in e and e != state_dir.name}
    assert not state_dir.exists()
    processes = subprocess.run(["pgrep", "-af", prefix], capture_output=True, text=True,
                               check=False).stdout
    assert not processes.strip(), f"processes of the run left: {processes}"
