"""Issue 16: the network agent removes only host objects with its own deploy prefix.

The real drivers run against a fake host (a runner that plays ``ip``, ``nft``,
``ovs-vsctl`` and ``ovs-ofctl`` over in-memory tables) holding, for every kind of host
object, one of our own (stale: the desired state is empty), one of another deploy
(``xx``), one of a deploy whose prefix starts like ours (``stt``) and one without any
prefix (an earlier release's name). A cleanup (an empty desired state, then the
host-wide teardown: what ``stratus-network-agent --cleanup`` does) removes exactly ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from stratus.agent.ip_lib import IpLib
from stratus.agent.network.drivers.dnsmasq import DnsmasqDriver
from stratus.agent.network.drivers.linuxbridge import LinuxBridgeDriver
from stratus.agent.network.drivers.metadata import ProcessMetadataProxy
from stratus.agent.network.drivers.nft_firewall import NftFirewall
from stratus.agent.network.drivers.ovs import OvsDriver
from stratus.agent.network.drivers.router import NamespaceRouterDriver
from stratus.agent.network.external import ExternalBridge
from stratus.agent.network.legacy import cleanup_legacy
from stratus.agent.network.naming import Naming
from stratus.agent.network.reconcile import NetworkAgent, NetworkDrivers
from stratus.agent.network.sources import StaticSource
from stratus.agent.runner import CommandError, Runner
from stratus.contracts.network import HostState

pytestmark = pytest.mark.unit

NET = "4c837e8a-ef00-4000-8000-000000000001"
PORT = "1ba43184-e0aa-4000-8000-000000000002"
OURS = Naming(deploy_prefix="st", host="cmp1")
OTHERS = [Naming(deploy_prefix="xx", host="cmp1"), Naming(deploy_prefix="stt", host="cmp1")]
# An earlier release's names (no prefix at all).
LEGACY_LINKS = {"brq4c837e8a-ef": "bridge", "vxlan-101": "vxlan", "tap1ba43184-e0": "veth",
                "qbr1ba43184-e0": "bridge", "qvo1ba43184-e0": "veth", "qvb1ba43184-e0": "veth",
                "phy-br-ex": "veth", "int-br-ex": "veth"}
LEGACY_NETNS = {f"qdhcp-{NET}", "qrouter-9a0c1f52-0d3e-4f7a-8b6c-5d4e3f2a1b0c"}


class FakeHostRunner(Runner):
    """Plays the host commands the drivers run, over in-memory tables."""

    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, dict[str, Any]] = {}
        self.netns: set[str] = set()
        self.tables: set[tuple[str, str]] = set()  # (family, name), in the host namespace
        self.ovs_bridges: dict[str, dict[str, str]] = {}  # name -> external_ids
        self.ovs_ports: dict[str, dict[str, Any]] = {}  # name -> bridge, tag, external_ids
        self.flows: dict[str, set[str]] = {}  # bridge -> cookies
        self.calls: list[list[str]] = []
        self.ovs = "running"  # or "down" (ovsdb-server does not answer), or "absent"

    def link(self, name: str, kind: str, master: str | None = None) -> None:
        info: dict[str, Any] = {"ifname": name, "ifindex": len(self.links) + 2,
                                "flags": ["UP"], "linkinfo": {"info_kind": kind}}
        if master:
            info["master"] = master
        self.links[name] = info

    def ok(self, argv: Sequence[str]) -> bool:
        argv = list(argv)
        if argv[0].startswith("ovs-") and self.ovs == "absent":
            raise FileNotFoundError(argv[0])
        if argv == ["ovs-vsctl", "--version"]:
            return True
        if argv[:2] == ["ovs-vsctl", "br-exists"]:
            return self.ovs == "running" and argv[2] in self.ovs_bridges
        raise AssertionError(f"unexpected check {argv}")

    def run(self, argv: Sequence[str], check: bool = True, input: str | None = None,
            wrap: bool = True) -> str:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0].startswith("ovs-") and self.ovs != "running":  # as Runner.run says it
            if self.ovs == "absent":
                raise CommandError(argv, 127, f"No such file or directory: '{argv[0]}'",
                                   temporary=False)
            raise CommandError(argv, 1, f"{argv[0]}: unix:/var/run/openvswitch/db.sock: "
                                        "database connection failed (No such file or directory)")
        if argv[:3] == ["ip", "netns", "list"]:
            return "".join(f"{n} (id: {i})\n" for i, n in enumerate(sorted(self.netns)))
        if argv[:3] == ["ip", "netns", "delete"]:
            self.netns.discard(argv[3])
            return ""
        if argv[:3] == ["ip", "netns", "pids"]:
            return ""
        if argv[:5] == ["ip", "-j", "-d", "link", "show"]:
            if len(argv) == 5:
                return json.dumps(list(self.links.values()))
            return json.dumps([self.links[argv[6]]] if argv[6] in self.links else [])
        if argv[:4] == ["ip", "link", "delete", "dev"]:
            self.links.pop(argv[4], None)
            for link in self.links.values():  # as the kernel: its ports are detached
                if link.get("master") == argv[4]:
                    del link["master"]
            return ""
        if argv[:4] == ["ip", "link", "set", "dev"] and argv[5:] == ["nomaster"]:
            self.links[argv[4]].pop("master", None)
            return ""
        if argv[:3] == ["nft", "-t", "list"]:
            family, name = argv[4], argv[5]
            return f"table {family} {name} {{\n}}\n" if (family, name) in self.tables else ""
        if argv[:3] == ["nft", "delete", "table"]:
            self.tables.discard((argv[3], argv[4]))
            return ""
        if argv[:2] == ["ovs-vsctl", "--timeout=10"]:
            return self.vsctl(argv[2:])
        if argv[:2] == ["ovs-ofctl", "del-flows"]:
            cookie = argv[3].removeprefix("cookie=").removesuffix("/-1")
            self.flows.get(argv[2], set()).discard(cookie)
            return ""
        raise AssertionError(f"unexpected command {argv}")

    def vsctl(self, args: list[str]) -> str:
        if args[:3] == ["--format=json", "--columns=name,external_ids", "find"]:
            rows = [[name, ["map", sorted(p["external_ids"].items())]]
                    for name, p in self.ovs_ports.items()]
            return json.dumps({"data": rows, "headings": ["name", "external_ids"]})
        if args[:3] == ["--format=json", "--columns=name,tag,external_ids", "find"]:
            rows = [[name, p["tag"] if p["tag"] is not None else ["set", []],
                     ["map", sorted(p["external_ids"].items())]]
                    for name, p in self.ovs_ports.items()]
            return json.dumps({"data": rows, "headings": ["name", "tag", "external_ids"]})
        if args == ["show"]:
            return ""
        if args[0] == "list-ports":
            return "".join(f"{n}\n" for n, p in self.ovs_ports.items() if p["bridge"] == args[1])
        if args[0] == "br-get-external-id":
            return "".join(f"{k}={v}\n" for k, v in self.ovs_bridges[args[1]].items())
        if args[0] == "br-set-external-id":
            ids = self.ovs_bridges[args[1]]
            if len(args) == 3:
                ids.pop(args[2], None)
            else:
                ids[args[2]] = args[3]
            return ""
        args = [a for a in args if a != "--no-wait"]
        if args[:2] == ["--if-exists", "del-port"]:
            port = self.ovs_ports.get(args[3])
            if port and port["bridge"] == args[2]:
                del self.ovs_ports[args[3]]
            return ""
        if args[:2] == ["--if-exists", "del-br"]:
            self.ovs_bridges.pop(args[2], None)
            self.ovs_ports = {n: p for n, p in self.ovs_ports.items() if p["bridge"] != args[2]}
            return ""
        raise AssertionError(f"unexpected ovs-vsctl {args}")


class FakeIpLib(IpLib):
    """IpLib whose named namespaces are the fake host's (not /run/netns)."""

    runner: FakeHostRunner

    def netns_exists(self, name: str) -> bool:
        return name in self.runner.netns


def state_dir_files(root: Path, naming: Naming) -> list[Path]:
    """A dnsmasq directory and a metadata proxy's files of a deploy (none running)."""
    dhcp = root / "dhcp" / naming.dhcp_netns(NET)
    dhcp.mkdir(parents=True)
    (dhcp / "pid").write_text("999999999\n")
    (dhcp / "leases").write_text("")
    meta = root / "metadata"
    meta.mkdir(exist_ok=True)
    files = [dhcp]
    for ns in (naming.dhcp_netns(NET), naming.router_netns("r1")):
        for suffix in (".json", ".pid"):
            (meta / f"{ns}{suffix}").write_text("{}" if suffix == ".json" else "999999999\n")
            files.append(meta / f"{ns}{suffix}")
    return files


def host_with_every_deploy(tmp: Path, linuxbridge: bool = True
                           ) -> tuple[FakeHostRunner, dict[str, list[Any]]]:
    """A fake host with our stale objects and the others' (and legacy ones) beside them;
    returns it and what must survive, by kind."""
    host = FakeHostRunner()
    keep: dict[str, list[Any]] = {"links": [], "netns": [], "tables": [], "files": []}
    for naming in (OURS, *OTHERS):
        bridge = naming.network_bridge(NET) if linuxbridge else None
        segment = [naming.network_bridge(NET), naming.vxlan(101)] if linuxbridge else []
        if bridge:
            host.link(bridge, "bridge")
            host.link(naming.vxlan(101), "vxlan", master=bridge)
        host.link(naming.tap(PORT), "veth", master=bridge)
        outer, inner = naming.uplink("br-ex")
        host.link(outer, "veth")
        host.link(inner, "veth", master=bridge)
        host.netns |= {naming.dhcp_netns(NET), naming.router_netns("r1")}
        host.tables |= {("inet", naming.table("sg")), ("bridge", naming.table("antispoof"))}
        files = state_dir_files(tmp, naming)
        if naming is not OURS:
            keep["links"] += [*segment, naming.tap(PORT), outer, inner]
            keep["netns"] += [naming.dhcp_netns(NET), naming.router_netns("r1")]
            keep["tables"] += [("inet", naming.table("sg")),
                               ("bridge", naming.table("antispoof"))]
            keep["files"] += files
    for name, kind in LEGACY_LINKS.items():
        host.link(name, kind, master="brq4c837e8a-ef" if name.startswith("tap") else None)
    host.link("br-ex", "bridge")  # the mapped external bridge: the host's, not ours
    host.link("eth0", "veth")
    host.netns |= LEGACY_NETNS
    host.tables |= {("inet", "stratus_sg"), ("bridge", "stratus_antispoof")}
    keep["links"] += [*LEGACY_LINKS, "br-ex", "eth0"]
    keep["netns"] += sorted(LEGACY_NETNS)
    keep["tables"] += [("inet", "stratus_sg"), ("bridge", "stratus_antispoof")]
    legacy = tmp / "dhcp" / NET  # the earlier release's layout: <state_dir>/dhcp/<net id>
    legacy.mkdir(parents=True)
    (tmp / "metadata" / f"qdhcp-{NET}.json").write_text("{}")
    keep["files"] += [legacy, tmp / "metadata" / f"qdhcp-{NET}.json"]
    return host, keep


def agent_on(host: FakeHostRunner, l2: Any, tmp: Path) -> NetworkAgent:
    ip = l2.ip
    drivers = NetworkDrivers(
        l2=l2, dhcp=DnsmasqDriver(ip, OURS, str(tmp)), routers=NamespaceRouterDriver(ip, OURS),
        firewall=NftFirewall(host, OURS),
        metadata=ProcessMetadataProxy(ip, str(tmp), naming=OURS))
    return NetworkAgent(drivers, StaticSource(HostState(host="cmp1")), naming=OURS)


def assert_only_ours_went(host: FakeHostRunner, keep: dict[str, list[Any]], tmp: Path) -> None:
    for name in keep["links"]:
        assert name in host.links, f"{name} (not ours) was removed"
    for ns in keep["netns"]:
        assert ns in host.netns, f"namespace {ns} (not ours) was removed"
    for table in keep["tables"]:
        assert table in host.tables, f"nft table {table} (not ours) was removed"
    for path in keep["files"]:
        assert path.exists(), f"{path} (not ours) was removed"
    ours = re.compile(r"^st-|^stratus_st_")
    # our taps are the compute agent's (or went with their namespace): detached here
    assert not [n for n in host.links if ours.match(n) and n != OURS.tap(PORT)], host.links
    assert "master" not in host.links.get(OURS.tap(PORT), {})
    assert not [n for n in host.netns if ours.match(n)]
    assert not [t for t in host.tables if ours.match(t[1])]
    assert not list((tmp / "dhcp").glob("st-*")) and not list((tmp / "metadata").glob("st-*"))
    # and no command that removes anything named another deploy's or a legacy object
    foreign = {*keep["links"], *keep["netns"], *(t[1] for t in keep["tables"]),
               *keep.get("ports", [])}
    for argv in host.calls:
        if {"delete", "del-port", "del-br"} & set(argv):
            assert not foreign & set(argv), f"{argv} touches {foreign & set(argv)}"


def test_linuxbridge_cleanup_removes_only_this_deploys_objects(tmp_path: Path) -> None:
    host, keep = host_with_every_deploy(tmp_path)
    ip = FakeIpLib(host)
    l2 = LinuxBridgeDriver(ip, "192.0.2.10", physical_interface_mappings={"public": "br-ex"},
                           naming=OURS)
    agent = agent_on(host, l2, tmp_path)
    assert agent.cleanup("cmp1"), host.calls
    assert_only_ours_went(host, keep, tmp_path)


def test_linuxbridge_lists_only_its_own_segments_taps_and_tunnels() -> None:
    host = FakeHostRunner()
    for naming in (OURS, *OTHERS):
        host.link(naming.network_bridge(NET), "bridge")
        host.link(naming.tap(PORT), "veth", master=naming.network_bridge(NET))
        host.link(naming.vxlan(101), "vxlan", master=naming.network_bridge(NET))
    for name, kind in LEGACY_LINKS.items():
        host.link(name, kind, master="brq4c837e8a-ef" if name.startswith("tap") else None)
    l2 = LinuxBridgeDriver(FakeIpLib(host), "192.0.2.10", naming=OURS)
    assert l2.list_networks() == {"st-br4c837e8aef"}
    assert l2.list_plugged() == {"st-tp1ba43184e0": "st-br4c837e8aef"}
    l2.remove_stale_vxlan(set())
    assert "st-vx101" not in host.links
    assert {"xx-vx101", "stt-vx101", "vxlan-101"} <= set(host.links)
    with pytest.raises(Exception, match="not a bridge of deploy 'st'"):
        l2.remove_network("brq4c837e8a-ef")
    l2.unplug("tap1ba43184-e0")  # not ours: left in its bridge
    assert host.links["tap1ba43184-e0"]["master"] == "brq4c837e8a-ef"


def test_linuxbridge_never_lists_the_mapped_external_bridge_as_a_segment() -> None:
    """The default external bridge (``st-br-ex``) is named like the deploy's network bridges;
    a pass must neither list nor remove it (seen on a fresh all-in-one deploy)."""
    host = FakeHostRunner()
    host.link("st-br-ex", "bridge")
    host.link(OURS.network_bridge(NET), "bridge")
    l2 = LinuxBridgeDriver(FakeIpLib(host), "192.0.2.10",
                           physical_interface_mappings={"public": "st-br-ex"}, naming=OURS)
    assert l2.list_networks() == {"st-br4c837e8aef"}


def test_cleanup_removes_and_never_makes_the_external_bridge_again(tmp_path: Path) -> None:
    """--cleanup converges to nothing: a missing external bridge is not made again (the
    daemon's passes make it; teardown deletes it after the cleanup)."""
    host = FakeHostRunner()
    l2 = LinuxBridgeDriver(FakeIpLib(host), "192.0.2.10",
                           physical_interface_mappings={"public": "st-br-ex"}, naming=OURS)
    agent = agent_on(host, l2, tmp_path)
    agent.external = ExternalBridge(l2.ip, "st-br-ex", "172.24.4.1/24", "st")
    agent.cleanup("cmp1")
    assert "st-br-ex" not in host.links


def ovs_host(tmp: Path) -> tuple[FakeHostRunner, dict[str, list[Any]]]:
    host, keep = host_with_every_deploy(tmp, linuxbridge=False)
    keep["ports"], keep["bridge_ids"] = [], []
    ours_int = OURS.ovs_bridge("int")
    for naming in (OURS, *OTHERS, Naming(deploy_prefix="st", host="cmp2")):
        br_int, br_tun = naming.ovs_bridge("int"), naming.ovs_bridge("tun")
        host.ovs_bridges.setdefault(br_int, dict(naming.ovs_marks))
        host.ovs_bridges.setdefault(br_tun, dict(naming.ovs_marks))
        host.ovs_bridges[br_int][naming.lvlan_key + NET] = "1"
        qvo = naming.hybrid(PORT)[2]
        # another host's ports on our bridge (a shared OVS): its marks say whose they are
        bridge = ours_int if naming.deploy_prefix == "st" else br_int
        name = qvo + "2" if naming.host == "cmp2" else qvo
        host.ovs_ports[name] = {"bridge": bridge, "tag": 1, "external_ids": {
            **naming.ovs_marks, "stratus-net": NET, "stratus-dev": naming.tap(PORT)}}
        if naming.host == "cmp2":
            keep["ports"].append(name)
        elif naming is not OURS:
            keep["ports"].append(qvo)
            keep["bridge_ids"].append((br_int, naming.lvlan_key + NET))
    host.ovs_bridges["br-int"] = {"stratus-lvlan-" + NET: "1"}  # an earlier release's
    host.ovs_ports["qvo1ba43184-e0"] = {"bridge": "br-int", "tag": 1, "external_ids": {
        "stratus-net": NET, "stratus-dev": "tap1ba43184-e0"}}
    host.ovs_ports["eth9"] = {"bridge": ours_int, "tag": None, "external_ids": {}}
    keep["ports"] += ["qvo1ba43184-e0", "eth9"]
    keep["bridge_ids"].append(("br-int", "stratus-lvlan-" + NET))
    return host, keep


def test_ovs_cleanup_removes_only_this_deploys_and_hosts_ports_and_bridges(
        tmp_path: Path) -> None:
    host, keep = ovs_host(tmp_path)
    ip = FakeIpLib(host)
    l2 = OvsDriver(ip, "192.0.2.10", datapath_type="netdev", naming=OURS,
                   physical_bridge_mappings={"public": "br-ex"})
    agent = agent_on(host, l2, tmp_path)
    assert l2.list_networks() == {NET}
    assert l2.list_plugged() == {"st-tp1ba43184e0": NET}
    assert agent.cleanup("cmp1"), host.calls
    for port in keep["ports"]:
        assert port in host.ovs_ports, f"OVS port {port} (not ours) was removed"
    assert "st-qo1ba43184e0" not in host.ovs_ports
    for bridge, key in keep["bridge_ids"]:
        assert key in host.ovs_bridges[bridge], f"{bridge} lost {key} (not ours)"
    assert {"br-int", "xx-br-int", "stt-br-int", "xx-br-tun", "stt-br-tun"} <= set(
        host.ovs_bridges)
    # st-br-int still holds another host's port and an operator's: it stays; st-br-tun
    # (ours alone) goes
    assert "st-br-int" in host.ovs_bridges and "st-br-tun" not in host.ovs_bridges
    assert_only_ours_went(host, keep, tmp_path)


@pytest.mark.parametrize("ovs", ["down", "absent"])
def test_ovs_cleanup_without_open_vswitch_removes_the_rest_and_says_what_it_left(
        tmp_path: Path, ovs: str, caplog: pytest.LogCaptureFixture) -> None:
    """``--cleanup`` with Open vSwitch stopped or not installed: no crash; namespaces,
    dnsmasq/proxy state, nftables tables, the uplink veths and the hybrid plugs' Linux
    devices of this deploy go (by name), nobody else's; with OVS installed but down the
    cleanup fails saying which OVS bridges it could not remove, without OVS it succeeds."""
    host, keep = ovs_host(tmp_path)
    for naming in (OURS, *OTHERS):
        qbr, qvb, qvo = naming.hybrid(PORT)
        host.link(qbr, "bridge")
        host.link(qvb, "veth", master=qbr)
        host.link(qvo, "veth")
        if naming is not OURS:
            keep["links"] += [qbr, qvb, qvo]
    rows = (dict(host.ovs_bridges), dict(host.ovs_ports))
    host.ovs = ovs
    l2 = OvsDriver(FakeIpLib(host), "192.0.2.10", datapath_type="netdev", naming=OURS,
                   physical_bridge_mappings={"public": "br-ex"})
    agent = agent_on(host, l2, tmp_path)
    assert agent.cleanup("cmp1") is (ovs == "absent")
    assert_only_ours_went(host, keep, tmp_path)
    assert not set(OURS.hybrid(PORT)) & set(host.links)
    assert (host.ovs_bridges, host.ovs_ports) == rows  # nothing could be asked or changed
    if ovs == "down":
        said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert any("Open vSwitch does not answer" in m and "st-br-int" in m and
                   "database connection failed" in m for m in said), said


def test_ovs_teardown_deletes_its_own_marked_bridges() -> None:
    host = FakeHostRunner()
    for naming in (OURS, OTHERS[0]):
        for role in ("int", "tun"):
            host.ovs_bridges[naming.ovs_bridge(role)] = dict(naming.ovs_marks)
    host.ovs_bridges["br-int"] = {}
    l2 = OvsDriver(FakeIpLib(host), "192.0.2.10", datapath_type="netdev", naming=OURS)
    l2.teardown()
    assert set(host.ovs_bridges) == {"xx-br-int", "xx-br-tun", "br-int"}


def test_the_agent_plugs_the_tap_the_compute_agent_names() -> None:
    """An instance port without device_name is plugged as tap_name(prefix, port id)."""
    state = HostState.from_dict({
        "host": "cmp1", "networks": [{"id": NET, "segmentation_id": 7}],
        "ports": [{"id": PORT, "network_id": NET, "mac_address": "fa:16:3e:00:00:01",
                   "port_security_enabled": False}]})
    from stratus.agent.network.drivers.fake import (
        FakeDhcp,
        FakeFirewall,
        FakeHost,
        FakeL2,
        FakeMetadata,
        FakeRouters,
    )
    fake = FakeHost()
    t16n = Naming(deploy_prefix="t16n")
    drivers = NetworkDrivers(FakeL2(fake, t16n), FakeDhcp(fake, t16n), FakeRouters(fake, t16n),
                             FakeFirewall(fake), FakeMetadata(fake))
    agent = NetworkAgent(drivers, StaticSource(state), naming=t16n)
    fake.devices |= {"tap1ba43184-e0", "st-tp1ba43184e0"}  # legacy and another deploy's
    report = agent.reconcile_once()
    assert report.waiting_devices == ["t16n-tp1ba43184"]
    fake.devices.add("t16n-tp1ba43184")
    report = agent.reconcile_once()
    assert report.ok and not report.waiting_devices and report.active == [PORT]
    assert set(fake.plugged) == {"t16n-tp1ba43184"}


def test_cleanup_legacy_removes_only_the_unprefixed_objects_of_an_earlier_release(
        tmp_path: Path) -> None:
    """``--cleanup-legacy`` (once, on upgrade) is the only way an unprefixed object goes:
    it takes exactly the earlier release's fixed names and leaves every prefixed deploy's
    objects (ours included) and the instance taps (detached) alone."""
    host, keep = host_with_every_deploy(tmp_path)
    ours = [OURS.network_bridge(NET), OURS.vxlan(101), OURS.tap(PORT), *OURS.uplink("br-ex")]
    ours_ns = [OURS.dhcp_netns(NET), OURS.router_netns("r1")]
    (tmp_path / "metadata" / f"qdhcp-{NET}.pid").write_text("999999999\n")
    host.ovs_bridges = {"br-int": {"stratus-lvlan-" + NET: "1"}, "br-tun": {},
                        "xx-br-int": dict(OTHERS[0].ovs_marks), "br-other": {}}
    host.ovs_ports = {"qvo1ba43184-e0": {"bridge": "br-tun", "tag": None, "external_ids": {
        "stratus-net": NET}}, "eth7": {"bridge": "br-other", "tag": None, "external_ids": {}}}
    gone = cleanup_legacy(FakeIpLib(host), str(tmp_path), ["br-ex"])
    assert gone
    for name in [n for n in keep["links"] if n not in LEGACY_LINKS] + ours:
        assert name in host.links, f"{name} (prefixed) was removed"
    assert "tap1ba43184-e0" in host.links and "master" not in host.links["tap1ba43184-e0"]
    assert "br-ex" in host.links and "eth0" in host.links
    assert not set(LEGACY_LINKS) - {"tap1ba43184-e0"} & set(host.links)
    assert host.netns == {n for n in keep["netns"] if not n.startswith("q")} | set(ours_ns)
    legacy_tables = {("inet", "stratus_sg"), ("bridge", "stratus_antispoof")}
    assert host.tables == {t for t in keep["tables"] if t not in legacy_tables} | {
        ("inet", "stratus_st_sg"), ("bridge", "stratus_st_antispoof")}
    assert set(host.ovs_bridges) == {"xx-br-int", "br-other"}
    assert not (tmp_path / "dhcp" / NET).exists()
    assert not list((tmp_path / "metadata").glob("q*"))
    for path in keep["files"][:-2]:  # every prefixed deploy's state
        assert path.exists(), path
    assert list((tmp_path / "dhcp").glob("st-*")), "our own state went"


def test_ovs_local_vlans_avoid_the_ones_another_deploy_took_on_a_shared_bridge() -> None:
    host = FakeHostRunner()
    host.ovs_bridges["st-br-int"] = {"stratus-xx-lvlan-" + NET: "1",
                                     "stratus-lvlan-" + NET: "2",  # an earlier release's
                                     OURS.lvlan_key + "other-net": "3"}
    l2 = OvsDriver(FakeIpLib(host), "192.0.2.10", datapath_type="netdev", naming=OURS)
    assert l2.local_vlan(NET) == 4
    assert host.ovs_bridges["st-br-int"][OURS.lvlan_key + NET] == "4"
