"""The network agent's external bridge (agent/network/external.py), with a fake IpLib:
made again when missing, its address added when missing, nothing done when all is there.
(The real ``ip`` commands: tests/integration/test_agent_external_bridge.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from stratus.agent.network.drivers.base import DriverError
from stratus.agent.network.external import ExternalBridge

pytestmark = pytest.mark.unit


class FakeIp:
    def __init__(self) -> None:
        self.links: dict[str, dict[str, Any]] = {}
        self.addrs: dict[str, set[str]] = {}
        self.commands: list[list[str]] = []

    def link(self, dev: str) -> dict[str, Any] | None:
        return self.links.get(dev)

    def addresses(self, dev: str) -> set[str]:
        return set(self.addrs.get(dev, set()))

    def change(self, argv: list[str], devices: list[str]) -> str:
        self.commands.append(argv)
        if argv[:3] == ["ip", "link", "add"]:
            self.links[argv[3]] = {"linkinfo": {"info_kind": argv[5]}, "flags": []}
        elif argv[:3] == ["ip", "addr", "add"]:
            self.addrs.setdefault(argv[5], set()).add(argv[3])
        return ""

    def ensure_link_settings(self, dev: str, info: dict[str, Any] | None = None) -> None:
        link = self.links[dev]
        if "UP" not in link["flags"]:
            self.commands.append(["ip", "link", "set", "dev", dev, "up"])
            link["flags"].append("UP")


def test_missing_bridge_is_made_marked_addressed_and_up_then_left_alone() -> None:
    ip = FakeIp()
    ext = ExternalBridge(ip, "zho-br-ex", "172.24.4.1/24", "zho")
    ext.ensure()
    assert ip.commands == [
        ["ip", "link", "add", "zho-br-ex", "type", "bridge", "forward_delay", "0"],
        ["ip", "link", "set", "dev", "zho-br-ex", "alias", "stratus:zho"],
        ["ip", "addr", "add", "172.24.4.1/24", "dev", "zho-br-ex"],
        ["ip", "link", "set", "dev", "zho-br-ex", "up"],
    ]
    ip.commands.clear()
    ext.ensure()
    assert ip.commands == []
    ip.addrs["zho-br-ex"] = {"10.9.9.9/24"}  # its address gone, another one added by hand
    ext.ensure()
    assert ip.commands == [["ip", "addr", "add", "172.24.4.1/24", "dev", "zho-br-ex"]]
    assert ip.addrs["zho-br-ex"] == {"10.9.9.9/24", "172.24.4.1/24"}  # the other one stays


def test_a_device_that_is_not_a_bridge_is_an_error_and_untouched() -> None:
    ip = FakeIp()
    ip.links["zho-br-ex"] = {"linkinfo": {"info_kind": "veth"}, "flags": ["UP"]}
    with pytest.raises(DriverError, match="not a bridge"):
        ExternalBridge(ip, "zho-br-ex", "", "zho").ensure()
    assert ip.commands == []
