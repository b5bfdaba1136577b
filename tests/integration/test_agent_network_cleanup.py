"""Issue 16 against the real host tools: ``stratus-network-agent --cleanup`` of an OVS
deploy while Open vSwitch is stopped or not installed (it removes what it can and says
what it could not), and the network role's legacy cleanup on upgrade (an ansible-playbook
run of ``roles/network/tasks/agent_legacy.yml``).

Everything lives in fake hosts (network namespaces ``zsb-...`` with a random suffix, the
agent's ``host_netns``); the deploy prefix is ``zsb``, another deploy's ``zsbx``; files
under ``/tmp/zsb-...``. The host's own Open vSwitch is never asked: the agent is pointed
at an empty ``ovs_rundir`` (Open vSwitch down) or at a PATH without ``ovs-*`` (absent).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab import Lab, nsx, sh
from stratus.agent.network.naming import Naming

pytestmark = [pytest.mark.integration]

PREFIX = "zsb"
OURS = Naming(deploy_prefix=PREFIX, nft_prefix="stratus_test_")
OTHER = Naming(deploy_prefix="zsbx", nft_prefix="stratus_test_")
AGENT = Path(sys.executable).with_name("stratus-network-agent")
REPO = Path(__file__).resolve().parents[2]


def _require() -> None:
    missing = [t for t in ("ip", "nft", "ovs-vsctl") if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing host tools {missing}: run scripts/install-test-deps.sh")
    if not AGENT.exists():
        pytest.skip("stratus-network-agent is not installed (pip install -e .)")


@pytest.fixture
def lab() -> Iterator[Lab]:
    _require()
    lab = Lab(tag=PREFIX)
    yield lab
    lab.cleanup()


def _root(lab: Lab) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-", dir="/tmp"))
    root.chmod(0o755)
    lab.dirs.append(root)
    return root


def _sleeper(lab: Lab, ns: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "600"],
                            start_new_session=True)
    lab.pids.append(proc.pid)
    return proc


def _without_ovs_path(root: Path) -> str:
    """A PATH of symlinks to every program on this PATH except Open vSwitch's."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for entry in os.environ.get("PATH", "").split(":"):
        if not os.path.isdir(entry):
            continue
        for prog in os.listdir(entry):
            target = bin_dir / prog
            if not prog.startswith("ovs") and not target.exists():
                target.symlink_to(os.path.join(entry, prog))
    return str(bin_dir)


@pytest.mark.parametrize("ovs", ["down", "absent"])
def test_cleanup_of_an_ovs_deploy_without_open_vswitch(lab: Lab, ovs: str) -> None:
    """No traceback: this deploy's namespaces (with their processes), nftables tables and
    the Linux devices of its hybrid plugs and uplink go; another deploy's stay; with OVS
    down it exits 1 naming the OVS bridges it could not remove, without OVS it exits 0."""
    host = lab.host(f"{PREFIX}-ovs-{uuid.uuid4().hex[:6]}")
    root = _root(lab)
    net, port = str(uuid.uuid4()), str(uuid.uuid4())
    conf = root / "stratus.conf"
    conf.write_text(
        f"[DEFAULT]\ndeploy_prefix = {PREFIX}\n"
        "[agent]\nl2_backend = ovs\ndatapath_type = netdev\nunderlay_ip = 172.31.254.1\n"
        f"state_dir = {root / 'state'}\nnetwork_state_url = {root / 'state.json'}\n"
        f"host_netns = {host}\nnetns_prefix = {host}-\nnft_prefix = stratus_test_\n"
        f"ovs_rundir = {root / 'ovs'}\nphysical_interface_mappings = public:ext0\n")
    (root / "ovs").mkdir()  # an Open vSwitch that is not running: no db.sock
    ours_ns, others_ns = [], []
    for naming, names in ((OURS, ours_ns), (OTHER, others_ns)):
        for ns in (naming.dhcp_netns(net), naming.router_netns(port)):
            names.append(lab.netns(f"{host}-{ns}"))
        qbr, qvb, qvo = naming.hybrid(port)
        outer, inner = naming.uplink("ext0")
        for argv in (["link", "add", qbr, "type", "bridge"],
                     ["link", "add", qvb, "type", "veth", "peer", "name", qvo],
                     ["link", "set", qvb, "master", qbr],
                     ["link", "add", outer, "type", "veth", "peer", "name", inner]):
            sh("ip", "-n", host, *argv)
        nsx(host, "nft", "add", "table", "inet", naming.table("sg"))
    sleeper = _sleeper(lab, ours_ns[0])
    env = dict(os.environ)
    if ovs == "absent":
        env["PATH"] = _without_ovs_path(root)
    proc = subprocess.run([str(AGENT), "--config-file", str(conf), "--cleanup"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    if ovs == "down":
        assert proc.returncode == 1, proc.stderr
        assert "Open vSwitch does not answer" in proc.stderr, proc.stderr
        assert OURS.ovs_bridge("int") in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert "Open vSwitch is not installed" in proc.stderr, proc.stderr
    sleeper.wait(timeout=10)  # stopped by pid with its namespace
    links = sh("ip", "-n", host, "-o", "link")
    tables = nsx(host, "nft", "list", "tables")
    for ns in ours_ns:
        assert not Path("/run/netns", ns).exists(), ns
    for dev in (*OURS.hybrid(port), *OURS.uplink("ext0")):
        assert f" {dev}:" not in links and f" {dev}@" not in links, dev
    assert OURS.table("sg") not in tables
    for ns in others_ns:
        assert Path("/run/netns", ns).exists(), f"{ns} (another deploy's) was removed"
    for dev in (*OTHER.hybrid(port), *OTHER.uplink("ext0")):
        assert dev in links, f"{dev} (another deploy's) was removed"
    assert OTHER.table("sg") in tables
