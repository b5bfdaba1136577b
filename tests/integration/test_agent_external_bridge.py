"""Issue 11: the network agent makes the deploy's external bridge again after a host boot.

Real ``ip`` commands, run inside a network namespace of the test's own (``zho<hex>``, as a
host after a boot: no bridge), through the agent's IpLib, with the agent's pass
(``NetworkAgent.reconcile_once``, a JSON state file with nothing in it, fake drivers for
the rest): the bridge ``zho<hex>`` comes back with its address, up and marked; a second
pass changes nothing; a device of that name that is not a bridge is reported and left.
The namespace (and so everything in it) is deleted afterwards.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratus.agent.ip_lib import IpLib
from stratus.agent.network.drivers.fake import (
    FakeDhcp,
    FakeFirewall,
    FakeHost,
    FakeL2,
    FakeMetadata,
    FakeRouters,
)
from stratus.agent.network.external import ExternalBridge
from stratus.agent.network.reconcile import NetworkAgent, NetworkDrivers
from stratus.agent.network.sources import JsonFileSource
from stratus.agent.runner import Runner

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2")]

CIDR = "172.24.4.1/24"


@pytest.fixture
def netns() -> Iterator[str]:
    name = "zho" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def _link(netns: str, dev: str) -> dict[str, Any] | None:
    done = subprocess.run(["ip", "-n", netns, "-j", "-d", "addr", "show", "dev", dev],
                          capture_output=True, text=True, check=False)
    data = json.loads(done.stdout or "[]") if done.returncode == 0 else []
    return data[0] if data else None


def _agent(netns: str, bridge: str, tmp_path: Path) -> NetworkAgent:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"host": "zho1"}))
    ip = IpLib(Runner(netns=netns))
    host = FakeHost()
    drivers = NetworkDrivers(FakeL2(host), FakeDhcp(host), FakeRouters(host),
                             FakeFirewall(host), FakeMetadata(host))
    return NetworkAgent(drivers, JsonFileSource(str(state)),
                        external=ExternalBridge(ip, bridge, CIDR, "zho"))


def test_the_external_bridge_comes_back_with_its_address(netns: str, tmp_path: Path) -> None:
    bridge = "zho" + secrets.token_hex(3)
    agent = _agent(netns, bridge, tmp_path)
    assert _link(netns, bridge) is None  # a host after a boot: the bridge is gone
    report = agent.reconcile_once()
    assert report.ok, report
    link = _link(netns, bridge)
    assert link is not None
    assert link["linkinfo"]["info_kind"] == "bridge"
    assert link.get("ifalias") == "stratus:zho"  # teardown removes only a marked bridge
    assert "UP" in link["flags"]
    assert [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"]
            if a["family"] == "inet"] == [CIDR]
    ifindex = link["ifindex"]
    # a second pass: nothing made again
    assert agent.reconcile_once().ok
    assert _link(netns, bridge)["ifindex"] == ifindex  # type: ignore[index]
    # its address removed by hand: only the address comes back
    subprocess.run(["ip", "-n", netns, "addr", "flush", "dev", bridge], check=True)
    assert agent.reconcile_once().ok
    again = _link(netns, bridge)
    assert again is not None and again["ifindex"] == ifindex
    assert CIDR in {f"{a['local']}/{a['prefixlen']}" for a in again["addr_info"]}


def test_a_device_of_that_name_that_is_no_bridge_is_reported_and_left(
        netns: str, tmp_path: Path) -> None:
    bridge = "zho" + secrets.token_hex(3)
    subprocess.run(["ip", "-n", netns, "link", "add", bridge, "type", "veth", "peer", "name",
                    bridge + "p"], check=True)
    report = _agent(netns, bridge, tmp_path).reconcile_once()
    assert "not a bridge" in report.permanent["external bridge"]
    link = _link(netns, bridge)
    assert link is not None and link["linkinfo"]["info_kind"] == "veth"
