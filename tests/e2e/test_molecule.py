"""The molecule scenarios ``aio`` and ``multinode`` run from the suite, and what they leave on
the host (issue 11).

``molecule test -s aio`` (extensions/molecule/, docs/molecule.md) makes a rootful podman
container running systemd as PID 1, deploys playbooks/site.yml into it over SSH (every service
a systemd unit), converges a second time (idempotence: changed=0), verifies (each unit active,
the APIs answer, a SIGKILLed service restarted by systemd, the cloud answering after it) and
destroys the container. ``molecule test -s multinode`` does the same with a controller and
two compute hosts (OVS, GRE tunnels, PostgreSQL) whose verify boots real guests (one per
compute host by an anti-affinity group, DHCP, metadata, a ping across GRE, a floating IP, a
disabled and a stopped compute service) and ends with playbooks/teardown.yml, after which no
unit, process, bridge, namespace, domain or nftables table of ours is left in the hosts. Each
test runs its whole sequence once, prints how long each step took, and then checks that the
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
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import playbook_lock

# The test's own limit, and what of it is kept for destroy: past RUN_DEADLINE (counted from
# the test's start, the wait for the e2e flock included) a run still converging or verifying
# is stopped and `molecule destroy` runs on its own, so a slow run fails without leaving a
# container, a network or netavark's firewall chains behind. A run already destroying is left
# to finish (pytest's timeout is the last resort). STRATUS_MOLECULE_TIMEOUT (seconds) sets a
# shorter or longer limit: a run that must end by a given time still destroys what it made.
TEST_TIMEOUT = int(os.environ.get("STRATUS_MOLECULE_TIMEOUT") or 2700)
DESTROY_BUDGET = 420
RUN_DEADLINE = TEST_TIMEOUT - DESTROY_BUDGET - 60

pytestmark = [
    pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(TEST_TIMEOUT),
    # aio 8.5 minutes with its reboot step and multinode 11 on this 2-core machine alone
    # (docs/molecule.md has the figures): `make test` runs them beside the integration tests
    # (scripts/run-tests.sh), `make test-molecule` alone.
    pytest.mark.skipif(os.environ.get("STRATUS_MOLECULE") != "1",
                       reason="molecule runs with STRATUS_MOLECULE=1 (make test and "
                              "make test-molecule set it)"),
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
            images=frozenset(_image_id(image) for image in _out(
                "podman", "images", "-a", "--no-trunc", "--format", "{{.ID}}").split()),
            links=frozenset(links),
            firewall_tables=frozenset(tables),
            netavark_chains=frozenset(_netavark_chains()),
            ip_forward=Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
            tmp_entries=frozenset(os.listdir("/tmp")),
        )


def _image_id(image: str) -> str:
    """An image id as the hex digest alone: `podman images --no-trunc` writes it with its
    algorithm ("sha256:..."), `podman image inspect` without (on a machine where the base
    image was built during the run, the two never compared equal)."""
    return image.strip().removeprefix("sha256:")


def _base_image_id() -> str | None:
    done = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", BASE_IMAGE],
                          capture_output=True, text=True, timeout=60, check=False)
    return _image_id(done.stdout) if done.returncode == 0 else None


STEP = re.compile(r"\[(\w+) > (\w+)\] (Executing|Executed)")


class Watchdog:
    """Stops a ``molecule test`` (its whole process group) that is still before its last
    destroy step at the deadline; records which step it stopped."""

    def __init__(self, proc: subprocess.Popen[str], deadline: float) -> None:
        self.proc = proc
        self.step = ""
        self.stopped_in = ""
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        if self.step == "destroy" or self.proc.poll() is not None:
            return  # destroying already: let it finish
        self.stopped_in = self.step or "start"
        for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=grace or None)
                return
            except subprocess.TimeoutExpired:
                continue

    def cancel(self) -> None:
        self._timer.cancel()


def _molecule_test(scenario: str, started: float, extra_steps: tuple[str, ...] = ()
                   ) -> tuple[subprocess.CompletedProcess[str], str, float]:
    """``molecule test -s <scenario>`` with a fresh prefix, under the e2e flock; checks the
    host is as before (but for the cached base image) and returns the run, its log (no
    colours) and its duration. Prints how long each step took. Past RUN_DEADLINE after
    ``started`` (time.monotonic() at the test's start) the run is stopped unless it is
    destroying, and ``molecule destroy`` runs in its place (DESTROY_BUDGET)."""
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
    lines: list[str] = []
    steps: list[tuple[str, float]] = []
    try:
        with playbook_lock():
            before = HostState.read()
            run_started = time.monotonic()
            with subprocess.Popen([str(BIN / "molecule"), "test", "-s", scenario], cwd=REPO,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, stdin=subprocess.DEVNULL,
                                  start_new_session=True) as proc:
                assert proc.stdout is not None
                watchdog = Watchdog(proc, started + RUN_DEADLINE)
                step_started = run_started
                for line in proc.stdout:
                    line = ANSI.sub("", line)
                    lines.append(line)
                    found = STEP.search(line)
                    if found and found.group(3) == "Executing":
                        step_started = time.monotonic()
                        watchdog.step = found.group(2)
                    elif found:
                        steps.append((found.group(2), time.monotonic() - step_started))
                returncode = proc.wait()
                watchdog.cancel()
            if watchdog.stopped_in:
                lines.append(f"\n*** stopped at the test's deadline during {watchdog.stopped_in};"
                             " molecule destroy:\n")
                destroy = subprocess.run(
                    [str(BIN / "molecule"), "destroy", "-s", scenario], cwd=REPO, env=env,
                    capture_output=True, text=True, stdin=subprocess.DEVNULL,
                    timeout=DESTROY_BUDGET, check=False)
                lines.append(ANSI.sub("", destroy.stdout + destroy.stderr))
                lines.append(f"*** molecule destroy: rc={destroy.returncode}\n")
            took = time.monotonic() - run_started
            after = HostState.read()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    log = "".join(lines)
    run = subprocess.CompletedProcess([scenario], returncode, log, "")
    print(f"molecule test -s {scenario}: rc={returncode}, {took:.0f} s; "
          + ", ".join(f"{name} {secs:.0f} s" for name, secs in steps))
    assert not watchdog.stopped_in, (
        f"stopped after {RUN_DEADLINE} s during {watchdog.stopped_in}: {log[-8000:]}")
    assert returncode == 0, log[-8000:]
    for step in ("create", "prepare", "converge", "idempotence", *extra_steps, "verify",
                 "destroy"):
        assert re.search(rf"{scenario}\W+{step}: Executed: Successful", log), (
            f"{step} did not pass")

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
    # (the run's molecule state directory is removed above)
    assert not {e for e in after.tmp_entries - before.tmp_entries
                if prefix in e and e != state_dir.name}
    assert not state_dir.exists()
    processes = subprocess.run(["pgrep", "-af", prefix], capture_output=True, text=True,
                               check=False).stdout
    assert not processes.strip(), f"processes of the run left: {processes}"
    return run, log, took


def test_molecule_aio_passes_and_leaves_only_the_base_image() -> None:
    _, log, _ = _molecule_test("aio", time.monotonic(), extra_steps=("side_effect",))
    assert re.search(r"The APIs listen on the management address", log), "verify changed?"
    # the side effect (reboot.yml): the host rebooted, and with nothing re-run ...
    for task in ("The host booted (PID 1 is a new process)",
                 "Every Stratus unit is active, none restarted",
                 "The external bridge is back, up, with its address",
                 "Server rb-run is ACTIVE again and running",
                 "Server rb-run's new boot got a DHCP lease and its metadata",
                 "The host reaches rb-run on its floating IP again",
                 "The metadata API answers",
                 "Server rb-stop stays SHUTOFF",
                 "No connection errors in it"):
        assert task in log, f"the reboot did not check: {task}"


def test_molecule_multinode_guests_across_gre_and_a_clean_teardown() -> None:
    _, log, _ = _molecule_test("multinode", time.monotonic())
    for task in ("The scheduler put one server on each compute host",
                 "Server mn-b reached mn-a across the GRE tunnel",
                 "The controller reaches mn-a on its floating IP",
                 "Server mn-c went to compute2",
                 "The boot is refused with a fault that names the reason",
                 "Healed, compute2 takes the boot",
                 "None is left"):
        assert task in log, f"verify did not check: {task}"
