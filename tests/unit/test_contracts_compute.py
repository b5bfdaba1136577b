"""stratus.contracts.compute and .instance: the documents between the compute API, its
agent and the metadata service round-trip, and a bad field is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_compute_agent import assignment
from test_metadata_content import make_doc

from stratus.contracts.compute import (
    UNSET,
    Assignment,
    AssignmentSet,
    ContractError,
    Fault,
    HostResources,
    ServerReport,
)
from stratus.contracts.instance import InstanceDocument

pytestmark = pytest.mark.unit


def full_assignment() -> dict[str, Any]:
    a = assignment(config_drive=True)
    a["metadata_document"] = make_doc(flavor_name="m1.tiny", image_id=a["image_id"],
                                      security_groups=["default"])
    a["ports"][0]["device_name"] = "tap" + a["ports"][0]["id"][:11]
    a["snapshots"] = [{"image_id": "7e0d0d0d-0000-4000-8000-000000000001", "name": "s1"}]
    return a


def test_instance_document_round_trip() -> None:
    doc = make_doc(flavor_name="m1.tiny", image_id="img", security_groups=["default"])
    typed = InstanceDocument.from_dict(doc)
    assert typed.uuid == doc["uuid"] and typed.networks[0].subnet.cidr == "192.168.10.0/24"
    assert typed.networks[0].subnet.host_routes[0].nexthop == "192.168.10.254"
    assert typed.keys[1].name == "dev" and typed.launch_index == 2
    assert typed.to_dict() == doc
    assert InstanceDocument.from_dict(typed.to_dict()) == typed
    assert InstanceDocument.coerce(typed) is typed


def test_instance_document_defaults_and_overrides() -> None:
    typed = InstanceDocument.from_dict({"uuid": "u1"})
    assert typed.networks == [] and typed.keys == [] and typed.meta == {}
    nic = dict(make_doc()["networks"][0], vif_type="bridge", device_name="tapx")
    again = InstanceDocument.from_dict(make_doc(networks=[nic])).to_dict()
    assert again["networks"][0]["vif_type"] == "bridge"
    assert again["networks"][0]["device_name"] == "tapx"


@pytest.mark.parametrize(("change", "field"), [
    ({"uuid": None}, "uuid"),
    ({"uuid": 7}, "uuid"),
    ({"launch_index": "2"}, "launch_index"),
    ({"keys": {"name": "k"}}, "keys"),
    ({"keys": [{"name": 1}]}, "keys[0].name"),
    ({"meta": ["a"]}, "meta"),
    ({"networks": [{"mtu": "1500"}]}, "networks[0].mtu"),
    ({"networks": [{"subnet": {"host_routes": [{"destination": "10.0.0.0/8"}]}}]},
     "networks[0].subnet.host_routes[0].nexthop"),
    ({"security_groups": ["default", 3]}, "security_groups[1]"),
])
def test_instance_document_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    doc = make_doc(**change)
    with pytest.raises(ContractError) as err:
        InstanceDocument.from_dict(doc)
    assert err.value.field == field
    assert str(err.value).startswith(field + ": ")


def test_instance_document_must_be_an_object() -> None:
    with pytest.raises(ContractError, match="expected an object"):
        InstanceDocument.from_dict(["not", "a", "document"])


def test_assignment_round_trip() -> None:
    a = full_assignment()
    typed = Assignment.from_dict(a)
    assert typed.attempt == 1 and typed.flavor.ram == 256 and typed.image.size == len(
        b"QFI\xfb" + bytes(range(256)) * 64)
    assert typed.ports[0].tap == "tap" + a["ports"][0]["id"][:11]
    assert typed.reboot.generation == 0 and not typed.reboot.hard
    assert typed.metadata_document is not None and typed.metadata_document.flavor_name == "m1.tiny"
    assert typed.snapshots[0].name == "s1"
    assert typed.to_dict() == a
    doc = {"generation": 7, "servers": [a]}
    assert AssignmentSet.from_dict(doc).to_dict() == doc


def test_assignment_defaults() -> None:
    typed = Assignment.from_dict({"id": "s1", "vm_state": "building"})
    assert typed.attempt == 0 and typed.ports == [] and typed.metadata_document is None
    assert typed.desired_power is None and not typed.deleting
    assert Assignment.from_dict({"id": "s1", "vm_state": "deleted"}).deleting
    port = Assignment.from_dict(assignment()).ports[0]
    assert port.device_name is None and port.tap == "tap" + port.id[:11]
    hard = Assignment.from_dict(assignment(reboot={"generation": 3, "type": "hard"}))
    assert hard.reboot.hard and hard.reboot.generation == 3


@pytest.mark.parametrize(("path", "value", "field"), [
    (("attempt",), "1", "attempt"),
    (("id",), None, "id"),
    (("delete",), "yes", "delete"),
    (("flavor", "vcpus"), True, "flavor.vcpus"),
    (("image", "size"), "big", "image.size"),
    (("ports", 0, "mac_address"), None, "ports[0].mac_address"),
    (("ports", 0, "fixed_ips", 0, "ip_address"), 5, "ports[0].fixed_ips[0].ip_address"),
    (("reboot", "generation"), 1.5, "reboot.generation"),
    (("metadata_document", "uuid"), None, "metadata_document.uuid"),
])
def test_assignment_errors_name_the_field(path: tuple[Any, ...], value: Any, field: str) -> None:
    a = copy.deepcopy(full_assignment())
    node: Any = a
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ContractError) as err:
        Assignment.from_dict(a)
    assert err.value.field == field
    with pytest.raises(ContractError) as err:
        AssignmentSet.from_dict({"generation": 1, "servers": [a]})
    assert err.value.field == f"servers[0].{field}"


def test_assignment_set_needs_a_generation_as_integer() -> None:
    with pytest.raises(ContractError) as err:
        AssignmentSet.from_dict({"generation": "1", "servers": []})
    assert err.value.field == "generation"


def test_report_sends_only_what_is_set() -> None:
    assert ServerReport().to_dict() == {}
    assert ServerReport(deleted=True).to_dict() == {"deleted": True}
    spawned = ServerReport(vm_state="active", power_state=1, task_state=None, fault=None,
                           reboot_generation=0)
    assert spawned.to_dict() == {"vm_state": "active", "power_state": 1, "task_state": None,
                                 "fault": None, "reboot_generation": 0}
    failed = ServerReport(vm_state="error", power_state=0, task_state=None, reschedule=True,
                          fault=Fault(500, "boom", "VirtError: boom"))
    body = failed.to_dict()
    assert body["fault"] == {"code": 500, "message": "boom", "details": "VirtError: boom"}
    assert ServerReport.from_dict(body) == failed
    assert ServerReport.from_dict(spawned.to_dict()) == spawned
    assert repr(UNSET) == "UNSET" and ServerReport().console_tail is UNSET


def test_report_reading_ignores_unknown_keys_and_keeps_partial_faults() -> None:
    r = ServerReport.from_dict({"power_state": 4, "future_key": 1, "fault": {"message": "x"},
                                "snapshots_done": ["i1"], "console_tail": "ok"})
    assert r.to_dict() == {"power_state": 4, "fault": {"message": "x"},
                           "snapshots_done": ["i1"], "console_tail": "ok"}
    # the fields the API acts on only when well-formed are dropped otherwise
    assert ServerReport.from_dict({"deleted": "yes", "reschedule": 1,
                                   "reboot_generation": "2", "task_state": 5}).to_dict() == {}


@pytest.mark.parametrize(("body", "field", "message"), [
    ([], "", "The report must be a JSON object."),
    ({"power_state": 2}, "power_state", "power_state must be one of 0, 1, 3, 4, 6, 7."),
    ({"power_state": True}, "power_state", "power_state must be one of 0, 1, 3, 4, 6, 7."),
    ({"vm_state": "building"}, "vm_state",
     "vm_state must be one of active, stopped, paused, suspended, error."),
    ({"fault": "boom"}, "fault", "fault must be null or an object with code, message, details."),
    ({"fault": {"code": "x"}}, "fault.code", "fault.code must be an integer."),
    ({"snapshots_done": ["a", 1]}, "snapshots_done", "snapshots_done must be a list of image IDs."),
    ({"console_tail": 1}, "console_tail", "console_tail must be a string."),
])
def test_report_errors(body: Any, field: str, message: str) -> None:
    with pytest.raises(ContractError) as err:
        ServerReport.from_dict(body)
    assert err.value.field == field and err.value.reason == message


def test_host_resources_round_trip_and_errors() -> None:
    res = HostResources(vcpus=8, memory_mb=2048, local_gb=20, vcpus_used=0, memory_mb_used=0,
                        local_gb_used=0, hypervisor_version=7002000, running_vms=0,
                        virt_type="qemu", hypervisor_type="QEMU", hypervisor_hostname="cmp1",
                        host_ip="", availability_zone="nova")
    body = res.to_dict()
    assert "host_ip" not in body and "cpu_arch" not in body  # empty and unset texts stay out
    assert body["vcpus_used"] == 0
    assert HostResources.from_dict(body).to_dict() == body
    for bad, field in (({"vcpus": "8"}, "host.vcpus"), ({"virt_type": 1}, "host.virt_type"),
                       ({"memory_mb": -1}, "host.memory_mb")):
        with pytest.raises(ContractError) as err:
            HostResources.from_dict(bad)
        assert err.value.field == field
