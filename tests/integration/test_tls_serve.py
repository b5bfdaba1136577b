"""The APIs over https and the services verifying each other (issue 13), as real processes.

A CA and a certificate for 127.0.0.1/localhost are made with openssl under /tmp/ztl-*;
stratus-identity and stratus-image run with ``tls_cert_file``/``tls_key_file``/
``tls_ca_file`` (given as STRATUS_<SECTION>__* variables) and the image service validates
tokens with identity over https:

- a client with the CA gets a token and lists images (image -> identity verified);
- a client without the CA fails on the certificate; a plain http request gets no answer;
  a TLS 1.1 handshake is refused;
- an image service given another CA cannot validate a token (it verifies identity's
  certificate; it never answers 200 with an unverified identity).

Processes are stopped by pid; about 15 s.
"""

from __future__ import annotations

import http.client
import os
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import certifi
import httpx
import pytest

from helpers import IdentityServer, ImageServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@dataclass
class Pki:
    """A CA and one server certificate (127.0.0.1, localhost) signed by it."""

    ca: Path
    cert: Path
    key: Path

    def env(self, section: str) -> dict[str, str]:
        """The settings (``[DEFAULT]`` keys, given for ``section``) serving with it."""
        prefix = f"STRATUS_{section.upper()}__"
        return {f"{prefix}TLS_CERT_FILE": str(self.cert), f"{prefix}TLS_KEY_FILE": str(self.key),
                f"{prefix}TLS_CA_FILE": str(self.ca)}


def make_pki(root: Path, name: str = "ztl") -> Pki:
    """openssl: a CA (``root/ca.crt``) and a server certificate for 127.0.0.1 and localhost."""
    root.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)

    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key")
    run("req", "-x509", "-new", "-key", "ca.key", "-days", "2", "-subj", f"/CN={name} CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt")
    run("req", "-new", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "server.key", "-out", "server.crt", "-days", "2",
        "-subj", "/CN=localhost", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext", "extendedKeyUsage=serverAuth,clientAuth")
    return Pki(root / "ca.crt", root / "server.crt", root / "server.key")


class HttpsIdentity(IdentityServer):
    """stratus-identity serving https with ``extra_env``'s certificate."""

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


class HttpsImage(ImageServer):
    """stratus-image serving https with ``extra_env``'s certificate."""

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture()
def root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    path = Path(tempfile.mkdtemp(prefix="ztl-serve-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_https_apis_verify_each_other(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make_pki(root / "pki")
    other = make_pki(root / "other", name="ztl-other")
    # The helpers' readiness checks (httpx) verify with our CA, as the services do.
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    identity = HttpsIdentity(root / "identity", f"sqlite:///{root}/identity.sqlite",
                             extra_env=pki.env("identity"))
    image = HttpsImage(root / "image", identity, extra_env=pki.env("image"))
    # Its own certificate is good, but it trusts another CA: identity cannot be verified.
    stranger = HttpsImage(root / "stranger", identity, extra_env={
        **pki.env("image"), "STRATUS_IMAGE__TLS_CA_FILE": str(other.ca)})
    started: list[IdentityServer | ImageServer] = []
    try:
        for server in (identity, image, stranger):
            server.prepare()
            server.start()
            started.append(server)
        with httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca))) as client:
            body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"},
                "password": "test-admin-secret"}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
            resp = client.post(f"{identity.url}/v3/auth/tokens", json=body)
            assert resp.status_code == 201, resp.text
            token = resp.headers["X-Subject-Token"]
            listed = client.get(f"{image.url}/v2/images", headers={"X-Auth-Token": token})
            assert listed.status_code == 200, listed.text
            refused = client.get(f"{stranger.url}/v2/images", headers={"X-Auth-Token": token})
            assert refused.status_code in (401, 503), refused.text
            assert "CERTIFICATE_VERIFY_FAILED" in refused.text, refused.text

        # Without the CA (the public CAs only): a certificate error, not an answer.
        with httpx.Client(verify=ssl.create_default_context(cafile=certifi.where())) as bare, \
                pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            bare.get(f"{identity.url}/v3")
        # Plain http to the https port: no HTTP answer.
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            urllib.request.urlopen(f"http://127.0.0.1:{identity.port}/v3", timeout=10)
        # TLS 1.1 (the client allows it at SECLEVEL=0): refused by the server.
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(str(pki.ca))
        old.set_ciphers("DEFAULT@SECLEVEL=0")
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(urllib.error.URLError, match=r"SSL|EOF|protocol|reset"):
            urllib.request.urlopen(f"https://127.0.0.1:{identity.port}/v3", timeout=10,
                                   context=old)
        # TLS 1.2 with the same client settings otherwise: accepted.
        new = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        new.load_verify_locations(str(pki.ca))
        new.maximum_version = ssl.TLSVersion.TLSv1_2
        with urllib.request.urlopen(f"https://127.0.0.1:{identity.port}/v3", timeout=10,
                                    context=new) as answer:
            assert answer.status == 200
    finally:
        for server in reversed(started):
            server.stop()
    assert not any(os.path.exists(f"/proc/{s.proc.pid}") and s.proc.poll() is None
                   for s in started if s.proc is not None)
