"""The compute API shows what the compute agent's host check reports
(agent/compute/hostcheck.py): the host's problems on GET /v2.1/stratus/compute-hosts (its
os-services entry stays exactly Nova's), and a slow spawn's warning fault kept on the
ACTIVE server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute_api import in_process
from network_api import ALICE
from stratus.agent.compute.hostcheck import SLOW_FAULT_CODE
from stratus.contracts.compute import HostProblem, HostResources

pytestmark = pytest.mark.unit


@pytest.fixture
def compute(tmp_path: Path) -> Iterator[Any]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def problems_of(compute: Any, host: str) -> list[dict[str, Any]]:
    listed = compute.call("GET", "/v2.1/stratus/compute-hosts")
    assert listed.status_code == 200, listed.text
    return list(next(h for h in listed.json()["hosts"] if h["host"] == host)["problems"])


def test_the_hosts_problems_are_shown_and_a_slow_spawn_keeps_its_warning(
        compute: Any) -> None:
    body = HostResources(vcpus=4, memory_mb=4096, local_gb=40,
                         problems=[HostProblem("qemu_reprobe", "re-probed", "2026-01-01T00:00:00Z")]
                         ).to_dict()
    assert compute.call("PUT", "/v2.1/stratus/compute-hosts/cmp1",
                        json={"host": body}).status_code == 200
    assert problems_of(compute, "cmp1") == body["problems"]
    svc = next(s for s in compute.call("GET", "/v2.1/os-services").json()["services"]
               if s["host"] == "cmp1")
    # a host with a problem keeps exactly Nova's keys in os-services (Tempest's schema)
    assert set(svc) == {"id", "binary", "host", "zone", "status", "state", "updated_at",
                        "disabled_reason", "forced_down"} and svc["status"] == "enabled"
    body["problems"] = []
    compute.call("PUT", "/v2.1/stratus/compute-hosts/cmp1", json={"host": body})
    assert problems_of(compute, "cmp1") == []
    assert compute.call("GET", "/v2.1/stratus/compute-hosts", token=ALICE).status_code == 403
    bad = compute.call("PUT", "/v2.1/stratus/compute-hosts/cmp1",
                       json={"host": {"problems": [{"message": "m"}]}})
    assert bad.status_code == 400 and "problems[0].code" in bad.text
    sid = compute.boot()["server"]["id"]
    host = compute.server(sid)["OS-EXT-SRV-ATTR:host"]
    compute.report(host, sid, vm_state="active", power_state=1,
                   fault={"code": SLOW_FAULT_CODE, "message": "built slowly", "details": "d"})
    got = compute.server(sid)
    assert got["status"] == "ACTIVE" and got["fault"]["message"] == "built slowly"

