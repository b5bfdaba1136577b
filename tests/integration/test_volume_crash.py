"""kill -9 of stratus-volume at named steps (``[debug] crash_at``, common/crashpoints.py):
after the restart nothing is stuck in a transitional status and nothing is half-made.

A real stratus-volume next to a real stratus-identity (SQLite); the test plays the
storage agent over HTTP (tests/integration/test_volume_server.py's ``Agents``), so the
desired state the real agent would converge to is what is checked: a target no longer
wanted is removed by the agent's pass (tests/integration/test_volume_agent.py proves that
part against a real tgtd). Points:

- ``volume.create.before_commit``: the row was written, not committed: no volume, no quota;
- ``volume.create.after_commit``: the caller got no answer; the volume is ``creating``
  and the agent's report makes it ``available``;
- ``volume.attachment_update.after_commit``: the export was put in the host's state, the
  caller (the compute API) never got the connection_info; the attachment nobody
  completes is removed after ``stale_attachment_seconds`` and the volume is
  ``available`` again with no export wanted.

Files under pytest's tmp dir (``zvl`` in their names); the processes are stopped by pid.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_volume_server import SERVER, Agents, admin_client, status, wait_for

from helpers import IdentityServer
from volume_api import VolumeClient, VolumeServer

pytestmark = [pytest.mark.integration]
CONNECTOR = {"initiator": "iqn.2010-10.org.stratus:zvl-cmp1", "host": "zvl-cmp1",
             "ip": "127.0.0.1", "platform": "x86_64", "os_type": "linux", "multipath": False}
CRASH = "STRATUS_DEBUG__CRASH_AT"


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VolumeServer]:
    root = tmp_path_factory.mktemp("zvl-crash")
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    identity.prepare()
    identity.start()
    srv = VolumeServer(root / "volume", f"sqlite:///{root}/volume.sqlite", identity,
                       extra_env={"STRATUS_VOLUME__EXPORT_TIMEOUT": "5",
                                  "STRATUS_VOLUME__SWEEP_INTERVAL": "1"})
    try:
        srv.prepare()
        srv.start()
        yield srv
    finally:
        srv.stop()
        identity.stop()


def crash_at(srv: VolumeServer, point: str) -> None:
    """Restart the service with ``point`` armed."""
    srv.stop()
    srv.extra_env[CRASH] = point
    srv.start()


def died(srv: VolumeServer, call: Any) -> None:
    """``call`` gets no answer: the service killed itself at the armed point."""
    with pytest.raises(httpx.HTTPError):
        resp = call()
        raise AssertionError(f"answered {resp.status_code}: {resp.text}")
    assert srv.proc is not None
    assert srv.proc.wait(timeout=30) == -9
    assert f"crash point {srv.extra_env[CRASH]} reached" in srv.log()
    srv.extra_env.pop(CRASH)
    srv.start()


def used(admin: VolumeClient) -> dict[str, Any]:
    resp = admin.call("GET", f"/os-quota-sets/{admin.project}", params={"usage": "true"})
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["quota_set"])


def test_kill_9_during_a_create(volume: VolumeServer) -> None:
    admin = admin_client(volume)
    agents = Agents(admin, "zvl-stor1")
    agents.register()
    before = used(admin)
    listed = {v["id"] for v in admin.call("GET", "/volumes").json()["volumes"]}

    crash_at(volume, "volume.create.before_commit")
    died(volume, lambda: admin.call("POST", "/volumes", json={"volume": {
        "size": 1, "name": "zvl-lost"}}))
    admin = admin_client(volume)
    assert {v["id"] for v in admin.call("GET", "/volumes").json()["volumes"]} == listed
    assert used(admin)["volumes"] == before["volumes"]
    assert used(admin)["gigabytes"] == before["gigabytes"]

    crash_at(volume, "volume.create.after_commit")
    died(volume, lambda: admin.call("POST", "/volumes", json={"volume": {
        "size": 1, "name": "zvl-made"}}))
    admin = admin_client(volume)
    made = [v for v in admin.call("GET", "/volumes").json()["volumes"]
            if v["name"] == "zvl-made"]
    assert len(made) == 1
    assert status(admin, made[0]["id"]) == "creating"  # the agent has not made it yet
    Agents(admin, "zvl-stor1").converge()
    assert status(admin, made[0]["id"]) == "available"
    assert admin.call("DELETE", f"/volumes/{made[0]['id']}").status_code == 202
    admin.close()


def test_kill_9_during_an_attachment_update(volume: VolumeServer) -> None:
    admin = admin_client(volume)
    agents = Agents(admin, "zvl-stor1")
    agents.register()
    vol = admin.call("POST", "/volumes", json={"volume": {"size": 1}}).json()["volume"]
    agents.converge()
    assert status(admin, vol["id"]) == "available"
    att = admin.call("POST", "/attachments", json={"attachment": {
        "volume_uuid": vol["id"], "instance_uuid": SERVER}}).json()["attachment"]

    crash_at(volume, "volume.attachment_update.after_commit")
    volume.extra_env["STRATUS_VOLUME__STALE_ATTACHMENT_SECONDS"] = "3"  # after the restart
    died(volume, lambda: admin.call("PUT", f"/attachments/{att['id']}",
                                    json={"attachment": {"connector": CONNECTOR}}))
    admin = admin_client(volume)
    agents = Agents(admin, "zvl-stor1")
    agents.converge()  # the export if the sweep has not removed the attachment yet
    # nobody completes it: removed once stale, its export no longer wanted
    wait_for(lambda: admin.call("GET", f"/attachments/{att['id']}").status_code == 404)
    wait_for(lambda: status(admin, vol["id"]) == "available")
    assert agents.state()["exports"] == []
    assert admin.call("DELETE", f"/volumes/{vol['id']}").status_code == 202
    admin.close()
    assert "Traceback" not in volume.log(), volume.log()[-3000:]
    assert os.environ.get(CRASH) is None
