"""x509 key pairs (``type: x509``, microversion 2.2+): a PEM certificate imported with Nova's
fingerprint (SHA-1 of its DER form), one made here when no public key is given below 2.92
(Nova's WinRM client certificate), bad certificates refused with a 400 that says what is
allowed; every answer checked against Tempest's keypair schemas."""

from __future__ import annotations

import datetime
import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tempest.lib.api_schema.response.compute.v2_2 import keypairs as v22
from tempest.lib.common.jsonschema_validator import FORMAT_CHECKER, JSONSCHEMA_VALIDATOR

from compute_api import ALICE, ComputeApi, in_process

pytestmark = pytest.mark.unit
K = "/v2.1/os-keypairs"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        yield client


def valid(body: Any, schema: dict[str, Any]) -> None:
    jsonschema.validate(body, schema["response_body"], cls=JSONSCHEMA_VALIDATOR,
                        format_checker=FORMAT_CHECKER)


def certificate(cn: str = "s8p-test") -> str:
    """A self-signed EC certificate made by the test (not by the code under test)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def sha1_colons(pem: str) -> str:
    digest = hashlib.sha1(ssl.PEM_cert_to_DER_cert(pem), usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 40, 2))


def create(api: ComputeApi, version: str, **attrs: Any) -> Any:
    return api.call("POST", K, ALICE, version=version, json={"keypair": attrs})


def test_import_a_certificate_with_novas_fingerprint(api: ComputeApi) -> None:
    pem = certificate()
    resp = create(api, "2.2", name="s8p-cert", type="x509", public_key=pem)
    assert resp.status_code == 201, resp.text
    valid(resp.json(), v22.create_keypair)
    made = resp.json()["keypair"]
    assert made["type"] == "x509" and "private_key" not in made
    assert made["fingerprint"] == sha1_colons(pem) and len(made["fingerprint"]) == 59
    assert made["public_key"] == pem.strip()
    shown = api.ok("GET", f"{K}/s8p-cert", ALICE, version="2.2")
    valid(shown, v22.get_keypair)
    assert shown["keypair"]["type"] == "x509"
    assert shown["keypair"]["fingerprint"] == made["fingerprint"]
    listed = api.ok("GET", K, ALICE, version="2.2")
    valid(listed, v22.list_keypairs)
    assert [k["keypair"]["type"] for k in listed["keypairs"]] == ["x509"]
    # the same user may not import it twice under one name
    assert create(api, "2.2", name="s8p-cert", type="x509", public_key=pem).status_code == 409


def test_a_certificate_made_here_below_2_92(api: ComputeApi) -> None:
    resp = create(api, "2.91", name="s8p-made", type="x509")
    assert resp.status_code == 201, resp.text
    valid(resp.json(), v22.create_keypair)
    made = resp.json()["keypair"]
    cert = x509.load_pem_x509_certificate(made["public_key"].encode())
    key = serialization.load_pem_private_key(made["private_key"].encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "u-alice"
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    upn = alt.get_values_for_type(x509.OtherName)[0]
    assert upn.type_id.dotted_string == "1.3.6.1.4.1.311.20.2.3"
    assert upn.value == b"\x0c\x11u-alice@localhost"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=3650)
    assert made["fingerprint"] == sha1_colons(made["public_key"])
    shown = api.ok("GET", f"{K}/s8p-made", ALICE, version="2.91")["keypair"]
    assert "private_key" not in shown and shown["public_key"] == made["public_key"]


def test_from_2_92_a_certificate_must_be_given(api: ComputeApi) -> None:
    resp = create(api, "2.92", name="s8p-none", type="x509")
    assert resp.status_code == 400 and "public_key" in resp.text
    resp = create(api, "2.92", name="s8p-given", type="x509", public_key=certificate())
    assert resp.status_code == 201, resp.text
    assert api.ok("GET", K, ALICE, version="2.92")["keypairs"][0]["keypair"]["name"] == \
        "s8p-given"


@pytest.mark.parametrize("public_key", [
    "not a certificate",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG8Ybx3X3f1b0p6+t9Ctq3bY2k5v0W9nO7xVQbZ3o3bM s8p",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIBBzAKBggqhkjOPQQDAjATMREwDwYD\n"
    "-----END CERTIFICATE-----\n",
    "-----BEGIN CERTIFICATE-----\n"])
def test_a_bad_certificate_is_400_saying_what_is_allowed(api: ComputeApi,
                                                         public_key: str) -> None:
    resp = create(api, "2.2", name="s8p-bad", type="x509", public_key=public_key)
    assert resp.status_code == 400, resp.text
    message = resp.json()["badRequest"]["message"]
    assert "X.509 certificate" in message and "BEGIN CERTIFICATE" in message
    assert api.ok("GET", K, ALICE, version="2.2")["keypairs"] == []


def test_a_certificate_as_an_ssh_key_and_x509_below_2_2_are_400(api: ComputeApi) -> None:
    resp = create(api, "2.2", name="s8p-ssh", public_key=certificate())
    assert resp.status_code == 400 and "OpenSSH" in resp.text
    resp = create(api, "2.1", name="s8p-old", type="x509", public_key=certificate())
    assert resp.status_code == 400 and "2.2" in resp.json()["badRequest"]["message"]
    resp = create(api, "2.2", name="s8p-rsa", type="rsa")
    assert resp.status_code == 400 and "'x509'" in resp.text
    assert api.ok("GET", K, ALICE, version="2.2")["keypairs"] == []
