"""stratus-dashboard over https (issue 13: TLS on by default), as real processes.

A CA and a certificate for 127.0.0.1/localhost are made with openssl under /tmp/ztd-*
(test_tls_serve.make_pki); stratus-identity serves https with it, and stratus-dashboard
runs with the ``[DEFAULT]`` TLS keys the common role writes (``tls_cert_file``,
``tls_key_file``, ``tls_ca_file``, given as variables):

- the sign-in page over https verified with the CA; signing in (the dashboard verifies
  identity with the CA) sets the session cookie ``Secure`` (the request is https, with
  ``secure_cookies`` left false); plain http to the port gets no answer; TLS 1.1 refused;
- a dashboard trusting another CA cannot sign anyone in: a clear answer, no session, no
  500, the certificate error in its log.

Processes are stopped by pid; about 15 s.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_tls_serve import HttpsIdentity, Pki, make_pki

from dashboard_support import CSRF_INPUT
from helpers import BIN, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


class HttpsDashboard:
    """stratus-dashboard serving https with ``pki``'s certificate, verifying with ``ca``."""

    def __init__(self, root: Path, identity_url: str, pki: Pki, ca: Path) -> None:
        self.root = root
        self.port = free_port()
        root.mkdir(parents=True)
        (root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        env = {"STRATUS_CONFIG_FILE": str(root / "stratus.conf"),
               "STRATUS_DASHBOARD__IDENTITY_URL": f"{identity_url}/v3",
               "STRATUS_DASHBOARD__BIND_HOST": "127.0.0.1",
               "STRATUS_DASHBOARD__BIND_PORT": str(self.port),
               "STRATUS_DEFAULT__TLS_CERT_FILE": str(pki.cert),
               "STRATUS_DEFAULT__TLS_KEY_FILE": str(pki.key),
               "STRATUS_DEFAULT__TLS_CA_FILE": str(ca)}
        self.log_path = root / "dashboard.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop
        base = {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}
        self.proc = subprocess.Popen([str(BIN / "stratus-dashboard")], env={**base, **env},
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def wait_ready(self, context: ssl.SSLContext) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthcheck", timeout=5,
                                            context=context):
                    return
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError("the dashboard did not start: "
                                         + self.log_path.read_text()) from None
                time.sleep(0.3)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


@pytest.fixture()
def root() -> Iterator[Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    path = Path(tempfile.mkdtemp(prefix="ztd-dash-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sign_in(url: str, context: ssl.SSLContext) -> httpx.Response:
    """The admin's sign-in POST (not followed), with the form's CSRF token."""
    with httpx.Client(base_url=url, verify=context, timeout=60) as client:
        page = client.get("/auth/login/")
        assert page.status_code == 200, page.text
        token = CSRF_INPUT.search(page.text)
        assert token, page.text
        return client.post("/auth/login/", follow_redirects=False, data={
            "username": "admin", "password": "test-admin-secret", "domain": "Default",
            "region": "RegionOne", "csrfmiddlewaretoken": token.group(1)})


def test_dashboard_over_https_verifies_identity(root: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make_pki(root / "pki", name="ztd")
    other = make_pki(root / "other", name="ztd-other")
    context = ssl.create_default_context(cafile=str(pki.ca))
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))  # the helpers' readiness checks
    identity = HttpsIdentity(root / "identity", f"sqlite:///{root}/identity.sqlite",
                             extra_env=pki.env("identity"))
    dashes: list[HttpsDashboard] = []
    try:
        identity.prepare()
        identity.start()
        dash = HttpsDashboard(root / "dash", identity.url, pki, pki.ca)
        dashes.append(dash)
        stranger = HttpsDashboard(root / "stranger", identity.url, pki, other.ca)
        dashes.append(stranger)
        for d in dashes:
            d.wait_ready(context)

        resp = sign_in(dash.url, context)
        assert resp.status_code == 303, resp.text
        cookie = next(c for c in resp.headers.get_list("set-cookie")
                      if c.startswith("stratus_session="))
        assert "; secure" in cookie.lower(), cookie  # https: never sent over plain http

        # Plain http to the https port: no HTTP answer
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            urllib.request.urlopen(f"http://127.0.0.1:{dash.port}/auth/login/", timeout=10)
        # TLS 1.1 (the client allows it at SECLEVEL=0): refused
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(str(pki.ca))
        old.set_ciphers("DEFAULT@SECLEVEL=0")
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(urllib.error.URLError, match=r"SSL|EOF|protocol|reset"):
            urllib.request.urlopen(f"{dash.url}/auth/login/", timeout=10, context=old)

        # It trusts another CA: identity's certificate fails, nobody signs in
        refused = sign_in(stranger.url, context)
        assert refused.status_code not in (303, 500), refused.text
        assert not any(c.startswith("stratus_session=")
                       for c in refused.headers.get_list("set-cookie"))
        log = stranger.log_path.read_text()
        assert "CERTIFICATE_VERIFY_FAILED" in log or "certificate verify failed" in log \
            or "CERTIFICATE_VERIFY_FAILED" in refused.text, (refused.text, log[-2000:])
    finally:
        for d in reversed(dashes):
            d.stop()
        identity.stop()
    assert all(d.proc.poll() is not None for d in dashes)
