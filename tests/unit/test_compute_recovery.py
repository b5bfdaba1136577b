"""Crash recovery of the compute API (compute/recovery.py) over the in-process API with
the in-memory image and network APIs: a create or delete stopped at a crash point (the
point raises instead of killing the process) and left by a dead owner is finished or
failed by ``recover``; ports the network API holds for servers that do not record them
are dropped; delete finds ports by device_id. The real SIGKILL of real processes is
tests/integration/test_crash_recovery.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from compute_api import ALICE, ComputeApi, in_process
from stratus.common.clients import ServiceError
from stratus.compute import models as m
from stratus.compute import placement, recovery, server_actions, servers
from stratus.compute.core import Settings

pytestmark = pytest.mark.unit
DEAD = f"{socket.gethostname()}:999999999:1"  # a pid that cannot run on this host


class Killed(Exception):
    """Stands for the SIGKILL at a crash point (no step of the create catches it)."""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path, Settings()) as client:
        client.flavor(id="1")
        client.host("cmp1")
        client.fake.network()
        yield client


def net(api: ComputeApi) -> str:
    return next(iter(api.fake.networks))


def crash_at(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    def hit(name: str) -> None:
        if name == point:
            raise Killed(name)

    monkeypatch.setattr(placement, "crash_point", hit)
    monkeypatch.setattr(servers, "crash_point", hit)
    monkeypatch.setattr(server_actions, "crash_point", hit)


def boot_until_crash(api: ComputeApi, monkeypatch: pytest.MonkeyPatch, point: str) -> str:
    """Boot one server with a port on the network; the create dies at ``point``; the
    server's owner is then a process that is gone. Returns its id."""
    crash_at(monkeypatch, point)
    with pytest.raises(Killed):
        api.boot(networks=[{"uuid": net(api)}])
    monkeypatch.undo()
    return orphan(api)


def orphan(api: ComputeApi) -> str:
    with api.core.db.session() as s:
        srv = s.query(m.Server).one()
        srv.scheduling = {**srv.scheduling, "owner": DEAD}
        s.commit()
        return srv.id


def row(api: ComputeApi, sid: str) -> m.Server:
    with api.core.db.session() as s:
        srv = s.get(m.Server, sid)
        assert srv is not None
        s.expunge(srv)
        return srv


def claimed(api: ComputeApi) -> int:
    with api.core.db.session() as s:
        return sum(int(h.claimed_instances) for h in s.query(m.ComputeHost))


def ports_for(api: ComputeApi, sid: str) -> list[dict[str, Any]]:
    return [p for p in api.fake.ports.values() if p["device_id"] == sid]


@pytest.mark.parametrize("point", ["compute.create.after_row", "compute.create.after_schedule",
                                   "compute.create.after_port", "compute.create.after_bind"])
def test_a_create_stopped_at_any_point_is_resumed(
        api: ComputeApi, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    sid = boot_until_crash(api, monkeypatch, point)
    assert row(api, sid).task_state in ("scheduling", "networking")
    done = recovery.recover(api.core)
    assert done.resumed == [sid]
    srv = row(api, sid)
    assert (srv.vm_state, srv.task_state, srv.host) == ("building", "spawning", "cmp1")
    assert "owner" not in srv.scheduling
    # Exactly one port: the one a stopped step made was dropped before the new one.
    (port,) = ports_for(api, sid)
    assert port["binding:host_id"] == "cmp1"
    with api.core.db.session() as s:
        assert [p.port_id for p in s.query(m.ServerPort)] == [port["id"]]
    assert claimed(api) == 1
    # The agent's assignment list now shows it; its report makes it ACTIVE.
    api.report("cmp1", sid, vm_state="active", power_state=1)
    assert api.server(sid)["status"] == "ACTIVE"


def test_a_reschedule_stopped_before_the_new_host_is_resumed(
        api: ComputeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent gave the server back; the API died before it found another host: the
    recovery schedules it and binds its recorded port to the new host."""
    api.host("cmp2")
    sid = api.boot(networks=[{"uuid": net(api)}])["server"]["id"]
    first = row(api, sid).host
    assert first is not None
    (port,) = ports_for(api, sid)

    def dies(self: object, sid: str) -> str | None:
        raise Killed("before a new host was chosen")

    monkeypatch.setattr(servers.ServerFlow, "schedule", dies)  # the route makes its own
    with pytest.raises(Killed):
        api.report(first, sid, reschedule=True, fault={"message": "disk full"})
    monkeypatch.undo()
    assert (row(api, sid).task_state, row(api, sid).host) == ("scheduling", None)
    orphan(api)
    assert recovery.recover(api.core).resumed == [sid]
    srv = row(api, sid)
    assert srv.task_state == "spawning" and srv.host not in (None, first)
    assert [p["id"] for p in ports_for(api, sid)] == [port["id"]]  # the same port, moved
    assert api.fake.ports[port["id"]]["binding:host_id"] == srv.host
    assert claimed(api) == 1 and "owner" not in srv.scheduling


def test_a_step_a_live_process_owns_is_left(api: ComputeApi,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    crash_at(monkeypatch, "compute.create.after_port")
    with pytest.raises(Killed):
        api.boot(networks=[{"uuid": net(api)}])
    monkeypatch.undo()
    with api.core.db.session() as s:
        sid = s.query(m.Server).one().id
    assert row(api, sid).scheduling["owner"] == recovery.process_token()
    assert not recovery.recover(api.core)
    assert row(api, sid).task_state == "networking"
    assert not recovery.sweep_ports(api.core)  # its build is still making that port
    assert len(ports_for(api, sid)) == 1


def test_a_resume_the_network_api_refuses_fails_the_server_cleanly(
        api: ComputeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = boot_until_crash(api, monkeypatch, "compute.create.after_schedule")
    api.fake.fail_ports = ServiceError("the network is full", status=409)
    done = recovery.recover(api.core)
    assert done.failed == [sid]
    srv = row(api, sid)
    assert (srv.vm_state, srv.task_state, srv.host) == ("error", None, None)
    assert srv.fault is not None and "the ports could not be made" in srv.fault["message"]
    assert claimed(api) == 0 and ports_for(api, sid) == []
    with api.core.db.session() as s:
        assert s.get(m.ProjectUsage, "p-alice").instances == 1  # until it is deleted
    api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE)
    with api.core.db.session() as s:
        assert s.get(m.ProjectUsage, "p-alice").instances == 0


def test_a_resume_waits_while_the_network_api_is_down(
        api: ComputeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recovery at a moment the network API cannot be reached (a whole controller
    restarting): the step stays, owned by the recovering process, and is finished on a
    later pass; only after ``stale_after`` seconds of that does the server fail."""
    sid = boot_until_crash(api, monkeypatch, "compute.create.after_port")
    down = ServiceError("network unreachable", temporary=True)
    monkeypatch.setattr(api.fake, "list_ports", lambda *a, **k: (_ for _ in ()).throw(down))
    done = recovery.recover(api.core)
    assert done.waiting == [sid] and not done.failed
    assert row(api, sid).task_state == "networking"
    assert row(api, sid).scheduling["owner"] == recovery.process_token()
    monkeypatch.undo()
    assert recovery.recover(api.core).resumed == [sid]  # its own step, tried again
    assert row(api, sid).task_state == "spawning" and len(ports_for(api, sid)) == 1
    # Down for longer than stale_after: the server fails, with nothing left.
    crash_at(monkeypatch, "compute.create.after_row")
    with pytest.raises(Killed):
        api.boot(networks=[{"uuid": net(api)}])
    monkeypatch.undo()
    with api.core.db.session() as s:
        srv = s.query(m.Server).filter(m.Server.id != sid).one()
        srv.scheduling = {**srv.scheduling, "owner": DEAD}
        other = srv.id
        s.commit()
    api.fake.fail_ports = down
    gone = recovery.recover(api.core, stale_after=0)
    assert gone.failed == [other], gone
    srv = row(api, other)
    assert srv.vm_state == "error" and srv.fault is not None
    assert "network unreachable" in srv.fault["message"]
    assert ports_for(api, other) == [] and claimed(api) == 1


def test_a_delete_stopped_after_the_ports_is_finished(
        api: ComputeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = api.boot(networks=[{"uuid": net(api)}])["server"]["id"]
    api.report("cmp1", sid, vm_state="active", power_state=1)
    with api.core.db.session() as s:  # the host stops reporting: the API deletes alone
        s.query(m.ComputeHost).one().forced_down = True
        s.commit()
    crash_at(monkeypatch, "compute.delete.after_ports")
    with pytest.raises(Killed):
        api.call("DELETE", f"/v2.1/servers/{sid}", ALICE)
    monkeypatch.undo()
    assert row(api, sid).task_state == "deleting" and not row(api, sid).deleted
    orphan(api)
    assert recovery.recover(api.core).deleted == [sid]
    assert row(api, sid).deleted and claimed(api) == 0 and ports_for(api, sid) == []
    with api.core.db.session() as s:
        assert s.get(m.ProjectUsage, "p-alice").instances == 0


def test_two_finishers_of_one_delete_release_its_claim_once(
        api: ComputeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recovery pass and the agent's report finish the same delete at once (seen in a
    real run: the claim went to -1): the agent's report commits between the recovery's
    read of the server and its write; the claim, the quota and the row are released once."""
    sid = api.boot(networks=[{"uuid": net(api)}])["server"]["id"]
    api.report("cmp1", sid, vm_state="active", power_state=1)
    with api.core.db.session() as s:
        s.query(m.ComputeHost).one().forced_down = True
        s.commit()
    crash_at(monkeypatch, "compute.delete.after_ports")
    with pytest.raises(Killed):
        api.call("DELETE", f"/v2.1/servers/{sid}", ALICE)
    monkeypatch.undo()
    orphan(api)
    raced: list[int] = []

    def other_finisher(state: ORMExecuteState) -> None:
        text = str(state.statement)
        if state.is_update and "deleted_at" in text and "deleted IS" in text and not raced:
            raced.append(0)  # once: the report's own finish must not race again
            api.report("cmp1", sid, deleted=True)  # asserts its 200
            raced[0] = 200

    event.listen(Session, "do_orm_execute", other_finisher)
    try:
        recovery.recover(api.core)
    finally:
        event.remove(Session, "do_orm_execute", other_finisher)
    assert raced == [200]
    assert row(api, sid).deleted and claimed(api) == 0 and ports_for(api, sid) == []
    with api.core.db.session() as s:
        assert s.get(m.ProjectUsage, "p-alice").instances == 0


def test_delete_finds_ports_by_device_id(api: ComputeApi) -> None:
    sid = api.boot(networks=[{"uuid": net(api)}])["server"]["id"]
    stray = api.fake.create_port(ALICE, {"network_id": net(api), "device_id": sid,
                                         "device_owner": "compute:nova"})
    other = api.fake.create_port(ALICE, {"network_id": net(api), "device_id": sid,
                                         "device_owner": "network:dhcp"})
    assert len(ports_for(api, sid)) == 3
    with api.core.db.session() as s:
        s.query(m.ComputeHost).one().forced_down = True
        s.commit()
    api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE)
    assert [p["id"] for p in ports_for(api, sid)] == [other["id"]]
    assert stray["id"] not in api.fake.ports


def test_a_refused_create_keeps_its_row_while_a_port_may_be_left(
        api: ComputeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """The network API made the port but answered 400, and then cannot list ports: the
    create is undone (400 to the caller), its row kept as deleted so that the sweep
    later finds and drops that port."""
    make = api.fake.create_port

    def made_then_refused(token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        make(token, body)
        raise ServiceError("refused after all", status=400)

    def down(*args: Any, **kw: Any) -> list[dict[str, Any]]:
        raise ServiceError("network unreachable", temporary=True)

    monkeypatch.setattr(api.fake, "create_port", made_then_refused)
    monkeypatch.setattr(api.fake, "list_ports", down)
    api.boot(networks=[{"uuid": net(api)}], status=400)
    monkeypatch.undo()
    with api.core.db.session() as s:
        (srv,) = s.query(m.Server).all()
        assert srv.deleted and s.get(m.ProjectUsage, "p-alice").instances == 0
        sid = srv.id
    assert len(ports_for(api, sid)) == 1 and claimed(api) == 0
    assert api.ok("GET", "/v2.1/servers", ALICE)["servers"] == []
    assert recovery.sweep_ports(api.core).ports_dropped and ports_for(api, sid) == []
    # With the network API answering, a refused create leaves no row at all.
    monkeypatch.setattr(api.fake, "create_port", made_then_refused)
    api.boot(networks=[{"uuid": net(api)}], status=400)
    monkeypatch.undo()
    with api.core.db.session() as s:
        assert [r.id for r in s.query(m.Server)] == [sid]
    assert api.fake.ports == {}


def test_sweep_drops_ports_of_deleted_or_finished_servers_only(api: ComputeApi) -> None:
    gone = api.boot(networks=[{"uuid": net(api)}])["server"]["id"]
    api.report("cmp1", gone, deleted=True)
    failed = api.boot(networks="none")["server"]["id"]
    api.report("cmp1", failed, vm_state="error", fault={"message": "no"})
    given = api.fake.create_port(ALICE, {"network_id": net(api)})
    with api.core.db.session() as s:  # the user's own port, named in the server's specs
        srv = s.get(m.Server, failed)
        assert srv is not None
        srv.scheduling = {**srv.scheduling, "specs": [{"port_id": given["id"]}]}
        s.commit()
    api.fake.update_port(None, given["id"], {"device_id": failed,
                                             "device_owner": "compute:nova"})
    leaked = [api.fake.create_port(ALICE, {"network_id": net(api), "device_id": sid,
                                           "device_owner": "compute:nova"})["id"]
              for sid in (gone, failed)]
    foreign = api.fake.create_port(ALICE, {"network_id": net(api), "device_id": "elsewhere",
                                           "device_owner": "compute:nova"})
    done = recovery.sweep_ports(api.core)
    assert sorted(done.ports_dropped) == sorted([*leaked, given["id"]])
    assert not set(leaked) & set(api.fake.ports)
    assert api.fake.ports[given["id"]]["device_id"] == ""  # the user's: unbound, kept
    assert foreign["id"] in api.fake.ports


@pytest.mark.parametrize("made", [True, False])
def test_a_snapshot_stopped_before_it_was_recorded(
        api: ComputeApi, monkeypatch: pytest.MonkeyPatch, made: bool) -> None:
    """createImage died after the image API made the image (it is recorded and uploaded),
    or before (the server goes back to no task)."""
    sid = api.boot(networks="none")["server"]["id"]
    api.report("cmp1", sid, vm_state="active", power_state=1)
    before = set(api.fake.images)
    if made:
        crash_at(monkeypatch, "compute.snapshot.after_image")
    else:
        def dies(token: str, body: dict[str, Any]) -> dict[str, Any]:
            raise Killed("before the image API answered")

        monkeypatch.setattr(api.fake, "create_image", dies)
    with pytest.raises(Killed):
        api.call("POST", f"/v2.1/servers/{sid}/action", ALICE,
                 json={"createImage": {"name": "snap"}})
    monkeypatch.undo()
    assert api.server(sid)["OS-EXT-STS:task_state"] == "image_snapshot"
    # Busy meanwhile: another action waits for the step.
    assert api.call("POST", f"/v2.1/servers/{sid}/action", ALICE,
                    json={"os-stop": None}).status_code == 409
    assert not recovery.recover(api.core)  # its owner (this process) is alive
    orphan(api)
    assert recovery.recover(api.core).resumed == [sid]
    new = set(api.fake.images) - before
    if made:
        (image_id,) = new
        assert api.server(sid)["OS-EXT-STS:task_state"] == "image_uploading"
        a = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["servers"][0]
        assert a["snapshots"] == [{"image_id": image_id, "name": "snap"}]
        api.report("cmp1", sid, snapshots_done=[image_id])
    else:
        assert new == set()
    assert api.server(sid)["OS-EXT-STS:task_state"] is None
    assert "owner" not in row(api, sid).scheduling


def test_owner_liveness() -> None:
    me = recovery.process_token()
    now = recovery.utcnow()
    assert recovery.owner_alive(me, now, 600)
    assert not recovery.owner_alive(DEAD, now, 600)
    from datetime import timedelta
    old = now - timedelta(seconds=700)
    assert recovery.owner_alive("elsewhere:12:34", now, 600)
    assert not recovery.owner_alive("elsewhere:12:34", old, 600)
    assert not recovery.owner_alive(None, old, 600)


def test_crash_points_are_inert_unless_armed(tmp_path: Path) -> None:
    conf = tmp_path / "stratus.conf"
    conf.write_text("[DEFAULT]\n")
    code = ("from stratus.common.config import Config\n"
            "from stratus.common import crashpoints as c\n"
            "c.arm(Config.load())\n"
            "c.crash_point('compute.create.after_row')\n"
            "c.crash_point('compute.create.after_port')\n"
            "print('survived')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUS_")}
    env["STRATUS_CONFIG_FILE"] = str(conf)
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=60)
    assert quiet.returncode == 0 and "survived" in quiet.stdout, quiet.stderr
    env["STRATUS_DEBUG__CRASH_AT"] = "compute.create.after_port"
    armed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=60)
    assert armed.returncode == -9 and "survived" not in armed.stdout, armed.stderr
