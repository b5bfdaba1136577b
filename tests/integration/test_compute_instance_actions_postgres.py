"""Instance actions and the kept disk config on the session's real PostgreSQL (the SQLite
runs are tests/unit/test_compute_instance_actions.py): migrations 0009 and 0010 applied
there, an action and its event written in the request's transaction (the action refers
to a server row made in the same transaction), closed by reports, a failure and a delete,
and a server row removed with its actions (the foreign keys' cascade)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from compute_api import ADMIN, ALICE, IMAGE, ComputeApi, in_process
from stratus.compute import models as m

pytestmark = pytest.mark.integration


def _events(api: ComputeApi, sid: str, version: str = "2.84") -> dict[str, dict[str, Any]]:
    """action -> its one event, as an admin sees it."""
    listed = api.ok("GET", f"/v2.1/servers/{sid}/os-instance-actions", ADMIN,
                    version=version)["instanceActions"]
    out = {}
    for action in listed:
        shown = api.ok("GET", f"/v2.1/servers/{sid}/os-instance-actions/"
                       f"{action['request_id']}", ADMIN, version=version)["instanceAction"]
        [out[action["action"]]] = shown["events"]
    return out


def test_instance_actions_on_postgresql(postgres: Any, tmp_path: Path) -> None:
    url = postgres.create_database("zia_actions")
    with in_process(tmp_path, url=url) as api:
        api.flavor(id="1")
        api.host("cmp1")
        body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1",
                           "networks": "none", "OS-DCF:diskConfig": "AUTO"}}
        sid = api.ok("POST", "/v2.1/servers", ALICE, status=202, json=body)["server"]["id"]
        assert api.server(sid)["OS-DCF:diskConfig"] == "AUTO"
        api.report("cmp1", sid, vm_state="active", power_state=1)
        for action, state, power in (("os-stop", "stopped", 4), ("os-start", "error", 0)):
            resp = api.call("POST", f"/v2.1/servers/{sid}/action", ALICE, json={action: None})
            assert resp.status_code == 202, resp.text
            api.report("cmp1", sid, vm_state=state, power_state=power, fault={
                "code": 500, "message": "the domain crashed", "details": ""
            } if state == "error" else None)
        events = _events(api, sid)
        assert events["create"]["result"] == events["stop"]["result"] == "Success"
        assert events["start"]["result"] == "Error"
        assert events["start"]["details"] == "the domain crashed"
        assert api.call("DELETE", f"/v2.1/servers/{sid}", ALICE).status_code == 204
        api.report("cmp1", sid, deleted=True)
        events = _events(api, sid)
        assert events["delete"]["result"] == "Success" and events["delete"]["host"] == "cmp1"
        # a server row removed (an undone create) takes its actions and events with it
        with api.core.db.session() as s, s.begin():
            s.execute(sa.delete(m.Server).where(m.Server.id == sid))
        with api.core.db.session() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(m.InstanceAction)) == 0
            assert s.scalar(sa.select(sa.func.count()).select_from(
                m.InstanceActionEvent)) == 0
