"""The ``migrate`` server action: Nova's 404/403/409/400 checks, 400 "No valid host" with
no other enabled, up host, and the honest 501 when one exists (cross-host migration is
not built)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute_api import ADMIN, ALICE, ComputeApi, in_process
from stratus.compute import models as m

pytestmark = pytest.mark.unit
MISSING = "99999999-9999-4999-8999-999999999999"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("s8u-cmp1")
        yield client


def active(api: ComputeApi) -> str:
    sid: str = api.boot()["server"]["id"]
    host = api.server(sid)["OS-EXT-SRV-ATTR:host"]
    api.report(host, sid, vm_state="active", power_state=1)
    return sid


def migrate(api: ComputeApi, sid: str, arg: Any = None, token: str = ADMIN,
            version: str = "2.47") -> tuple[int, str]:
    resp = api.call("POST", f"/v2.1/servers/{sid}/action", token, version=version,
                    json={"migrate": arg})
    body = resp.json()
    return resp.status_code, str(next(iter(body.values()))["message"])


def test_unknown_server_404_before_policy(api: ComputeApi) -> None:
    assert migrate(api, MISSING)[0] == 404
    assert migrate(api, MISSING, token=ALICE)[0] == 404


def test_member_403(api: ComputeApi) -> None:
    status, text = migrate(api, active(api), token=ALICE)
    assert status == 403 and "os-migrate-server:migrate" in text


def test_one_host_is_no_valid_host(api: ComputeApi) -> None:
    status, text = migrate(api, active(api))
    assert status == 400 and text.startswith("No valid host was found.")


def test_wrong_state_409(api: ComputeApi) -> None:
    sid = active(api)
    api.ok("POST", f"/v2.1/servers/{sid}/action", ADMIN, status=202, json={"pause": None})
    status, text = migrate(api, sid)
    assert status == 409 and "migrate" in text


def test_another_host_up_is_501_and_server_untouched(api: ComputeApi) -> None:
    sid = active(api)
    api.host("s8u-cmp2")
    status, text = migrate(api, sid)
    assert status == 501 and "s8u-cmp2" in text and "not implemented" in text
    srv = api.server(sid)
    assert srv["status"] == "ACTIVE" and srv["OS-EXT-STS:task_state"] is None
    assert srv["OS-EXT-SRV-ATTR:host"] == "s8u-cmp1"


def test_another_host_disabled_or_down_is_no_valid_host(api: ComputeApi) -> None:
    sid = active(api)
    api.host("s8u-cmp2")
    with api.core.db.session() as s, s.begin():
        s.query(m.ComputeHost).filter_by(host="s8u-cmp2").one().forced_down = True
    assert migrate(api, sid)[0] == 400
    with api.core.db.session() as s, s.begin():
        row = s.query(m.ComputeHost).filter_by(host="s8u-cmp2").one()
        row.forced_down, row.enabled = False, False
    assert migrate(api, sid)[0] == 400


def test_target_host_from_2_56(api: ComputeApi) -> None:
    sid = active(api)
    api.host("s8u-cmp2")
    status, text = migrate(api, sid, {"host": "s8u-cmp2"})
    assert status == 400 and "2.56" in text
    assert migrate(api, sid, {"host": "nope"}, version="2.56") == (
        400, "Compute host nope could not be found.")
    status, text = migrate(api, sid, {"host": "s8u-cmp1"}, version="2.56")
    assert status == 400 and "own host" in text
    assert migrate(api, sid, {"host": 5}, version="2.56")[0] == 400
    assert migrate(api, sid, {"host": "s8u-cmp2"}, version="2.56")[0] == 501
    assert migrate(api, sid, {"host": None}, version="2.56")[0] == 501
