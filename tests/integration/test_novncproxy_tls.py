"""stratus-novncproxy over https and wss (issue 13: TLS on by default), as a real process.

A CA and a certificate for 127.0.0.1/localhost are made with openssl under /tmp/ztd-*
(test_tls_serve.make_pki). The compute API (uvicorn in a thread, with the compute tests'
fake identity validation and downstream APIs) and a small identity stand-in (it hands the
proxy's service user the admin token) both serve https with that certificate;
``stratus-novncproxy`` runs with ``tls_cert_file``/``tls_key_file``/``tls_ca_file`` (the
``[DEFAULT]`` keys the common role writes):

- the noVNC page comes over https, verified with the CA; plain http to the port gets no
  page (the proxy is ssl_only); a TLS 1.1 handshake is refused;
- a wss console with a token reaches the display (a TCP stand-in that sends an RFB
  greeting: the display is not what this module tests, test_novncproxy_console.py boots a
  real guest), once;
- a second proxy that trusts another CA cannot spend a token: it verifies the compute API.

Processes are stopped by pid (their own session); about 10 s.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import httpx
import pytest
import uvicorn
from test_tls_serve import Pki, make_pki

from compute_api import ADMIN, ALICE, ComputeApi, FakeDownstream, fake_validate, make_core
from stratus.compute.app import build_app
from stratus.compute.core import Settings
from stratus.compute.novncproxy import token_and_instance

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

VENV_BIN = Path(sys.executable).parent
GREETING = b"RFB 003.008\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


class Display:
    """A TCP listener on 127.0.0.1 that greets every connection as a VNC server does."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(GREETING)
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    conn.recv(64)

    def close(self) -> None:
        self.sock.close()


class Proxy:
    """stratus-novncproxy as its own process (own session), stopped by its pid."""

    def __init__(self, work: Path, name: str, env: dict[str, str], port: int = 0) -> None:
        self.port = port or free_port()
        self.log_path = work / f"{name}.log"
        conf = work / f"{name}.conf"
        conf.write_text(
            f"[DEFAULT]\nidentity_url = {env.pop('identity_url')}\n"
            f"[novncproxy]\nbind_host = 127.0.0.1\nbind_port = {self.port}\n"
            f"compute_url = {env.pop('compute_url')}\nusername = novncproxy\n"
            "password = secret\n")
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "stratus-novncproxy"), "--config-file", str(conf)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **env})

    def wait_ready(self, context: ssl.SSLContext) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/vnc_lite.html",
                                            timeout=5, context=context):
                    return
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError("the proxy did not start: "
                                         + self.log_path.read_text()) from None
                time.sleep(0.2)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: it and its children
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def tls_env(pki: Pki, ca: Path | None = None) -> dict[str, str]:
    """The [DEFAULT] TLS keys (as the common role writes them), given as variables."""
    return {"STRATUS_DEFAULT__TLS_CERT_FILE": str(pki.cert),
            "STRATUS_DEFAULT__TLS_KEY_FILE": str(pki.key),
            "STRATUS_DEFAULT__TLS_CA_FILE": str(ca or pki.ca)}


@pytest.fixture()
def work() -> Iterator[Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    if not Path("/usr/share/novnc/vnc_lite.html").exists():
        pytest.skip("the novnc package is not installed (scripts/install-test-deps.sh)")
    path = Path(tempfile.mkdtemp(prefix="ztd-vnc-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def wss_console(port: int, url: str, ca: Path) -> bytes:
    """The first bytes the proxy relays for the console URL ``url`` (over wss, verified
    with ``ca``); raises when it refuses."""
    import websocket

    path = unquote(parse_qs(urlparse(url).query)["path"][0])
    ws = websocket.create_connection(f"wss://127.0.0.1:{port}/{path}",
                                     subprotocols=["binary"], timeout=30,
                                     sslopt={"ca_certs": str(ca)})
    try:
        data = ws.recv()
        return data if isinstance(data, bytes) else data.encode()
    finally:
        ws.close()


def test_proxy_serves_https_and_wss_and_verifies_the_compute_api(work: Path) -> None:
    import websocket

    pki = make_pki(work / "pki", name="ztd")
    other = make_pki(work / "other", name="ztd-other")
    context = ssl.create_default_context(cafile=str(pki.ca))
    display = Display()
    proxy_port = free_port()
    core = make_core(f"sqlite:///{work}/compute.sqlite", Settings(
        novncproxy_base_url=f"https://127.0.0.1:{proxy_port}/vnc_lite.html"),
        FakeDownstream())
    api_port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        build_app(core, fake_validate), host="127.0.0.1", port=api_port, log_level="warning",
        ssl_certfile=str(pki.cert), ssl_keyfile=str(pki.key)))
    api_thread = threading.Thread(target=server.run, daemon=True)
    api_thread.start()
    identity = ThreadingHTTPServer(("127.0.0.1", 0), FakeIdentity)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(pki.cert), str(pki.key))
    identity.socket = server_ctx.wrap_socket(identity.socket, server_side=True)
    id_thread = threading.Thread(target=identity.serve_forever, daemon=True)
    id_thread.start()
    urls = {"identity_url": f"https://127.0.0.1:{identity.server_address[1]}/v3",
            "compute_url": f"https://127.0.0.1:{api_port}/v2.1"}
    started: list[Proxy] = []
    client = httpx.Client(base_url=f"https://127.0.0.1:{api_port}", timeout=30,
                          verify=context)
    try:
        proxy = Proxy(work, "proxy", {**urls, **tls_env(pki)}, port=proxy_port)
        started.append(proxy)
        stranger = Proxy(work, "stranger", {**urls, **tls_env(pki, ca=other.ca)})
        started.append(stranger)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.get("/")
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the compute API did not start"
                time.sleep(0.2)
        for p in started:
            p.wait_ready(context)

        # The page over https, verified with the CA
        with urllib.request.urlopen(f"https://127.0.0.1:{proxy.port}/vnc_lite.html",
                                    timeout=10, context=context) as page:
            assert page.status == 200 and b"noVNC" in page.read()
        # Plain http to the port: no page (ssl_only)
        with pytest.raises((urllib.error.URLError, ConnectionError,
                            http.client.HTTPException)):
            urllib.request.urlopen(f"http://127.0.0.1:{proxy.port}/vnc_lite.html", timeout=10)
        # TLS 1.1 (the client allows it at SECLEVEL=0): refused
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(str(pki.ca))
        old.set_ciphers("DEFAULT@SECLEVEL=0")
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(urllib.error.URLError, match=r"SSL|EOF|protocol|reset"):
            urllib.request.urlopen(f"https://127.0.0.1:{proxy.port}/vnc_lite.html",
                                   timeout=10, context=old)

        api = ComputeApi(client, core, core.downstream)  # type: ignore[arg-type]
        api.flavor(id="1")
        api.host("cmp1")
        sid = str(api.boot()["server"]["id"])
        api.report("cmp1", sid, vm_state="active", power_state=1,
                   vnc={"host": "127.0.0.1", "port": display.port})

        def console_url() -> str:
            resp = api.call("POST", f"/v2.1/servers/{sid}/remote-consoles", ALICE,
                            version="2.6", json={"remote_console": {"protocol": "vnc",
                                                                    "type": "novnc"}})
            assert resp.status_code == 200, resp.text
            url = str(resp.json()["remote_console"]["url"])
            token, instance = token_and_instance(
                unquote(parse_qs(urlparse(url).query)["path"][0]))
            assert token is not None and instance == sid
            return url

        url = console_url()
        assert url.startswith(f"https://127.0.0.1:{proxy_port}/vnc_lite.html?"), url
        assert wss_console(proxy.port, url, pki.ca) == GREETING
        with pytest.raises((websocket.WebSocketException, OSError)):
            wss_console(proxy.port, url, pki.ca)  # spent by its first use

        # A proxy that trusts another CA cannot verify the compute API: no console
        with pytest.raises((websocket.WebSocketException, OSError)):
            wss_console(stranger.port, console_url(), pki.ca)
        log = stranger.log_path.read_text()
        assert "CERTIFICATE_VERIFY_FAILED" in log or "certificate verify failed" in log, log
    finally:
        for p in reversed(started):
            p.stop()
        client.close()
        server.should_exit = True
        api_thread.join(timeout=15)
        identity.shutdown()
        identity.server_close()
        display.close()
        core.db.dispose()
    assert all(p.proc.poll() is not None for p in started)
