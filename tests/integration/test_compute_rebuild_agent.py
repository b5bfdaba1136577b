"""Rebuild end to end with the fake driver: python-openstackclient rebuilds a server on the
real stratus-compute (with identity, image and network), the compute agent's loop puts a
fresh root disk from the new image under the same ports, and an agent killed in the
middle of a rebuild is replaced by a new one that finishes it (no guest boots here; the
e2e check is tests/e2e/test_rebuild_aio.py)."""

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
HOST = "zmv-cmp1"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("zmv-rebuild")
    with compute_stack(root) as st:
        yield {"identity": st.identity, "image": st.image, "network": st.network,
               "compute": st.compute, "root": root}


def image(cloud: dict[str, Any], headers: dict[str, str], name: str, size: str) -> str:
    disk = Path(cloud["root"]) / f"{name}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), size], check=True)
    made = httpx.post(f"{cloud['image'].url}/v2/images", headers=headers, json={
        "name": name, "disk_format": "qcow2", "container_format": "bare",
        "visibility": "public"}).json()
    up = httpx.put(f"{cloud['image'].url}/v2/images/{made['id']}/file",
                   content=disk.read_bytes(),
                   headers={**headers, "Content-Type": "application/octet-stream"})
    assert up.status_code == 204, up.text
    return str(made["id"])


class Loop:
    """One compute agent process: its loop in a thread, stopped by ``stop``."""

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


def test_rebuild_onto_a_new_image_and_after_a_killed_agent(cloud: dict[str, Any]) -> None:
    ident: IdentityServer = cloud["identity"]
    token = ident.token()
    headers = {"X-Auth-Token": token}
    first = image(cloud, headers, "zmv-tiny", "16M")
    second = image(cloud, headers, "zmv-tiny2", "32M")
    net = osc(ident, "network", "create", "zmv-net")
    osc(ident, "subnet", "create", "--network", "zmv-net", "--subnet-range",
        "192.168.79.0/24", "zmv-sub")
    osc(ident, "flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "--id", "1",
        "m1.tiny")
    driver = FakeDriver(prefix="zmv-")
    with Loop(cloud, driver, token):
        srv = osc(ident, "server", "create", "--image", first, "--flavor", "m1.tiny",
                  "--network", net["id"], "--wait", "zmv-vm1")
        sid = srv["id"]
        taps = dict(driver.taps)
        addresses = srv["addresses"]
        osc(ident, "--os-compute-api-version", "2.57", "server", "rebuild", "--image", second,
            "--name", "zmv-vm1", "--property", "role=web", "--wait", "zmv-vm1",
            json_out=False)
        shown = osc(ident, "server", "show", "zmv-vm1")
        assert shown["status"] == "ACTIVE" and shown["addresses"] == addresses
        assert shown["properties"] == {"role": "web"}
        assert second in str(shown["image"])
        dom = driver.domains[sid]
        assert dom.state == RUNNING and driver.taps == taps
        assert driver.disks[sid] == dom.spec.image_path
        assert Path(dom.spec.image_path).read_bytes() == (
            Path(cloud["root"]) / "zmv-tiny2.qcow2").read_bytes()
    # The agent is gone; a rebuild is asked for, and a new agent process dies half-way.
    resp = httpx.post(f"{cloud['compute'].url}/v2.1/servers/{sid}/action",
                      headers={**headers, "OpenStack-API-Version": "compute 2.79"},
                      json={"rebuild": {"imageRef": first}})
    assert resp.status_code == 202, resp.text
    assert resp.json()["server"]["status"] == "REBUILD"
    dying = Loop(cloud, driver, token)
    doc = next(a for a in dying.agent.compute.assignments().servers if a.id == sid)
    assert isinstance(doc, Assignment) and doc.rebuild == 2
    driver.fail["power_on"] = KeyboardInterrupt()  # the process "dies" here
    with contextlib.suppress(KeyboardInterrupt):
        dying.agent.converge(doc)
    del driver.fail["power_on"]
    dying.agent.pool.shutdown(wait=True)
    assert osc(ident, "server", "show", "zmv-vm1")["status"] == "REBUILD"
    with Loop(cloud, driver, token):
        wait_status(ident, "zmv-vm1", "ACTIVE")
        assert driver.domains[sid].state == RUNNING
        assert Path(driver.domains[sid].spec.image_path).read_bytes() == (
            Path(cloud["root"]) / "zmv-tiny.qcow2").read_bytes()
        osc(ident, "server", "delete", "--wait", "zmv-vm1", json_out=False)
    assert not driver.domains and not driver.taps
