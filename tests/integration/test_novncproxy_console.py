"""VNC consoles end to end on this host: a real libvirt domain (TCG, built by the agent's
driver with a VNC display on 127.0.0.1), the compute API over HTTP (in a thread, with
fake image/network APIs and fake tokens), and ``stratus-novncproxy`` as its own process
(the console script, stopped by its pid) checking tokens with that API as its service
user (a fake identity in a thread hands it the admin token).

A websocket through the proxy gets the guest's RFB handshake; the token is then
refused (used), as are an expired token and a token for another server. Host objects
carry the prefix ``zcn``: the domain ``zcn-<server id>``, files under ``/tmp/zcn-*``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import httpx
import pytest
import uvicorn

from compute_api import ADMIN, ALICE, ComputeApi, FakeDownstream, fake_validate, make_core
from helpers import SystemLibvirt
from stratus.agent.compute.virt.base import InstanceSpec
from stratus.agent.compute.virt.libvirt import LibvirtDriver
from stratus.agent.ip_lib import IpLib
from stratus.agent.runner import Runner
from stratus.compute import models as m
from stratus.compute.app import build_app
from stratus.compute.consoles import token_hash
from stratus.compute.core import Settings
from stratus.compute.novncproxy import token_and_instance

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent
URI = "qemu:///system"
PREFIX = "zcn-"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True)


def our_domains() -> list[str]:
    out = virsh("list", "--all", "--name").stdout
    return [n.strip() for n in out.splitlines() if n.strip().startswith(PREFIX)]


class FakeIdentity(BaseHTTPRequestHandler):
    """POST /v3/auth/tokens -> 201 with the compute fakes' admin token."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("X-Subject-Token", ADMIN)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def host() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root (libvirt)")
    for tool in ("virsh", "qemu-img", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not Path("/usr/share/novnc/vnc_lite.html").exists():
        pytest.skip("the novnc package is not installed (scripts/install-test-deps.sh)")
    libvirt = SystemLibvirt()
    libvirt.ensure()
    work = Path(tempfile.mkdtemp(prefix=PREFIX))
    work.chmod(0o755)
    try:
        yield work
    finally:
        for name in our_domains():
            virsh("destroy", name)
            virsh("undefine", "--managed-save", "--nvram", name)
        shutil.rmtree(work, ignore_errors=True)
        libvirt.stop()


@pytest.fixture(scope="module")
def stack(host: Path) -> Iterator[dict[str, Any]]:
    """The compute API (thread), a fake identity (thread) and the proxy (process)."""
    core = make_core(f"sqlite:///{host}/compute.sqlite",
                     Settings(novncproxy_base_url="http://127.0.0.1:1/vnc_lite.html"),
                     FakeDownstream())
    api_port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(core, fake_validate), host="127.0.0.1",
                                           port=api_port, log_level="warning"))
    api_thread = threading.Thread(target=server.run, daemon=True)
    api_thread.start()
    identity = ThreadingHTTPServer(("127.0.0.1", 0), FakeIdentity)
    id_thread = threading.Thread(target=identity.serve_forever, daemon=True)
    id_thread.start()
    proxy_port = free_port()
    conf = host / "stratus.conf"
    conf.write_text(
        f"[DEFAULT]\nidentity_url = http://127.0.0.1:{identity.server_address[1]}/v3\n"
        f"[novncproxy]\nbind_host = 127.0.0.1\nbind_port = {proxy_port}\n"
        f"compute_url = http://127.0.0.1:{api_port}/v2.1\nusername = novncproxy\n"
        "password = secret\n")
    log = open(host / "novncproxy.log", "wb")  # noqa: SIM115 (closed below)
    proxy = subprocess.Popen([str(VENV_BIN / "stratus-novncproxy"), "--config-file", str(conf)],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.get("/")
                httpx.get(f"http://127.0.0.1:{proxy_port}/vnc_lite.html", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proxy.poll() is not None:
                    raise AssertionError("proxy or API did not start: "
                                         + (host / "novncproxy.log").read_text()) from None
                time.sleep(0.2)
        api = ComputeApi(client, core, core.downstream)  # type: ignore[arg-type]
        api.flavor(id="1")
        api.host("cmp1")
        yield {"api": api, "proxy_port": proxy_port, "work": host}
    finally:
        os.killpg(proxy.pid, signal.SIGTERM)  # its own session: it and its children
        try:
            proxy.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proxy.pid, signal.SIGKILL)
            proxy.wait()
        log.close()
        client.close()
        server.should_exit = True
        api_thread.join(timeout=15)
        identity.shutdown()
        identity.server_close()
        core.db.dispose()


def guest(stack: dict[str, Any]) -> str:
    """A server in the API whose domain really runs here with a VNC display; the agent
    driver's own report of the display goes to the API."""
    api: ComputeApi = stack["api"]
    sid = str(api.boot()["server"]["id"])
    work: Path = stack["work"]
    driver = LibvirtDriver(Runner(timeout=120), IpLib(Runner()), str(work / "instances"),
                           uri=URI, domain_prefix=PREFIX, virt_type="qemu",
                           vnc_listen="127.0.0.1")
    d = driver.instance_path(sid)
    d.mkdir(parents=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(d / "disk"), "64M"],
                   check=True)
    spec = InstanceSpec(server_id=sid, name="zcn", vcpus=1, memory_mb=64, disk_gb=1,
                        image_path=str(d / "disk"), image_format="qcow2")
    driver.define(spec)
    driver.power_on(sid)
    vnc = driver.vnc_address(sid)
    assert vnc is not None and vnc["host"] == "127.0.0.1" and vnc["port"] >= 5900
    api.report("cmp1", sid, vm_state="active", power_state=1, vnc=vnc)
    return sid


def token_for(api: ComputeApi, sid: str) -> str:
    resp = api.call("POST", f"/v2.1/servers/{sid}/remote-consoles", ALICE, version="2.6",
                    json={"remote_console": {"protocol": "vnc", "type": "novnc"}})
    assert resp.status_code == 200, resp.text
    path = unquote(parse_qs(urlparse(resp.json()["remote_console"]["url"]).query)["path"][0])
    token, instance = token_and_instance(path)
    assert token is not None and instance == sid
    return token


def open_console(port: int, token: str, sid: str) -> bytes:
    """The first bytes the proxy relays from the display; raises when it refuses."""
    import websocket

    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/websockify?token={token}&instance={sid}",
        subprotocols=["binary"], timeout=30)
    try:
        data = ws.recv()
        return data if isinstance(data, bytes) else data.encode()
    finally:
        ws.close()


def refused(port: int, token: str, sid: str) -> bool:
    import websocket

    try:
        open_console(port, token, sid)
    except (websocket.WebSocketException, OSError):
        return True
    return False


def test_console_through_the_proxy_once_and_only_for_its_server(
        stack: dict[str, Any]) -> None:
    api: ComputeApi = stack["api"]
    port = stack["proxy_port"]
    a, b = guest(stack), guest(stack)
    page = httpx.get(f"http://127.0.0.1:{port}/vnc_lite.html", timeout=10)
    assert page.status_code == 200 and "noVNC" in page.text

    token = token_for(api, a)
    assert refused(port, token, b)  # a's token for b's console
    assert open_console(port, token, a).startswith(b"RFB 003.008")
    assert refused(port, token, a)  # spent by its first use

    assert open_console(port, token_for(api, b), b).startswith(b"RFB 003.")

    late = token_for(api, a)

    def expire(s: Any) -> None:
        row = s.get(m.ConsoleToken, token_hash(late))
        row.expires_at = row.expires_at - timedelta(hours=1)

    api.core.db.transaction(expire)
    assert refused(port, late, a)
    assert refused(port, "no-such-token", a)
    log = (stack["work"] / "novncproxy.log").read_text()
    for why in (f"not for instance {b}", "used already", "expired", "could not be found"):
        assert why in log, log
