"""The compute agent's spawn overlaps its own work with the network agent's (issue 17): the
domain is defined while the ports are being made ACTIVE, and only started once they are."""

from __future__ import annotations

from typing import Any

import pytest
from test_compute_agent import SERVER_A, assignment, env  # noqa: F401 (the fixture)

from stratus.agent.compute.virt.base import RUNNING

pytestmark = pytest.mark.unit


class ObservingNetworkApi:
    """A long-polling network API that records the domain's state at each wait."""

    def __init__(self, e: Any) -> None:
        self.env = e
        self.seen: list[tuple[bool, bool]] = []

    def port_status(self, port_id: str) -> str:
        raise AssertionError("the agent asked instead of waiting")

    def wait_active(self, port_id: str, timeout: float) -> str:
        dom = self.env.driver.domains.get(SERVER_A)
        self.seen.append((dom is not None, dom is not None and dom.state == RUNNING))
        return "ACTIVE"


def test_the_domain_is_defined_while_the_ports_become_active_and_started_after(
        env: Any) -> None:  # noqa: F811 (the fixture)
    env.agent.network = ObservingNetworkApi(env)
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    assert env.agent.network.seen and all(
        defined and not running for defined, running in env.agent.network.seen)
    assert env.driver.domains[SERVER_A].state == RUNNING
    assert env.api.last(SERVER_A)["vm_state"] == "active"


def test_ports_never_active_leave_no_domain(env: Any) -> None:  # noqa: F811 (the fixture)
    env.settings.vif_plug_timeout = 0
    env.network.active_after = 10 ** 6
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    body = env.api.last(SERVER_A)
    assert body["reschedule"] is True and "not ACTIVE" in body["fault"]["message"]
    assert SERVER_A not in env.driver.domains
