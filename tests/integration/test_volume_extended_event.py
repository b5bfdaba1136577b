"""Nova's volume-extended event from a REAL stratus-volume to a REAL stratus-compute, both
validating tokens against a real stratus-identity; the test plays the storage agent over
HTTP (test_volume_server.py's ``Agents``).

An attached volume is extended (3.42); stratus-volume is killed (``[debug] crash_at
volume.report.after_server_events``) right after the agent's report that finishes the
extend commits, before the event is sent. After the restart the committed event is
sent anyway: stratus-volume gets the compute API's token from identity as its service
user, posts ``volume-extended`` at 2.51 and the compute API answers it (404 "No
instances found for any event": the server is this test's made-up id, so the compute
API's own handling of a real server is tests/unit/test_volume_external_events.py's);
the event is then gone and the volume ``in-use``. Files under pytest's tmp dir (``zvl``);
processes stopped by pid.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_volume_crash import CONNECTOR, died
from test_volume_server import SERVER, Agents, admin_client, status, wait_for

from helpers import ADMIN_PASSWORD, ComputeServer, IdentityServer
from volume_api import VolumeServer

pytestmark = [pytest.mark.integration]


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[VolumeServer, ComputeServer]]:
    root = tmp_path / "zvl-events"
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    identity.prepare()
    identity.start()
    compute = ComputeServer(root / "compute", identity, "http://127.0.0.1:9",
                            "http://127.0.0.1:9")
    volume = VolumeServer(root / "volume", f"sqlite:///{root}/volume.sqlite", identity,
                          extra_env={"STRATUS_VOLUME__EXPORT_TIMEOUT": "5",
                                     "STRATUS_VOLUME__SWEEP_INTERVAL": "1",
                                     "STRATUS_VOLUME__COMPUTE_URL": compute.url,
                                     "STRATUS_VOLUME__USERNAME": "admin",
                                     "STRATUS_VOLUME__PASSWORD": ADMIN_PASSWORD,
                                     "STRATUS_VOLUME__PROJECT_NAME": "admin"})
    try:
        compute.prepare()
        compute.start()
        volume.prepare()
        volume.start()
        yield volume, compute
    finally:
        volume.stop()
        compute.stop()
        identity.stop()


def test_volume_extended_is_sent_even_after_a_kill_9(
        chain: tuple[VolumeServer, ComputeServer]) -> None:
    volume, compute = chain
    admin = admin_client(volume)
    agents = Agents(admin, "zvl-stor1")
    agents.register()
    vid = admin.call("POST", "/volumes", json={"volume": {"size": 1}}).json()["volume"]["id"]
    agents.converge()
    assert status(admin, vid) == "available"
    att = admin.call("POST", "/attachments", json={"attachment": {
        "volume_uuid": vid, "instance_uuid": SERVER}}).json()["attachment"]
    timer = threading.Timer(0.5, agents.converge)
    timer.start()
    upd = admin.call("PUT", f"/attachments/{att['id']}",
                     json={"attachment": {"connector": CONNECTOR}})
    timer.join()
    assert upd.status_code == 200, upd.text
    assert admin.call("POST", f"/attachments/{att['id']}/action",
                      json={"os-complete": None}).status_code == 204
    assert status(admin, vid) == "in-use"

    extend = admin.call("POST", f"/volumes/{vid}/action",
                        json={"os-extend": {"new_size": 2}},
                        headers={"OpenStack-API-Version": "volume 3.42"})
    assert extend.status_code == 202, extend.text
    assert status(admin, vid) == "extending"
    volume.stop()
    volume.extra_env["STRATUS_DEBUG__CRASH_AT"] = "volume.report.after_server_events"
    volume.start()
    admin = admin_client(volume)
    died(volume, lambda: admin.call("POST", "/v3/storage/hosts/zvl-stor1/report", json={
        "volumes": [{"id": vid, "size_gb": 2, "state": "ready"}], "snapshots": [],
        "exports": [{"attachment_id": att["id"], "state": "ready"}], "uploads": []}))
    admin = admin_client(volume)
    assert status(admin, vid) == "in-use"  # the report was committed before the kill
    # the restarted service sends what it owes; the real compute API answers it
    wait_for(lambda: "No instances found for any event" in volume.log())
    assert "sent 1 server event(s): volume-extended " + SERVER in volume.log()
    assert "compute answered 404 to POST " + compute.url in volume.log()
    assert "Traceback" not in volume.log(), volume.log()[-3000:]
    admin.close()
