"""The lock/unlock actions (os-lock-server) and the smaller answers Tempest's
test_server_actions.py and test_servers.py check: adminPass echoed at create, progress
only in Nova's progress statuses, no security_groups key for a server in no group, and
os-getConsoleOutput's length counted as Nova counts it. Answers are checked against
Tempest's own schemas (test_compute_schemas.check)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_compute_schemas import active, check

from compute_api import ADMIN, ALICE, BOB, READER, ComputeApi, in_process
from stratus.compute.api.server_actions import console_tail

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def act(api: ComputeApi, sid: str, body: dict[str, Any], token: str = ALICE,
        version: str = "2.47") -> Any:
    return api.call("POST", f"/v2.1/servers/{sid}/action", token, version=version, json=body)


def report(api: ComputeApi, sid: str, **state: Any) -> None:
    api.report(api.server(sid)["OS-EXT-SRV-ATTR:host"], sid, **state)


@pytest.mark.parametrize("version", ["2.1", "2.47", "2.73", "2.96"])
def test_lock_unlock_as_tempest_runs_it(api: ComputeApi, version: str) -> None:
    sid = active(api, version)
    check(act(api, sid, {"lock": None}, version=version), "servers",
          "server_actions_common_schema", version)
    srv = check(api.call("GET", f"/v2.1/servers/{sid}", READER, version=version), "servers",
                "get_server", version)["server"]
    assert srv["status"] == "ACTIVE"
    # "locked" is shown from 2.9 (absent below it)
    assert srv.get("locked", False) is (tuple(map(int, version.split("."))) >= (2, 9))
    # a locked server cannot be stopped by its (non-admin) owner: 409
    resp = act(api, sid, {"os-stop": None}, version=version)
    assert resp.status_code == 409 and "is locked" in resp.text
    check(act(api, sid, {"unlock": None}, version=version), "servers",
          "server_actions_common_schema", version)
    assert act(api, sid, {"os-stop": None}, version=version).status_code == 202
    report(api, sid, vm_state="stopped", power_state=4)
    assert api.server(sid)["status"] == "SHUTOFF"


def test_a_lock_guards_what_nova_guards_and_not_admins(api: ComputeApi) -> None:
    sid = active(api, "2.73")
    assert act(api, sid, {"lock": {"locked_reason": "maintenance"}},
               version="2.73").status_code == 202
    srv = api.ok("GET", f"/v2.1/servers/{sid}", ALICE, version="2.73")["server"]
    assert (srv["locked"], srv["locked_reason"]) == (True, "maintenance")
    for body in ({"reboot": {"type": "HARD"}}, {"pause": None}, {"suspend": None},
                 {"resize": {"flavorRef": "1"}}, {"forceDelete": None}):
        resp = act(api, sid, body)
        assert resp.status_code == 409 and "maintenance" in resp.text, (body, resp.text)
    assert api.call("DELETE", f"/v2.1/servers/{sid}", ALICE).status_code == 409
    resp = api.call("PUT", f"/v2.1/servers/{sid}/metadata/k", ALICE,
                    json={"meta": {"k": "v"}})
    assert resp.status_code == 409
    resp = api.call("POST", f"/v2.1/servers/{sid}/os-volume_attachments", ALICE,
                    json={"volumeAttachment": {"volumeId": "v1"}})
    assert resp.status_code == 409
    # reads, a rename and the console still work; another project sees no server
    assert api.call("GET", f"/v2.1/servers/{sid}/metadata", ALICE).status_code == 200
    assert api.call("PUT", f"/v2.1/servers/{sid}", ALICE,
                    json={"server": {"name": "still"}}).status_code == 200
    assert act(api, sid, {"lock": None}, BOB).status_code == 404
    # the listing filter (2.73)
    other = active(api, "2.73")
    locked = api.ok("GET", "/v2.1/servers?locked=true", ALICE, version="2.73")["servers"]
    unlocked = api.ok("GET", "/v2.1/servers?locked=0", ALICE, version="2.73")["servers"]
    assert [s["id"] for s in locked] == [sid] and [s["id"] for s in unlocked] == [other]
    # an admin passes the lock
    assert act(api, sid, {"pause": None}, ADMIN).status_code == 202


def test_an_owner_cannot_undo_an_admins_lock(api: ComputeApi) -> None:
    sid = active(api, "2.73")
    assert act(api, sid, {"lock": None}, ADMIN).status_code == 202
    resp = act(api, sid, {"unlock": None})
    assert resp.status_code == 403 and "unlock_override" in resp.text
    assert api.server(sid)["locked"] is True
    assert act(api, sid, {"unlock": None}, ADMIN).status_code == 202
    assert api.server(sid)["locked"] is False
    # the owner's own lock: the owner unlocks it; unlocking twice is fine
    assert act(api, sid, {"lock": None}).status_code == 202
    assert act(api, sid, {"unlock": None}).status_code == 202
    assert act(api, sid, {"unlock": None}).status_code == 202
    assert act(api, sid, {"lock": None}, READER).status_code == 403


@pytest.mark.parametrize("body", [{"lock": {"locked_reason": "x" * 256}},
                                  {"lock": {"reason": "x"}}, {"lock": "x"}])
def test_lock_body_is_checked_from_2_73(api: ComputeApi, body: Any) -> None:
    sid = active(api, "2.73")
    assert act(api, sid, body, version="2.73").status_code == 400
    assert api.server(sid)["locked"] is False


def test_admin_pass_given_at_create_is_echoed(api: ComputeApi) -> None:
    net = api.fake.network("n")
    body: dict[str, Any] = {"server": {
        "name": "vm", "imageRef": "11111111-1111-4111-8111-111111111111", "flavorRef": "1",
        "networks": [{"uuid": net["id"]}], "adminPass": "testpassword"}}
    made = check(api.call("POST", "/v2.1/servers", ALICE, json=body), "servers",
                 "create_server_with_admin_pass", "2.47")["server"]
    assert made["adminPass"] == "testpassword"
    body["server"]["adminPass"] = 7
    resp = api.call("POST", "/v2.1/servers", ALICE, json=body)
    assert resp.status_code == 400 and "adminPass" in resp.text
    assert len(api.ok("GET", "/v2.1/servers", ALICE)["servers"]) == 1  # nothing made


@pytest.mark.parametrize("version", ["2.1", "2.47", "2.75", "2.96"])
def test_progress_only_in_progress_statuses(api: ComputeApi, version: str) -> None:
    sid = active(api, version)
    shown = check(api.call("GET", f"/v2.1/servers/{sid}", ALICE, version=version),
                  "servers", "get_server", version)["server"]
    assert isinstance(shown["progress"], int)
    assert act(api, sid, {"os-stop": None}).status_code == 202
    report(api, sid, vm_state="stopped", power_state=4)
    # Tempest's test_update_server_name: a stopped server's update has no progress
    upd = check(api.call("PUT", f"/v2.1/servers/{sid}", ALICE, version=version,
                         json={"server": {"name": "new"}}),
                "servers", "update_server", version)["server"]
    assert upd["status"] == "SHUTOFF" and "progress" not in upd
    shown = check(api.call("GET", f"/v2.1/servers/{sid}", ALICE, version=version),
                  "servers", "get_server", version)["server"]
    assert "progress" not in shown


def test_no_security_groups_key_without_groups(api: ComputeApi) -> None:
    api.fake.security_group("web")
    sid = active(api, "2.47", security_groups=[{"name": "web"}])
    assert api.server(sid, ALICE)["security_groups"] == [{"name": "web"}]
    # Tempest's test_remove_server_all_security_groups
    assert act(api, sid, {"removeSecurityGroup": {"name": "web"}}).status_code == 202
    shown = check(api.call("GET", f"/v2.1/servers/{sid}", ALICE), "servers", "get_server",
                  "2.47")["server"]
    assert "security_groups" not in shown
    listed = api.ok("GET", "/v2.1/servers/detail", ALICE)["servers"]
    assert "security_groups" not in listed[0]


def test_console_length_counts_as_nova(api: ComputeApi) -> None:
    text = "one\ntwo\nthree\nfour\n"
    # Tempest's _get_output: length 3 must give three pieces when split at "\n"
    assert len(console_tail(text, 3).split("\n")) == 3
    assert console_tail(text, 3) == "three\nfour\n"
    assert console_tail(text, 0) == "" and console_tail(text, None) == text
    assert console_tail(text, -1) == text and console_tail("a\nb", 1) == "b"
    sid = active(api, "2.47")
    report(api, sid, vm_state="active", power_state=1, console_tail=text)
    out = check(act(api, sid, {"os-getConsoleOutput": {"length": 3}}), "servers",
                "get_console_output", "2.47")["output"]
    assert len(out.split("\n")) == 3
