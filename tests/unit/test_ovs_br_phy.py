"""The OVS driver's br-phy (userspace datapath) on a host with one NIC: the underlay
address moves onto br-phy with the routes through the interface (the default route
included), and the cleanup moves both back (issue 11: a single-NIC host lost its default
route). A fake host plays ``ip`` with the kernel's rules that matter here: an address brings
its connected route, and a device's last address gone takes every route through it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from stratus.agent.ip_lib import IpLib
from stratus.agent.network.drivers.ovs import OvsDriver
from stratus.agent.network.naming import Naming
from stratus.agent.runner import CommandError, Runner

pytestmark = pytest.mark.unit

NIC, BR_PHY = "eth0", "st-br-phy"
LOCAL = "10.0.0.5"


class FakeHost(Runner):
    """Addresses, routes and the OVS bridges/ports br-phy needs, in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.addrs: dict[str, set[str]] = {NIC: {f"{LOCAL}/24"}, "lo": {"127.0.0.1/8"}}
        self.up: set[str] = {NIC, "lo"}
        self.routes: list[dict[str, Any]] = [
            {"dst": "default", "gateway": "10.0.0.1", "dev": NIC, "protocol": "dhcp",
             "metric": 100, "prefsrc": LOCAL},
            {"dst": "198.51.100.0/24", "gateway": "10.0.0.254", "dev": NIC},
            {"dst": "10.0.0.0/24", "dev": NIC, "protocol": "kernel", "scope": "link",
             "prefsrc": LOCAL},
        ]
        self.bridges: dict[str, set[str]] = {}

    def ok(self, argv: Sequence[str]) -> bool:
        if list(argv[:2]) == ["ovs-vsctl", "br-exists"]:
            return argv[2] in self.bridges
        raise AssertionError(f"unexpected check {argv}")

    def _reachable(self, gateway: str, dev: str) -> bool:
        net = ".".join(gateway.split(".")[:3])
        return dev in self.up and any(a.startswith(net + ".") for a in self.addrs.get(dev, ()))

    def run(self, argv: Sequence[str], check: bool = True, input: str | None = None,
            wrap: bool = True) -> str:
        args = list(argv)
        if args[0] == "ovs-vsctl":
            return self._vsctl([a for a in args[1:] if not a.startswith("--timeout")])
        assert args[0] == "ip", args
        if args[1:4] == ["-j", "-4", "addr"]:
            dev = args[-1]
            info = [{"local": a.split("/")[0], "prefixlen": int(a.split("/")[1])}
                    for a in sorted(self.addrs.get(dev, ()))]
            return json.dumps([{"ifname": dev, "addr_info": info}] if dev in self.addrs else [])
        if args[1:3] == ["-j", "-d"]:
            devs = [args[-1]] if "dev" in args else sorted(self.addrs)
            return json.dumps([{"ifname": d, "flags": ["UP"] if d in self.up else []}
                               for d in devs if d in self.addrs])
        if args[1:3] == ["link", "set"]:
            if "up" in args:
                self.up.add(args[4])
            return ""
        if args[1] == "addr":
            cidr, dev = args[3], args[5]
            if args[2] == "add":
                self.addrs[dev].add(cidr)
                if dev in self.up:
                    self.routes.append({"dst": "10.0.0.0/24", "dev": dev, "protocol": "kernel",
                                        "scope": "link", "prefsrc": cidr.split("/")[0]})
            else:
                self.addrs[dev].discard(cidr)
                if not self.addrs[dev]:  # the kernel drops every route through it
                    self.routes = [r for r in self.routes if r["dev"] != dev]
            return ""
        if args[1:5] == ["-j", "-4", "route", "show"]:
            dev = args[-1]
            return json.dumps([{k: v for k, v in r.items() if k != "dev"} | {"flags": []}
                               for r in self.routes if r["dev"] == dev])
        if args[1:4] == ["-4", "route", "replace"]:
            new: dict[str, Any] = {"dst": args[4], "dev": args[args.index("dev") + 1]}
            if "via" in args:
                new["gateway"] = args[args.index("via") + 1]
                if not self._reachable(new["gateway"], new["dev"]):
                    raise CommandError(args, 2, "Error: Nexthop has invalid gateway.")
            for word, key in (("metric", "metric"), ("proto", "protocol"), ("src", "prefsrc")):
                if word in args:
                    value = args[args.index(word) + 1]
                    new[key] = int(value) if key == "metric" else value
            self.routes = [r for r in self.routes
                           if (r["dst"], r.get("metric")) != (new["dst"], new.get("metric"))]
            self.routes.append(new)
            return ""
        if args[1:4] == ["-4", "route", "del"]:
            before = len(self.routes)
            self.routes = [r for r in self.routes
                           if not (r["dst"] == args[4] and r["dev"] == args[6])]
            if len(self.routes) == before and check:
                raise CommandError(args, 2, "RTNETLINK answers: No such process")
            return ""
        raise AssertionError(f"unexpected command {args}")

    def _vsctl(self, args: list[str]) -> str:
        args = [a for a in args if a != "--may-exist" and a != "--if-exists"]
        if args[0] == "add-br":
            self.bridges.setdefault(args[1], set())
            self.addrs.setdefault(args[1], set())
        elif args[0] == "add-port":
            self.bridges[args[1]].add(args[2])
        elif args[0] == "del-port":
            self.bridges.get(args[1], set()).discard(args[2])
        elif args[0] == "get":
            return "netdev"
        else:
            raise AssertionError(f"unexpected ovs-vsctl {args}")
        return ""


def driver(host: FakeHost) -> OvsDriver:
    return OvsDriver(IpLib(host), LOCAL, tunnel_type="gre", datapath_type="netdev",
                     underlay_interface=NIC, naming=Naming(deploy_prefix="st", host="cmp1"))


def routes(host: FakeHost, dev: str) -> set[tuple[str, str | None]]:
    return {(r["dst"], r.get("gateway")) for r in host.routes
            if r["dev"] == dev and r.get("protocol") != "kernel"}


def test_br_phy_takes_the_address_and_the_routes_and_cleanup_gives_them_back() -> None:
    host = FakeHost()
    wanted = {("default", "10.0.0.1"), ("198.51.100.0/24", "10.0.0.254")}
    l2 = driver(host)
    l2._ensure_br_phy()
    assert host.addrs[BR_PHY] == {f"{LOCAL}/24"} and not host.addrs[NIC]
    assert NIC in host.bridges[BR_PHY]
    assert routes(host, BR_PHY) == wanted, host.routes  # the default route survived
    assert not routes(host, NIC)
    default = next(r for r in host.routes if r["dst"] == "default")
    assert (default["metric"], default["protocol"], default["prefsrc"]) == (100, "dhcp", LOCAL)

    l2.begin_pass()
    l2._ensure_br_phy()  # the next pass changes nothing
    assert routes(host, BR_PHY) == wanted and host.addrs[BR_PHY] == {f"{LOCAL}/24"}

    l2._release_br_phy()
    assert host.addrs[NIC] == {f"{LOCAL}/24"}
    assert routes(host, NIC) == wanted, host.routes
    assert NIC not in host.bridges[BR_PHY]


def test_an_interface_without_the_underlay_address_keeps_its_routes() -> None:
    """br-phy already holds the address (an earlier pass): nothing of the NIC's moves."""
    host = FakeHost()
    host.addrs[NIC] = {"10.9.9.9/24"}
    l2 = driver(host)
    l2._ensure_br_phy()
    assert host.addrs[NIC] == {"10.9.9.9/24"}
    assert routes(host, NIC) == {("default", "10.0.0.1"), ("198.51.100.0/24", "10.0.0.254")}
