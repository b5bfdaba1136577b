"""Rebuild: the compute API's action (its body by microversion, its refusals, the task it
records and the report that ends it) and the compute agent's level-triggered rebuild with
the fake driver (a fresh root disk from the new image, the same taps, and an agent killed
half-way that rebuilds again)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_compute_agent import SERVER_A, assignment, env  # noqa: F401 (the fixture)
from test_compute_schemas import check

from compute_api import ADMIN, ALICE, IMAGE, ComputeApi, in_process
from stratus.agent.compute.virt.base import RUNNING, SHUTDOWN
from stratus.contracts.compute import Assignment

pytestmark = pytest.mark.unit
NEW_IMAGE = "22222222-2222-4222-8222-222222222222"
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDb3cpnV/r24G8PYeiTzTHyyyjeqyzOUV"
              "3ZX9Pc5Y5xb test")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        client.fake.images[NEW_IMAGE] = {**client.fake.images[IMAGE], "id": NEW_IMAGE,
                                         "name": "new"}
        yield client


def active(api: ComputeApi) -> str:
    sid = str(api.boot()["server"]["id"])
    api.report("cmp1", sid, vm_state="active", power_state=1)
    return sid


def rebuild(api: ComputeApi, sid: str, version: str = "2.47", token: str = ALICE,
            **attrs: Any) -> Any:
    body = {"rebuild": {"imageRef": NEW_IMAGE, **attrs}}
    return api.call("POST", f"/v2.1/servers/{sid}/action", token, version=version, json=body)


def agent_view(api: ComputeApi, sid: str) -> dict[str, Any]:
    servers = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["servers"]
    found: dict[str, Any] = next(s for s in servers if s["id"] == sid)
    return found


def test_rebuild_records_the_task_and_the_report_ends_it(api: ComputeApi) -> None:
    sid = active(api)
    assert agent_view(api, sid).get("rebuild", 0) == 0
    resp = rebuild(api, sid, name="again", metadata={"k": "v"}, adminPass="pw")
    body = check(resp, "servers", "rebuild_server_with_admin_pass", "2.47")["server"]
    assert body["status"] == "REBUILD" and body["name"] == "again"
    assert body["image"]["id"] == NEW_IMAGE and body["metadata"] == {"k": "v"}
    assert body["adminPass"] == "pw"
    doc = agent_view(api, sid)
    assert doc["rebuild"] == 1 and doc["image_id"] == NEW_IMAGE
    assert doc["metadata_document"]["name"] == "again"
    # a second rebuild while the first runs is refused, as in Nova
    assert rebuild(api, sid).status_code == 409
    api.report("cmp1", sid, vm_state="active", power_state=1)  # an older pass: still busy
    assert api.server(sid)["status"] == "REBUILD"
    api.report("cmp1", sid, vm_state="active", power_state=1, rebuild_generation=1,
               task_state=None)
    shown = api.server(sid)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None


def test_rebuild_of_a_stopped_server_keeps_it_stopped(api: ComputeApi) -> None:
    sid = active(api)
    api.report("cmp1", sid, vm_state="stopped", power_state=4)
    assert rebuild(api, sid).status_code == 202
    assert agent_view(api, sid)["desired_power"] == "shutdown"


@pytest.mark.parametrize(("version", "attrs", "status", "word"), [
    ("2.47", {"key_name": "k"}, 400, "key_name"),          # from 2.54
    ("2.53", {"user_data": "YQ=="}, 400, "user_data"),     # from 2.57
    ("2.18", {"description": "d"}, 400, "description"),    # from 2.19
    ("2.57", {"personality": []}, 400, "personality"),     # gone at 2.57
    ("2.47", {"personality": [{"path": "/x", "contents": "YQ=="}]}, 400, "Personality"),
    ("2.47", {"preserve_ephemeral": True}, 400, "preserve_ephemeral"),
    ("2.63", {"trusted_image_certificates": ["a"]}, 400, "certificate"),
    ("2.47", {"imageRef": "nope"}, 400, "imageRef"),
    ("2.47", {"imageRef": "33333333-3333-4333-8333-333333333333"}, 400, "could not be found"),
    ("2.54", {"key_name": "missing"}, 400, "key pair missing"),
    ("2.57", {"user_data": "not base64!"}, 400, "base64"),
])
def test_rebuild_refusals(api: ComputeApi, version: str, attrs: dict[str, Any], status: int,
                          word: str) -> None:
    sid = active(api)
    resp = rebuild(api, sid, version, **attrs)
    assert resp.status_code == status and word in resp.text, resp.text
    assert agent_view(api, sid).get("rebuild", 0) == 0  # nothing recorded


def test_rebuild_needs_a_server_the_caller_sees(api: ComputeApi) -> None:
    assert rebuild(api, "44444444-4444-4444-8444-444444444444").status_code == 404


def test_key_name_and_user_data_from_their_microversions(api: ComputeApi) -> None:
    api.ok("POST", "/v2.1/os-keypairs", ALICE, status=201,
           json={"keypair": {"name": "k", "public_key": PUBLIC_KEY}})
    sid = active(api)
    body = check(rebuild(api, sid, "2.54", key_name="k"), "servers",
                 "rebuild_server_with_admin_pass", "2.54")["server"]
    assert body["key_name"] == "k" and "user_data" not in body
    doc = agent_view(api, sid)["metadata_document"]
    assert [k["name"] for k in doc["keys"]] == ["k"]
    api.report("cmp1", sid, vm_state="active", power_state=1, rebuild_generation=1)
    data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    body = check(rebuild(api, sid, "2.57", key_name=None, user_data=data, description="d"),
                 "servers", "rebuild_server_with_admin_pass", "2.57")["server"]
    assert body["key_name"] is None and body["user_data"] == data
    assert body["description"] == "d"
    assert agent_view(api, sid)["metadata_document"]["user_data"] == data


def test_rebuild_answers_the_full_server_from_2_75(api: ComputeApi) -> None:
    sid = active(api)
    for token in (ALICE, ADMIN):
        resp = rebuild(api, sid, "2.75", token)
        body = check(resp, "servers", "rebuild_server_with_admin_pass", "2.75")["server"]
        assert "OS-EXT-STS:task_state" in body and "user_data" in body
        api.report("cmp1", sid, vm_state="active", power_state=1,
                   rebuild_generation=agent_view(api, sid).get("rebuild", 0))


# --- the agent ----------------------------------------------------------------------------


def rebuilt_assignment(**kw: Any) -> dict[str, Any]:
    return assignment(vm_state="active", task_state="rebuilding", rebuild=1, **kw)


def test_agent_rebuilds_onto_a_fresh_disk_with_the_same_taps(env: Any) -> None:  # noqa: F811
    env.api.servers[SERVER_A] = assignment()
    assert env.agent.reconcile_once().ok
    taps = dict(env.driver.taps)
    env.driver.disks[SERVER_A] = "old disk"  # what the guest wrote
    env.api.servers[SERVER_A] = rebuilt_assignment()
    assert env.agent.reconcile_once().ok
    last = env.api.last(SERVER_A)
    assert last["rebuild_generation"] == 1 and last["task_state"] is None
    assert last["vm_state"] == "active" and last["power_state"] == RUNNING
    assert env.driver.disks[SERVER_A] != "old disk"  # a fresh root disk
    assert env.driver.taps == taps and env.driver.domains[SERVER_A].state == RUNNING
    calls = len(env.driver.calls)
    assert env.agent.reconcile_once().ok  # done: the next pass rebuilds nothing
    assert "destroy" not in [m for m, _ in env.driver.calls[calls:]]


def test_agent_killed_mid_rebuild_rebuilds_again(env: Any) -> None:  # noqa: F811
    env.api.servers[SERVER_A] = assignment()
    assert env.agent.reconcile_once().ok
    env.api.servers[SERVER_A] = rebuilt_assignment()
    env.driver.fail["define"] = KeyboardInterrupt()  # the process "dies" here
    with contextlib.suppress(KeyboardInterrupt):
        env.agent.converge(Assignment.from_dict(env.api.servers[SERVER_A]))
    assert SERVER_A not in env.driver.domains
    assert env.agent.store.load(SERVER_A).rebuild_generation == 0
    del env.driver.fail["define"]
    agent = env.make()  # a new agent process
    try:
        assert agent.reconcile_once().ok
    finally:
        agent.pool.shutdown(wait=True)
    assert env.driver.domains[SERVER_A].state == RUNNING
    assert env.api.last(SERVER_A)["rebuild_generation"] == 1
    assert env.agent.store.load(SERVER_A).rebuild_generation == 1


def test_agent_rebuild_of_a_stopped_server_leaves_it_off(env: Any) -> None:  # noqa: F811
    env.api.servers[SERVER_A] = assignment()
    assert env.agent.reconcile_once().ok
    env.api.servers[SERVER_A] = rebuilt_assignment(desired_power="shutdown")
    assert env.agent.reconcile_once().ok
    last = env.api.last(SERVER_A)
    assert last["rebuild_generation"] == 1 and last["power_state"] != RUNNING
    assert env.driver.domains[SERVER_A].state != RUNNING
    assert last["vm_state"] == "stopped" and last["power_state"] in (SHUTDOWN, 0)


def test_agent_rebuild_failure_is_an_error(env: Any) -> None:  # noqa: F811
    from stratus.agent.compute.virt.base import VirtError

    env.api.servers[SERVER_A] = assignment()
    assert env.agent.reconcile_once().ok
    env.api.servers[SERVER_A] = rebuilt_assignment()
    env.driver.fail["define"] = VirtError("virsh define: boom", temporary=False)
    env.agent.reconcile_once()
    last = env.api.last(SERVER_A)
    assert last["vm_state"] == "error" and "boom" in last["fault"]["message"]
    assert last["rebuild_generation"] == 1
