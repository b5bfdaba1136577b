"""Servers stuck on a dead compute host go ERROR from the heartbeat path (any host's
heartbeat, throttled), without anyone listing or showing them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from compute_api import ALICE, ComputeApi, in_process
from stratus.compute import models as m
from stratus.compute.core import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path, Settings(dead_host_sweep_interval=0.0)) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def rows(api: ComputeApi) -> dict[str, m.Server]:
    """The servers as stored (read directly: no list/show that would sweep too)."""
    with api.core.db.session() as s:
        out = {r.name: r for r in s.query(m.Server)}
        for r in out.values():
            s.expunge(r)
    return out


def age(api: ComputeApi, host: str | None, names: list[str], seconds: int = 600) -> None:
    """Make the host's heartbeat and the servers' last change ``seconds`` old."""
    with api.core.db.session() as s:
        if host:
            h = s.query(m.ComputeHost).filter_by(host=host).one()
            h.heartbeat_at -= timedelta(seconds=seconds)
        for srv in s.query(m.Server).filter(m.Server.name.in_(names)):
            srv.updated_at -= timedelta(seconds=seconds)


def boot(api: ComputeApi, name: str, active: bool = False) -> str:
    sid: str = api.boot(name=name)["server"]["id"]
    if active:
        api.report("cmp1", sid, vm_state="active", power_state=1)
    return sid


def action(api: ComputeApi, sid: str, body: dict[str, Any]) -> None:
    assert api.call("POST", f"/v2.1/servers/{sid}/action", ALICE, json=body
                    ).status_code == 202


def test_another_hosts_heartbeat_fails_servers_stuck_on_a_dead_host(api: ComputeApi) -> None:
    building = boot(api, "building")
    stopping = boot(api, "stopping", active=True)
    action(api, stopping, {"os-stop": None})
    idle = boot(api, "idle", active=True)
    deleting = boot(api, "deleting", active=True)
    api.ok("DELETE", f"/v2.1/servers/{deleting}", ALICE)
    fresh = boot(api, "fresh")
    assert {building, idle, fresh}  # ids unused below: the rows are read by name
    age(api, "cmp1", ["building", "stopping", "idle", "deleting"])

    api.host("cmp2")  # a heartbeat of another host sweeps
    got = rows(api)
    assert got["building"].vm_state == "error" and got["building"].task_state is None
    assert got["building"].fault is not None
    assert got["building"].fault["message"] == (
        "The compute host cmp1 stopped reporting while the server was being built.")
    assert got["stopping"].vm_state == "error" and got["stopping"].task_state is None
    assert got["stopping"].fault is not None
    assert "while the server was in task powering-off" in got["stopping"].fault["message"]
    # No task, deleting (a new delete finishes it in the API), or changed recently: left.
    assert (got["idle"].vm_state, got["idle"].task_state) == ("active", None)
    assert got["deleting"].task_state == "deleting"
    assert (got["fresh"].vm_state, got["fresh"].task_state) == ("building", "spawning")
    shown = api.server(stopping, ALICE)
    assert shown["status"] == "ERROR" and "stopped reporting" in shown["fault"]["message"]

    # The host comes back and reports: its servers recover.
    api.host("cmp1")
    api.report("cmp1", building, vm_state="active", power_state=1)
    again = api.server(building, ALICE)
    assert again["status"] == "ACTIVE" and "fault" not in again


def test_the_sweep_is_throttled_per_process(api: ComputeApi) -> None:
    boot(api, "first")
    boot(api, "second")
    age(api, "cmp1", ["first"])
    api.host("cmp2")
    assert rows(api)["first"].vm_state == "error"
    assert rows(api)["second"].vm_state == "building"  # changed recently
    api.core.settings.dead_host_sweep_interval = 3600.0
    age(api, None, ["second"])
    api.host("cmp2")  # within the interval: no sweep
    assert rows(api)["second"].vm_state == "building"
    assert api.core.sweep_dead_hosts() == 0
    assert api.core.sweep_dead_hosts(force=True) == 1
    assert rows(api)["second"].vm_state == "error"


def test_a_server_changed_recently_is_not_swept(api: ComputeApi) -> None:
    sid = boot(api, "racing")
    age(api, "cmp1", ["racing"])
    with api.core.db.session() as s:
        srv = s.get(m.Server, sid)
        assert srv is not None
        stale = srv.updated_at
    # The agent's report lands (updated_at moves), then the host dies.
    api.host("cmp1")
    api.report("cmp1", sid, vm_state="active", power_state=1)
    with api.core.db.session() as s:
        srv = s.get(m.Server, sid)
        assert srv is not None and srv.updated_at != stale
        h = s.query(m.ComputeHost).filter_by(host="cmp1").one()
        h.heartbeat_at -= timedelta(seconds=600)
    assert api.core.sweep_dead_hosts(force=True) == 0
    assert rows(api)["racing"].vm_state == "active"
