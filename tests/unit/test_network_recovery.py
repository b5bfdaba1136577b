"""The network API's check for ports without their owner (network/recovery.py), and that
a port create or router interface add stopped inside its transaction leaves nothing (the
crash point raises here; tests/integration/test_crash_recovery.py kills the process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from network_api import ADMIN, NetApi, in_process
from stratus.network import models as m
from stratus.network import ports, recovery, routers

pytestmark = pytest.mark.unit


class Killed(Exception):
    """Stands for the SIGKILL at a crash point."""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    with in_process(tmp_path) as client:
        yield client


def count(api: NetApi, model: type) -> int:
    assert api.core is not None
    with api.core.db.session() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_ports_of_routers_and_floating_ips_that_are_gone_are_deleted(api: NetApi) -> None:
    assert api.core is not None
    net = api.network()
    sub = api.subnet(net["id"], "10.9.0.0/24")
    router = api.router()
    api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
           json={"subnet_id": sub["id"]})
    kept = api.router(name="kept")
    other = api.subnet(api.network(name="n2")["id"], "10.8.0.0/24")
    api.ok("PUT", f"/v2.0/routers/{kept['id']}/add_router_interface",
           json={"subnet_id": other["id"]})
    vm = api.port(net["id"], device_owner="compute:nova", device_id="some-server")
    assert recovery.recover(api.core) == []
    with api.core.db.session() as s:  # the router row vanishes (a hand edit, an old bug)
        s.execute(sa.delete(m.Router).where(m.Router.id == router["id"]))
        s.commit()
    ips = count(api, m.IPAllocation)
    (stray,) = recovery.recover(api.core)
    assert stray != vm["id"]
    assert count(api, m.IPAllocation) == ips - 1
    left = {p["id"] for p in api.ok("GET", "/v2.0/ports")["ports"]}
    assert stray not in left and vm["id"] in left
    assert api.ok("GET", "/v2.0/ports", params={"device_id": kept["id"]})["ports"]
    assert recovery.recover(api.core) == []


@pytest.mark.parametrize("module, point", [
    (ports, "network.port_create.after_ips"),
    (routers, "network.router_interface.after_port"),
])
def test_a_change_stopped_inside_its_transaction_leaves_nothing(
        api: NetApi, monkeypatch: pytest.MonkeyPatch, module: object, point: str) -> None:
    net = api.network()
    sub = api.subnet(net["id"], "10.9.0.0/24")
    router = api.router()
    before = (count(api, m.Port), count(api, m.IPAllocation))

    def hit(name: str) -> None:
        if name == point:
            raise Killed(name)

    monkeypatch.setattr(module, "crash_point", hit)
    with pytest.raises(Killed):
        if module is ports:
            api.call("POST", "/v2.0/ports", ADMIN, json={"port": {"network_id": net["id"]}})
        else:
            api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ADMIN,
                     json={"subnet_id": sub["id"]})
    monkeypatch.undo()
    assert (count(api, m.Port), count(api, m.IPAllocation)) == before
    api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
           json={"subnet_id": sub["id"]})  # the gateway IP is free
