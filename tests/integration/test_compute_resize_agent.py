"""Resize and interfaces end to end with the fake driver: python-openstackclient resizes
a server on the real stratus-compute (with identity, image and network) and confirms,
resizes again and reverts; the compute agent's loop stops the guest, keeps its disk, grows
it and redefines the domain with the new flavor (a revert puts the kept disk back, a
confirm drops it); an agent killed in the middle of a resize is replaced by a new one that
finishes it. ``server add port|network`` and ``remove port`` attach and detach ports, the
agent hot-plugging the taps. No guest boots here (the fake driver)."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_compute_server import osc, wait_status

from helpers import IdentityServer
from stack import compute_stack
from stratus.agent.compute.apis import HttpComputeApi, HttpImageApi
from stratus.agent.compute.reconcile import ComputeAgent
from stratus.agent.compute.state import AgentSettings
from stratus.agent.compute.virt.base import RUNNING
from stratus.agent.compute.virt.fake import FakeDriver
from stratus.common.clients import StaticToken
from stratus.contracts.compute import Assignment

pytestmark = [pytest.mark.integration]
HOST = "zrs-cmp1"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("zrs-resize")
    with compute_stack(root) as st:
        yield {"identity": st.identity, "image": st.image, "network": st.network,
               "compute": st.compute, "root": root}


def image(cloud: dict[str, Any], headers: dict[str, str], name: str) -> str:
    disk = Path(cloud["root"]) / f"{name}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    made = httpx.post(f"{cloud['image'].url}/v2/images", headers=headers, json={
        "name": name, "disk_format": "qcow2", "container_format": "bare",
        "visibility": "public"}, timeout=120).json()
    up = httpx.put(f"{cloud['image'].url}/v2/images/{made['id']}/file",
                   content=disk.read_bytes(),
                   headers={**headers, "Content-Type": "application/octet-stream"},
                   timeout=120)
    assert up.status_code == 204, up.text
    return str(made["id"])


class Loop:
    """One compute agent process: its loop in a thread, stopped on leaving."""

    def __init__(self, cloud: dict[str, Any], driver: FakeDriver, token: str) -> None:
        auth = StaticToken(token)
        settings = AgentSettings(host=HOST, instances_path=str(Path(cloud["root"]) / "inst"),
                                 resync_interval=1, heartbeat_interval=1, retry_interval=1,
                                 vif_plug_wait=False, console_interval=1, shutdown_timeout=0)
        self.agent = ComputeAgent(settings, driver,
                                  HttpComputeApi(f"{cloud['compute'].url}/v2.1", HOST, auth),
                                  HttpImageApi(cloud["image"].url, auth))
        assert self.agent.heartbeat()
        self.event = threading.Event()
        self.thread = threading.Thread(target=self.agent.run, args=(self.event,), daemon=True)

    def __enter__(self) -> ComputeAgent:
        self.thread.start()
        return self.agent

    def __exit__(self, *exc: object) -> None:
        self.event.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()


def test_resize_confirm_revert_and_a_killed_agent(cloud: dict[str, Any]) -> None:
    ident: IdentityServer = cloud["identity"]
    token = ident.token()
    headers = {"X-Auth-Token": token}
    img = image(cloud, headers, "zrs-tiny")
    net = osc(ident, "network", "create", "zrs-net")
    osc(ident, "subnet", "create", "--network", "zrs-net", "--subnet-range",
        "192.168.81.0/24", "zrs-sub")
    osc(ident, "flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "--id",
        "1", "zrs.tiny")
    osc(ident, "flavor", "create", "--vcpus", "2", "--ram", "512", "--disk", "2", "--id",
        "2", "zrs.small")
    osc(ident, "flavor", "create", "--vcpus", "2", "--ram", "768", "--disk", "3", "--id",
        "3", "zrs.medium")
    driver = FakeDriver(prefix="zrs-")
    with Loop(cloud, driver, token):
        srv = osc(ident, "server", "create", "--image", img, "--flavor", "zrs.tiny",
                  "--network", net["id"], "--wait", "zrs-vm1")
        sid = srv["id"]
        taps, addresses = dict(driver.taps), srv["addresses"]
        osc(ident, "server", "resize", "--flavor", "zrs.small", "--wait", "zrs-vm1",
            json_out=False)
        shown = osc(ident, "server", "show", "zrs-vm1")
        assert shown["status"] == "VERIFY_RESIZE" and shown["addresses"] == addresses
        dom = driver.domains[sid]
        assert (dom.spec.vcpus, dom.spec.memory_mb, dom.state) == (2, 512, RUNNING)
        assert driver.disk_sizes[sid] == 2 and driver.has_disk_copy(sid)
        assert driver.taps == taps
        osc(ident, "server", "resize", "confirm", "zrs-vm1", json_out=False)
        wait_status(ident, "zrs-vm1", "ACTIVE")
        assert "zrs.small" in str(osc(ident, "server", "show", "zrs-vm1")["flavor"])
        # the agent drops the kept disk on its next pass
        deadline = 60.0
        while driver.has_disk_copy(sid) and deadline > 0:
            threading.Event().wait(0.2)
            deadline -= 0.2
        assert not driver.has_disk_copy(sid)
        osc(ident, "server", "resize", "--flavor", "zrs.medium", "--wait", "zrs-vm1",
            json_out=False)
        assert driver.domains[sid].spec.memory_mb == 768
        osc(ident, "server", "resize", "revert", "zrs-vm1", json_out=False)
        wait_status(ident, "zrs-vm1", "ACTIVE")
        dom = driver.domains[sid]
        assert (dom.spec.vcpus, dom.spec.memory_mb, dom.state) == (2, 512, RUNNING)
        assert driver.disk_sizes[sid] == 2 and not driver.has_disk_copy(sid)
        migrations = osc(ident, "--os-compute-api-version", "2.80", "server", "migration",
                         "list", "--server", "zrs-vm1")
        assert sorted(m["Status"] for m in migrations) == ["confirmed", "reverted"]
    # The agent is gone; a resize is asked for, and a new agent process dies half-way.
    resp = httpx.post(f"{cloud['compute'].url}/v2.1/servers/{sid}/action",
                      headers={**headers, "OpenStack-API-Version": "compute 2.79"},
                      json={"resize": {"flavorRef": "3"}}, timeout=120)
    assert resp.status_code == 202, resp.text
    assert osc(ident, "server", "show", "zrs-vm1")["status"] == "RESIZE"
    dying = Loop(cloud, driver, token)
    doc = next(a for a in dying.agent.compute.assignments().servers if a.id == sid)
    assert isinstance(doc, Assignment) and doc.resize.generation == 4
    driver.fail["define"] = KeyboardInterrupt()  # the process "dies" here
    with contextlib.suppress(KeyboardInterrupt):
        dying.agent.converge(doc)
    del driver.fail["define"]
    dying.agent.pool.shutdown(wait=True)
    assert osc(ident, "server", "show", "zrs-vm1")["status"] == "RESIZE"
    with Loop(cloud, driver, token):
        wait_status(ident, "zrs-vm1", "VERIFY_RESIZE")
        dom = driver.domains[sid]
        assert (dom.spec.memory_mb, dom.state) == (768, RUNNING)
        assert driver.disk_sizes[sid] == 3
        osc(ident, "server", "delete", "--wait", "zrs-vm1", json_out=False)
    assert not driver.domains and not driver.taps and not driver.disk_copies


def _until(check: Any, what: str) -> None:
    for _ in range(300):
        if check():
            return
        threading.Event().wait(0.2)
    raise AssertionError(f"not reached: {what}")


def test_add_and_remove_port_and_network(cloud: dict[str, Any]) -> None:
    """``openstack server add port|network`` and ``remove port``: the port's device and
    owner in the network API, the tap hot-plugged into (and out of) the domain."""
    ident: IdentityServer = cloud["identity"]
    token = ident.token()
    img = image(cloud, {"X-Auth-Token": token}, "zrs-tiny-if")
    net = osc(ident, "network", "create", "zrs-inet1")
    osc(ident, "subnet", "create", "--network", "zrs-inet1", "--subnet-range",
        "192.168.82.0/24", "zrs-isub1")
    osc(ident, "network", "create", "zrs-inet2")
    osc(ident, "subnet", "create", "--network", "zrs-inet2", "--subnet-range",
        "192.168.83.0/24", "zrs-isub2")
    osc(ident, "flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "--id",
        "11", "zrs.if")
    port = osc(ident, "port", "create", "--network", "zrs-inet2", "zrs-port1")
    driver = FakeDriver(prefix="zrs-")
    with Loop(cloud, driver, token):
        sid = osc(ident, "server", "create", "--image", img, "--flavor", "zrs.if",
                  "--network", net["id"], "--wait", "zrs-vm2")["id"]
        osc(ident, "server", "add", "port", "zrs-vm2", "zrs-port1", json_out=False)
        shown = osc(ident, "port", "show", "zrs-port1")
        assert shown["device_id"] == sid and shown["device_owner"].startswith("compute:")
        macs = lambda: {p.mac_address for p in driver.domains[sid].spec.ports}  # noqa: E731
        _until(lambda: port["mac_address"] in macs(), "the port plugged into the domain")
        osc(ident, "server", "add", "network", "zrs-vm2", "zrs-inet2", json_out=False)
        _until(lambda: len(macs()) == 3, "the network's new port plugged")
        listed = osc(ident, "port", "list", "--server", "zrs-vm2")
        assert len(listed) == 3
        assert "zrs-inet2" in osc(ident, "server", "show", "zrs-vm2")["addresses"]
        osc(ident, "server", "remove", "port", "zrs-vm2", "zrs-port1", json_out=False)
        assert osc(ident, "port", "show", "zrs-port1")["device_id"] == ""
        _until(lambda: port["mac_address"] not in macs(), "the port unplugged")
        assert len(macs()) == 2 and len(driver.taps) == 2
        osc(ident, "server", "delete", "--wait", "zrs-vm2", json_out=False)
    assert not driver.domains and not driver.taps
    osc(ident, "port", "delete", "zrs-port1", json_out=False)
