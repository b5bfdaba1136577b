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

import json
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


PLAYBOOK = """\
- name: The network role's agent state directory and legacy cleanup
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Prepare the agent's state directory
      ansible.builtin.include_role:
        name: network
        tasks_from: agent_state.yml
    - name: Remove what a release before deploy prefixes left
      ansible.builtin.include_role:
        name: network
        tasks_from: agent_legacy.yml
      when: _network_agent_legacy_layout | bool
"""


def _role_run(root: Path, conf: Path, state_dir: Path, deploy_prefix: str,
              config_legacy: bool = False) -> subprocess.CompletedProcess[str]:
    """ansible-playbook over the role's two task files, as site.yml runs them (the agent's
    service deploy between them is what the e2e deploys cover). ``config_legacy``: what
    the common preflight notes when stratus.conf had no deploy_prefix before the run."""
    (root / "play.yml").write_text(PLAYBOOK)
    extra = {"common_deploy_prefix": deploy_prefix, "common_config_file": str(conf),
             "_common_config_legacy": config_legacy,
             "common_venv_dir": str(AGENT.parent.parent),
             "network_agent_state_dir": str(state_dir),
             "ansible_python_interpreter": sys.executable}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
                "ANSIBLE_LOCAL_TEMP": str(root / "ansible-tmp"),
                "ANSIBLE_HOME": str(root / "ansible-home")})
    return subprocess.run(
        [str(AGENT.with_name("ansible-playbook")), "-i", "localhost,", str(root / "play.yml"),
         "-e", json.dumps(extra)], env=env, capture_output=True, text=True, timeout=300)


def _recap(proc: subprocess.CompletedProcess[str]) -> str:
    return next(line for line in proc.stdout.splitlines() if line.startswith("localhost"))


def test_the_role_removes_an_earlier_releases_objects_once_on_upgrade(lab: Lab) -> None:
    """A state directory an earlier release made (no ``deploy-prefix`` mark, its
    ``dhcp/<network id>`` layout) is the old layout: the role runs ``--cleanup-legacy``,
    which removes that release's namespace (and the process in it), bridge, VXLAN device,
    table and state, leaves this deploy's and another deploy's objects, and marks the
    directory. A second run changes nothing and removes nothing (an unprefixed namespace
    made since stays: it is not ours to judge). A fresh directory, or an unmarked one of
    this release, is only marked; an unmarked one on a host whose stratus.conf an earlier
    release wrote is cleaned; a directory marked by another deploy prefix is refused."""
    host = lab.host(f"{PREFIX}-lg-{uuid.uuid4().hex[:6]}")
    root = _root(lab)
    state = root / "state"
    old_net, net = str(uuid.uuid4()), str(uuid.uuid4())
    conf = root / "stratus.conf"
    conf.write_text(
        f"[DEFAULT]\ndeploy_prefix = {PREFIX}\n"
        "[agent]\nl2_backend = linuxbridge\nunderlay_ip = 172.31.254.2\n"
        f"state_dir = {state}\nnetwork_state_url = {root / 'state.json'}\n"
        f"host_netns = {host}\nnetns_prefix = {host}-\nnft_prefix = stratus_test_\n")
    # the earlier release's objects (unprefixed names, its state layout)
    old_bridge = "brq" + old_net[:11]
    for argv in (["link", "add", old_bridge, "type", "bridge"],
                 ["link", "add", "vxlan-310", "type", "vxlan", "id", "310", "local",
                  "172.31.254.2", "dstport", "4789", "nolearning"],
                 ["link", "set", "vxlan-310", "master", old_bridge]):
        sh("ip", "-n", host, *argv)
    old_ns = lab.netns(f"{host}-qdhcp-{old_net}")
    sleeper = _sleeper(lab, old_ns)
    (state / "dhcp" / old_net).mkdir(parents=True)
    nsx(host, "nft", "add", "table", "inet", "stratus_test_sg")
    # this deploy's and another deploy's objects: they stay
    keep_ns = [lab.netns(f"{host}-{n.dhcp_netns(net)}") for n in (OURS, OTHER)]
    keep_links = [n.network_bridge(net) for n in (OURS, OTHER)]
    for name in keep_links:
        sh("ip", "-n", host, "link", "add", name, "type", "bridge")
    for n in (OURS, OTHER):
        nsx(host, "nft", "add", "table", "inet", n.table("sg"))
    (state / "dhcp" / OURS.dhcp_netns(net)).mkdir()

    proc = _role_run(root, conf, state, PREFIX)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "changed=2" in _recap(proc), proc.stdout
    links = sh("ip", "-n", host, "-o", "link")
    assert old_bridge not in links and "vxlan-310" not in links
    assert not Path("/run/netns", old_ns).exists()
    sleeper.wait(timeout=10)  # stopped by pid with its namespace
    assert not (state / "dhcp" / old_net).exists()
    tables = nsx(host, "nft", "list", "tables")
    assert "stratus_test_sg\n" not in tables + "\n"
    for ns in keep_ns:
        assert Path("/run/netns", ns).exists(), ns
    for name in keep_links:
        assert name in links, name
    for n in (OURS, OTHER):
        assert n.table("sg") in tables
    assert (state / "dhcp" / OURS.dhcp_netns(net)).is_dir()
    assert (state / "deploy-prefix").read_text() == f"{PREFIX}\n"

    # marked now: a second run changes nothing, and judges no unprefixed object
    later_ns = lab.netns(f"{host}-qrouter-{uuid.uuid4()}")
    proc = _role_run(root, conf, state, PREFIX)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "changed=0" in _recap(proc), proc.stdout
    assert Path("/run/netns", later_ns).exists()

    # an unmarked directory of this release (prefixed layout only), or a fresh one: marked,
    # no cleanup
    current, fresh = root / "current", root / "fresh"
    (current / "dhcp" / OURS.dhcp_netns(net)).mkdir(parents=True)
    for state_dir in (current, fresh):
        proc = _role_run(root, conf, state_dir, PREFIX)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (state_dir / "deploy-prefix").read_text() == f"{PREFIX}\n"
        # one task makes the directory and its mark (25db495): the cleanup would be another
        assert "changed=1" in _recap(proc), proc.stdout
        assert Path("/run/netns", later_ns).exists()

    # a host whose stratus.conf an earlier release wrote (a compute host: no dnsmasq
    # directories): the cleanup runs
    old_host = root / "old-host"
    old_host.mkdir()
    proc = _role_run(root, conf, old_host, PREFIX, config_legacy=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not Path("/run/netns", later_ns).exists()
    assert (old_host / "deploy-prefix").read_text() == f"{PREFIX}\n"
    for ns in keep_ns:
        assert Path("/run/netns", ns).exists(), ns

    # another deploy prefix on the same directory: refused, nothing changed
    proc = _role_run(root, conf, state, "zsby", config_legacy=True)
    assert proc.returncode != 0
    assert "belongs to the deploy with prefix 'zsb'" in proc.stdout, proc.stdout
    assert (state / "deploy-prefix").read_text() == f"{PREFIX}\n"
    for ns in keep_ns:
        assert Path("/run/netns", ns).exists(), ns


PREFLIGHT = """\
- name: The common preflight and the database role's names for one deploy prefix
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Common preflight
      ansible.builtin.include_role:
        name: common
        tasks_from: preflight.yml
    - name: Database preflight
      ansible.builtin.include_role:
        name: database
        tasks_from: preflight.yml
        public: true
    - name: Show the PostgreSQL name prefix
      ansible.builtin.debug:
        msg: "name prefix [{{ database_postgresql_name_prefix }}]"
"""


def test_a_common_prefix_holds_one_deploy_and_databases_carry_the_deploy_prefix() -> None:
    """Two deploys with one stratus_prefix would share stratus.conf, the virtualenv,
    supervisord and every state directory: the common preflight refuses a deploy prefix
    other than the one in the stratus.conf already there (a stratus.conf without one, an
    earlier release's, is an upgrade). PostgreSQL names carry the deploy prefix (not for the
    default st), so deploys sharing the host's PostgreSQL never share or drop each other's."""
    if not AGENT.with_name("ansible-playbook").exists():
        pytest.skip("ansible-playbook is not installed in the test virtualenv")
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-", dir="/tmp"))
    try:
        (root / "play.yml").write_text(PREFLIGHT)
        conf = root / "etc" / "stratus" / "stratus.conf"
        conf.parent.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update({"ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_LOCALHOST_WARNING": "0",
                    "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
                    "ANSIBLE_LOCAL_TEMP": str(root / "ansible-tmp"),
                    "ANSIBLE_HOME": str(root / "ansible-home")})

        def preflight(deploy_prefix: str) -> subprocess.CompletedProcess[str]:
            extra = {"stratus_prefix": str(root), "stratus_deploy_prefix": deploy_prefix,
                     "ansible_python_interpreter": sys.executable}
            return subprocess.run(
                [str(AGENT.with_name("ansible-playbook")), "-i", "localhost,",
                 str(root / "play.yml"), "-e", json.dumps(extra)],
                env=env, capture_output=True, text=True, timeout=300)

        conf.write_text("[DEFAULT]\ndebug = false\ndeploy_prefix = zsb\n")
        proc = preflight("zsb")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "name prefix [stratus_zsb_]" in proc.stdout
        proc = preflight("zsby")
        assert proc.returncode != 0
        assert "belongs to the deploy with prefix 'zsb', not to this one ('zsby')" in (
            proc.stdout + proc.stderr), proc.stdout
        conf.write_text("[DEFAULT]\ndebug = false\n")  # an earlier release's: an upgrade
        proc = preflight("st")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "name prefix [stratus_]" in proc.stdout
    finally:
        shutil.rmtree(root, ignore_errors=True)
