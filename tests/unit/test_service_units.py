"""The systemd units and supervisor programs roles/common writes, rendered by Ansible's own
template engine with the role's variables: every unit starts after the services it calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROLE = Path(__file__).resolve().parents[2] / "roles" / "common"


def _render(template: str, service: dict[str, Any], *, prefix: str = "st",
            manager_vars: dict[str, Any] | None = None) -> str:
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    loader = DataLoader()
    variables: dict[str, Any] = {}
    for path in (ROLE / "vars" / "main.yml", ROLE / "defaults" / "main.yml"):
        for key, value in yaml.safe_load(path.read_text()).items():  # trusted, as a role's are
            variables[key] = trust_as_template(value) if isinstance(value, str) else value
    variables.update({
        "ansible_managed": "managed", "common_deploy_prefix": prefix, "common_prefix": "",
        "common_service": service, "role_path": str(ROLE), "groups": {}, "hostvars": {},
        "common_package_checksum": "",
    })
    variables.update(manager_vars or {})
    templar = Templar(loader=loader, variables=variables)
    text = (ROLE / "templates" / template).read_text()
    return str(templar.template(trust_as_template(text)))


def _unit_lines(text: str, key: str) -> list[str]:
    return [w for line in text.splitlines() if line.startswith(key + "=")
            for w in line.split("=", 1)[1].split()]


def _svc(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "command": [f"/venv/bin/{name}", "--config-file", "/etc/s.conf"],
            **extra}


def test_agent_unit_starts_after_the_apis_it_calls() -> None:
    unit = _render("systemd.service.j2", _svc("stratus-compute-agent"))
    after = _unit_lines(unit, "After")
    wants = _unit_lines(unit, "Wants")
    for name in ("network-online.target", "stratus-identity.service",
                 "stratus-compute.service", "stratus-network.service", "stratus-image.service"):
        assert name in after and name in wants, (name, unit)
    assert "postgresql.service" not in after  # an agent has no database


def test_compute_agent_is_ordered_after_libvirt_and_libvirt_guests_without_wanting_them(
        ) -> None:
    # at a shutdown it stops first, so it never reports the guests libvirt-guests shuts down
    unit = _render("systemd.service.j2", _svc("stratus-compute-agent"))
    assert {"libvirtd.service", "libvirt-guests.service"} <= set(_unit_lines(unit, "After"))
    assert not {"libvirtd.service", "libvirt-guests.service"} & set(_unit_lines(unit, "Wants"))
    network_agent = _render("systemd.service.j2", _svc("stratus-network-agent"))
    assert "openvswitch-switch.service" in _unit_lines(network_agent, "After")
    assert "openvswitch-switch.service" not in _unit_lines(network_agent, "Wants")
    api = _render("systemd.service.j2", _svc("stratus-compute"))
    assert "libvirtd.service" not in _unit_lines(api, "After")


def test_api_unit_starts_after_identity_and_its_database_without_wanting_it() -> None:
    unit = _render("systemd.service.j2", _svc("stratus-compute", health_url="http://x/h"))
    after = _unit_lines(unit, "After")
    assert {"stratus-identity.service", "stratus-network.service",
            "postgresql.service"} <= set(after)
    assert "postgresql.service" not in _unit_lines(unit, "Wants")  # SQLite: not started


def test_identity_calls_nothing_but_the_network_and_its_database() -> None:
    unit = _render("systemd.service.j2", _svc("stratus-identity"))
    assert _unit_lines(unit, "After") == ["network-online.target", "postgresql.service"]
    assert _unit_lines(unit, "Wants") == ["network-online.target"]


def test_a_deploy_prefix_names_the_units_it_orders_after() -> None:
    unit = _render("systemd.service.j2", _svc("stratus-network-agent"), prefix="zho1")
    assert "zho1-stratus-network.service" in _unit_lines(unit, "After")
    assert "stratus-network.service" not in _unit_lines(unit, "After")


def test_an_explicit_after_replaces_the_table() -> None:
    unit = _render("systemd.service.j2", _svc("stratus-new", after=["stratus-object"]))
    assert _unit_lines(unit, "Wants") == ["network-online.target", "stratus-object.service"]


def _priority(name: str) -> int:
    text = _render("supervisor-program.conf.j2", _svc(name))
    [value] = [line.split("=", 1)[1] for line in text.splitlines()
               if line.startswith("priority")]
    return int(value)


def test_supervisor_priorities_follow_the_same_order() -> None:
    order = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_common_service_order"]
    for name, entry in order.items():
        for called in entry["calls"]:
            assert _priority(called) < _priority(name), (called, name)
    assert _priority("stratus-identity") < _priority("stratus-compute") \
        < _priority("stratus-compute-agent")


def test_every_deployed_service_is_in_the_order_table() -> None:
    order = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_common_service_order"]
    for vars_file in sorted(ROLE.parent.glob("*/vars/main.yml")):
        for key, value in (yaml.safe_load(vars_file.read_text()) or {}).items():
            if key.endswith("_service") and isinstance(value, dict) and "name" in value:
                assert value["name"] in order, (vars_file, value["name"])
                for called in order[value["name"]]["calls"]:
                    assert called in order, called


def test_supervisor_is_installed_only_where_it_runs_the_services() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert "supervisor" not in defaults["common_apt_packages"]
    tasks = yaml.safe_load((ROLE / "tasks" / "install.yml").read_text())
    [task] = [t for t in tasks if "supervisor" in str(t.get("ansible.builtin.apt", {}))]
    # only where supervisord runs the services (and, on a re-run, only when it is missing)
    assert "_common_process_manager == 'supervisor'" in task["when"]


def test_the_storage_agent_unit_stops_only_its_main_process() -> None:
    volume_vars = yaml.safe_load((ROLE.parent / "volume" / "vars" / "main.yml").read_text())
    described = volume_vars["_volume_storage_service"]
    unit = _render("systemd.service.j2",
                   _svc("stratus-storage-agent", kill_mode=described["kill_mode"]))
    assert _unit_lines(unit, "KillMode") == ["process"]
    # every other unit keeps systemd's default: the whole control group is stopped
    assert _unit_lines(_render("systemd.service.j2", _svc("stratus-compute-agent")),
                       "KillMode") == []


def test_an_api_unit_is_ready_when_it_answers_an_agent_when_it_runs() -> None:
    # Type=notify: the API's hand-over parent says READY=1 once its first worker serves, so
    # the agents ordered After= it do not start (and find it refusing) while it starts up
    api = _render("systemd.service.j2", _svc("stratus-identity", health_url="http://x/h"),
                  manager_vars={"_common_service_reloads": True})
    assert _unit_lines(api, "Type") == ["notify"]
    assert _unit_lines(api, "TimeoutStartSec") == ["180"]
    agent = _render("systemd.service.j2", _svc("stratus-compute-agent"),
                    manager_vars={"_common_service_reloads": False})
    assert _unit_lines(agent, "Type") == ["simple"]
    assert not _unit_lines(agent, "TimeoutStartSec")
