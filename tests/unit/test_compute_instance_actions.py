"""os-instance-actions (``compute/instance_actions.py``, ``compute/api/instance_actions.py``):
an action is recorded per server request under its X-Openstack-Request-Id, its event is
closed by the agent's report (Success) or a failure (Error), and the list and show answers
validate against Tempest's own response schemas at each microversion that changes them
(2.1, 2.21, 2.51, 2.58, 2.62, 2.66, 2.84) with Nova's policies for admins and owners."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_compute_microversions import active, boot
from test_compute_schemas import check

from compute_api import ADMIN, ALICE, BOB, IMAGE, READER, ComputeApi, in_process
from network_api import CONTEXTS
from stratus.common import policy
from stratus.compute import models as m
from stratus.compute.core import Settings
from stratus.compute.instance_actions import ActionQuery

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def path(sid: str, rid: str = "") -> str:
    return f"/v2.1/servers/{sid}/os-instance-actions" + (f"/{rid}" if rid else "")


def act(api: ComputeApi, sid: str, body: dict[str, Any], token: str = ALICE,
        version: str = "2.47", status: int = 202) -> str:
    """Do a server action; the request id it answered with."""
    resp = api.call("POST", f"/v2.1/servers/{sid}/action", token, version=version, json=body)
    assert resp.status_code == status, resp.text
    return resp.headers["x-openstack-request-id"]


def actions(api: ComputeApi, sid: str, version: str, token: str = ALICE,
            query: str = "") -> list[dict[str, Any]]:
    resp = api.call("GET", path(sid) + query, token, version=version)
    body = check(resp, "servers", "list_instance_actions", version)
    return list(body["instanceActions"])


def show(api: ComputeApi, sid: str, rid: str, version: str, token: str = ALICE
         ) -> dict[str, Any]:
    resp = api.call("GET", path(sid, rid), token, version=version)
    return dict(check(resp, "servers", "show_instance_action", version)["instanceAction"])


def test_each_request_is_an_action_its_report_closes(api: ComputeApi) -> None:
    created = api.call("POST", "/v2.1/servers", ALICE, version="2.47", json={"server": {
        "name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}})
    assert created.status_code == 202, created.text
    sid = created.json()["server"]["id"]
    create_rid = created.headers["x-openstack-request-id"]
    assert created.headers["x-compute-request-id"] == create_rid  # Nova's header (Tempest)
    build = show(api, sid, create_rid, "2.51")
    assert build["action"] == "create" and build["instance_uuid"] == sid
    assert (build["user_id"], build["project_id"]) == ("u-alice", "p-alice")
    [event] = build["events"]
    assert event["event"] == "compute__do_build_and_run_instance"
    assert (event["finish_time"], event["result"]) == (None, None)
    api.report("cmp1", sid, vm_state="active", power_state=1)
    [event] = show(api, sid, create_rid, "2.51")["events"]
    assert event["result"] == "Success" and event["finish_time"] >= event["start_time"]

    stop_rid = act(api, sid, {"os-stop": None})
    assert show(api, sid, stop_rid, "2.51")["events"][0]["result"] is None
    api.report("cmp1", sid, power_state=4)  # not the state it aims at: still open
    assert show(api, sid, stop_rid, "2.51")["events"][0]["result"] is None
    api.report("cmp1", sid, vm_state="stopped", power_state=4)
    [event] = show(api, sid, stop_rid, "2.51")["events"]
    assert (event["event"], event["result"]) == ("compute_stop_instance", "Success")

    # the client's own request id (the format Stratus keeps) names the action
    mine = f"req-{uuid.uuid4()}"
    resp = api.call("POST", f"/v2.1/servers/{sid}/action", ALICE, version="2.47",
                    json={"os-start": None}, headers={"X-Openstack-Request-Id": mine})
    assert resp.status_code == 202
    listed = actions(api, sid, "2.1")
    assert [(a["action"], a["request_id"]) for a in listed] == [
        ("start", mine), ("stop", stop_rid), ("create", create_rid)]
    assert all(a["message"] is None and "updated_at" not in a for a in listed)
    assert all("updated_at" in a for a in actions(api, sid, "2.58"))


def test_show_by_microversion_and_policy(api: ComputeApi) -> None:
    sid = active(api)
    rid = act(api, sid, {"reboot": {"type": "HARD"}})
    api.report("cmp1", sid, vm_state="active", power_state=1, reboot_generation=1)
    # 2.1: the events only for admins (the events policy), with their traceback
    assert "events" not in show(api, sid, rid, "2.1")
    [event] = show(api, sid, rid, "2.1", ADMIN)["events"]
    assert event["event"] == "compute_reboot_instance" and "traceback" in event
    # 2.51: everyone sees the events, only admins the traceback
    [event] = show(api, sid, rid, "2.51")["events"]
    assert "traceback" not in event and "hostId" not in event
    assert show(api, sid, rid, "2.51", READER)["events"][0]["result"] == "Success"
    # 2.58 updated_at; 2.62 hostId for all, host for admins
    assert "updated_at" in show(api, sid, rid, "2.58")
    owner = show(api, sid, rid, "2.62")["events"][0]
    admin = show(api, sid, rid, "2.62", ADMIN)["events"][0]
    assert owner["hostId"] == admin["hostId"] != "" and "host" not in owner
    assert admin["host"] == "cmp1"
    # 2.84 details: admins only
    assert "details" not in show(api, sid, rid, "2.84")["events"][0]
    assert show(api, sid, rid, "2.84", ADMIN)["events"][0]["details"] is None
    for version in ("2.1", "2.21", "2.51", "2.58", "2.62", "2.66", "2.84", "2.96"):
        show(api, sid, rid, version, ADMIN)
        show(api, sid, rid, version)
    # another project: the server is not found; an unknown request id is a 404
    assert api.call("GET", path(sid, rid), BOB, version="2.96").status_code == 404
    missing = api.call("GET", path(sid, f"req-{uuid.uuid4()}"), ALICE, version="2.96")
    assert missing.status_code == 404 and "not found" in missing.text


def test_a_failure_closes_the_event_with_error(api: ComputeApi) -> None:
    sid = active(api)
    rid = act(api, sid, {"reboot": {"type": "HARD"}})
    api.report("cmp1", sid, vm_state="error", power_state=0,
               fault={"code": 500, "message": "libvirt refused", "details": "Traceback: x"})
    action = show(api, sid, rid, "2.84", ADMIN)
    assert action["message"] == "Error"
    [event] = action["events"]
    assert (event["result"], event["details"], event["traceback"]) == (
        "Error", "libvirt refused", "Traceback: x")
    assert "traceback" not in show(api, sid, rid, "2.84")["events"][0]
    # a build the API fails (no host fits) ends its create event with Error
    api.flavor(name="huge", id="9", ram=20000)
    failed = boot(api, "2.47", flavorRef="9")["server"]["id"]
    [create] = actions(api, failed, "2.58")
    [event] = show(api, failed, create["request_id"], "2.84", ADMIN)["events"]
    assert event["result"] == "Error" and "No valid host" in event["details"]


def test_report_events_and_resize(api: ComputeApi) -> None:
    api.flavor(name="m1.small", id="2", vcpus=2, ram=1024)
    sid = active(api)
    resize = act(api, sid, {"resize": {"flavorRef": "2"}})
    api.report("cmp1", sid, vm_state="active", power_state=1, resize_generation=1)
    [event] = show(api, sid, resize, "2.51")["events"]
    assert (event["event"], event["result"]) == ("compute_resize_instance", "Success")
    confirm = act(api, sid, {"confirmResize": None}, status=204)
    # no task: the event waits for the agent's next state report
    assert show(api, sid, confirm, "2.51")["events"][0]["result"] is None
    api.report("cmp1", sid, console_tail="x")  # no state in it: still open
    assert show(api, sid, confirm, "2.51")["events"][0]["result"] is None
    api.report("cmp1", sid, vm_state="active", power_state=1)
    [event] = show(api, sid, confirm, "2.51")["events"]
    assert (event["event"], event["result"]) == ("compute_confirm_resize", "Success")
    assert [a["action"] for a in actions(api, sid, "2.1")] == [
        "confirmResize", "resize", "create"]


def test_paging_and_time_filters(api: ComputeApi) -> None:
    sid = active(api)
    rids = []
    for _ in range(2):
        rids.append(act(api, sid, {"os-stop": None}))
        api.report("cmp1", sid, vm_state="stopped", power_state=4)
        rids.append(act(api, sid, {"os-start": None}))
        api.report("cmp1", sid, vm_state="active", power_state=1)
    newest_first = [a["request_id"] for a in actions(api, sid, "2.58")]
    assert newest_first[:4] == rids[::-1] and len(newest_first) == 5
    resp = api.call("GET", path(sid) + "?limit=2", ALICE, version="2.58")
    body = check(resp, "servers", "list_instance_actions", "2.58")
    assert [a["request_id"] for a in body["instanceActions"]] == newest_first[:2]
    [link] = body["links"]
    assert link["rel"] == "next" and f"marker={newest_first[1]}" in link["href"]
    assert link["href"].startswith(f"http://compute.test:8774/v2.1/servers/{sid}/")
    rest = actions(api, sid, "2.58", query=f"?marker={newest_first[1]}")
    assert [a["request_id"] for a in rest] == newest_first[2:]
    assert "links" not in check(api.call("GET", path(sid) + "?limit=10", ALICE,
                                         version="2.58"),
                                "servers", "list_instance_actions", "2.58")
    # below 2.58 the query is ignored, as Nova's
    assert len(actions(api, sid, "2.57", query="?limit=1&bogus=1")) == 5
    for query, version, word in (
            ("?marker=req-nope", "2.58", "marker"), ("?limit=-1", "2.58", "limit"),
            ("?limit=x", "2.58", "limit"), ("?bogus=1", "2.58", "bogus"),
            ("?changes-before=2020-01-01T00:00:00Z", "2.65", "changes-before"),
            ("?changes-since=yesterday", "2.58", "changes-since"),
            ("?changes-since=2030-01-01T00:00:00Z&changes-before=2020-01-01T00:00:00Z",
             "2.66", "changes-since")):
        resp = api.call("GET", path(sid) + query, ALICE, version=version)
        assert resp.status_code == 400 and word in resp.text, (query, resp.text)
    since = actions(api, sid, "2.58", query="?changes-since=2000-01-01T00:00:00Z")
    assert len(since) == 5
    assert actions(api, sid, "2.66", query="?changes-since=2999-01-01T00:00:00Z") == []
    assert actions(api, sid, "2.66", query="?changes-before=2000-01-01T00:00:00Z") == []
    assert len(actions(api, sid, "2.66", query="?changes-before=2999-01-01T00:00:00Z")) == 5


def test_a_deleted_servers_actions_from_2_21(api: ComputeApi) -> None:
    sid = active(api)
    resp = api.call("DELETE", f"/v2.1/servers/{sid}", ALICE, version="2.47")
    assert resp.status_code == 204, resp.text
    rid = resp.headers["x-openstack-request-id"]
    assert show(api, sid, rid, "2.51")["events"][0]["result"] is None
    api.report("cmp1", sid, deleted=True)
    assert api.call("GET", path(sid), ADMIN, version="2.20").status_code == 404
    listed = actions(api, sid, "2.21", ADMIN)
    assert [a["action"] for a in listed] == ["delete", "create"]
    [event] = show(api, sid, rid, "2.62", ADMIN)["events"]
    assert (event["event"], event["result"], event["host"]) == (
        "compute_terminate_instance", "Success", "cmp1")
    assert api.call("GET", path(sid), BOB, version="2.21").status_code == 404


def test_a_delete_ends_the_open_work_with_error(api: ComputeApi) -> None:
    sid = boot(api, "2.47")["server"]["id"]  # still building
    api.call("DELETE", f"/v2.1/servers/{sid}", ALICE, version="2.47")
    api.report("cmp1", sid, deleted=True)
    events = {a["action"]: show(api, sid, a["request_id"], "2.84", ADMIN)["events"][0]
              for a in actions(api, sid, "2.21", ADMIN)}
    assert events["delete"]["result"] == "Success"
    assert events["create"]["result"] == "Error"
    assert "deleted" in events["create"]["details"]


def test_policy_rules_by_their_nova_names(api: ComputeApi,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sid = active(api)
    rid = api.core.instance_actions.list(CONTEXTS[ALICE], sid, ActionQuery())[0].request_id
    assert len(actions(api, sid, "2.96", READER)) == 1  # a reader of the project lists
    rules = ('"os_compute_api:os-instance-actions:list": "role:admin"\n'
             '"os_compute_api:os-instance-actions:events": "role:member"\n'
             '"os_compute_api:os-instance-actions:events:details": "role:member"\n')
    monkeypatch.setattr(policy, "_overrides", policy.parse_overrides(rules))
    resp = api.call("GET", path(sid), ALICE, version="2.96")
    assert resp.status_code == 403 and "os-instance-actions:list" in resp.text
    [event] = show(api, sid, rid, "2.84")["events"]  # the owner now sees what admins do
    assert {"traceback", "host", "details"} <= set(event)
    assert "host" not in show(api, sid, rid, "2.84", READER)["events"][0]


def test_disk_config_is_kept_through_create_update_rebuild_and_resize(api: ComputeApi) -> None:
    """Tempest's disk-config tests (run now that resize is on): the value given is the one
    shown, and each change of it through a rebuild or resize is an action too."""
    api.flavor(name="m1.small", id="2", vcpus=2, ram=1024)
    made = boot(api, "2.47", **{"OS-DCF:diskConfig": "AUTO"})["server"]
    assert made["OS-DCF:diskConfig"] == "AUTO"
    sid = made["id"]
    api.report("cmp1", sid, vm_state="active", power_state=1)

    def shown() -> str:
        resp = api.call("GET", f"/v2.1/servers/{sid}", ALICE, version="2.47")
        return str(check(resp, "servers", "get_server", "2.47")["server"]["OS-DCF:diskConfig"])

    assert shown() == "AUTO"
    resp = api.call("PUT", f"/v2.1/servers/{sid}", ALICE, version="2.47",
                    json={"server": {"OS-DCF:diskConfig": "MANUAL"}})
    assert resp.status_code == 200 and resp.json()["server"]["OS-DCF:diskConfig"] == "MANUAL"
    act(api, sid, {"rebuild": {"imageRef": IMAGE, "OS-DCF:diskConfig": "AUTO"}})
    assert shown() == "AUTO"
    api.report("cmp1", sid, vm_state="active", power_state=1, rebuild_generation=1)
    act(api, sid, {"resize": {"flavorRef": "2", "OS-DCF:diskConfig": "MANUAL"}})
    assert shown() == "MANUAL"
    assert [a["action"] for a in actions(api, sid, "2.1")] == ["resize", "rebuild", "create"]
    for body in ({"server": {"OS-DCF:diskConfig": "auto"}},):
        resp = api.call("PUT", f"/v2.1/servers/{sid}", ALICE, version="2.47", json=body)
        assert resp.status_code == 400 and "diskConfig" in resp.text
    resp = api.call("POST", "/v2.1/servers", ALICE, version="2.47", json={"server": {
        "name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none",
        "OS-DCF:diskConfig": "SOMETIMES"}})
    assert resp.status_code == 400 and "AUTO" in resp.text


def test_the_dead_host_sweep_fails_the_open_event(tmp_path: Path) -> None:
    with in_process(tmp_path, Settings(dead_host_sweep_interval=0.0)) as api:
        api.flavor(id="1")
        api.host("cmp1")
        sid = active(api)
        rid = act(api, sid, {"os-stop": None})
        with api.core.db.session() as s, s.begin():  # the host and the server fall silent
            for h in s.scalars(sa.select(m.ComputeHost)):
                h.heartbeat_at -= timedelta(seconds=600)
            for srv in s.scalars(sa.select(m.Server)):
                srv.updated_at -= timedelta(seconds=600)
        api.host("cmp2")  # another host's heartbeat sweeps
        action = show(api, sid, rid, "2.84", ADMIN)
        [event] = action["events"]
        assert (action["message"], event["result"], event["host"]) == ("Error", "Error", "cmp1")
        assert "stopped reporting" in event["details"]
