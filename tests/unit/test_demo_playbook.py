"""playbooks/demo.yml's checks, evaluated by Ansible's template engine: the ready line must
come from the guest's current boot (the console file keeps earlier boots'), and the
server's state is read again, not taken from the boot task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

DEMO = Path(__file__).resolve().parents[2] / "playbooks" / "demo.yml"
OLD_BOOT = "[    0.000000] Linux version 6.1.0\nSTRATUS-GUEST: network up 192.168.100.5\n" \
           "STRATUS-GUEST: ready\nreboot: Power down\n"
NEW_BOOT = "[    0.000000] Linux version 6.1.0\nstratus-guest: loading modules\n"


def _task(name_start: str) -> dict[str, Any]:
    [play] = yaml.safe_load(DEMO.read_text())
    [task] = [t for t in play["tasks"] if t["name"].startswith(name_start)]
    return dict(task)


def _true(expression: str, **variables: Any) -> bool:
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    templar = Templar(loader=DataLoader(),
                      variables={"demo_marker": "STRATUS-GUEST: ready", **variables})
    return bool(templar.template(trust_as_template("{{ (" + expression.strip() + ") }}")))


def test_an_earlier_boots_ready_line_does_not_count() -> None:
    until = _task("Wait for the guest's ready line")["until"]
    assert not _true(until, demo_console={"json": {"output": OLD_BOOT + NEW_BOOT}})
    done = OLD_BOOT + NEW_BOOT + "STRATUS-GUEST: ready\n"
    assert _true(until, demo_console={"json": {"output": done}})
    # a console whose tail no longer holds the banner: all of it is the current boot's
    assert _true(until, demo_console={"json": {"output": "STRATUS-GUEST: ready\n"}})


def test_the_state_is_read_again_and_must_be_active() -> None:
    until = _task("Wait until the server demo has settled")["until"]

    def srv(status: str, task: str | None = None) -> dict[str, Any]:
        return {"json": {"server": {"status": status, "OS-EXT-STS:task_state": task}}}

    assert not _true(until, demo_state=srv("BUILD", "spawning"))
    assert not _true(until, demo_state=srv("SHUTOFF", "powering-on"))
    assert _true(until, demo_state=srv("SHUTOFF"))
    check = _task("Check that the server demo is ACTIVE")["ansible.builtin.assert"]
    assert check["that"] == ["demo_state.json.server.status == 'ACTIVE'"]
    shown = _task("Show how to reach")["ansible.builtin.debug"]["msg"][0]
    assert "demo_state.json.server.status" in shown
