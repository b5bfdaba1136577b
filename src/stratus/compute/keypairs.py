"""Key pairs: a user's SSH public keys or X.509 certificates (imported or generated here),
with their quota."""

from __future__ import annotations

import base64
import datetime
import hashlib
from typing import TYPE_CHECKING

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.orm import Session

from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.common.timeutil import utcnow
from stratus.compute import models as m
from stratus.compute.quotas import OverLimit

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore


def fingerprint(public_key: str) -> str:
    """The MD5 fingerprint Nova shows of an OpenSSH public key; 400 if it is not one."""
    parts = public_key.split()
    if len(parts) < 2:
        raise BadRequest("Keypair data is invalid: an OpenSSH public key ('type base64 "
                         "[comment]') is expected.")
    try:
        blob = base64.b64decode(parts[1], validate=True)
        serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except Exception:
        raise BadRequest("Keypair data is invalid: failed to load the OpenSSH public key "
                         "(types: ssh-rsa, ssh-ed25519, ecdsa-sha2-*).") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


# Microsoft's user principal name (an otherName of the subject alternative names): WinRM
# maps a client certificate to a user by it.
UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
X509_DAYS = 3650


def x509_fingerprint(certificate: str) -> str:
    """The fingerprint Nova shows of an x509 key pair: the SHA-1 of the certificate's DER
    form, as colon-separated lowercase hex pairs; 400 if it is not a PEM certificate."""
    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
    except (ValueError, TypeError, UnicodeError):
        raise BadRequest("Keypair data is invalid: failed to load the X.509 certificate; "
                         "type 'x509' takes one PEM certificate ('-----BEGIN "
                         "CERTIFICATE-----' ... '-----END CERTIFICATE-----') as "
                         "public_key.") from None
    digest = cert.fingerprint(hashes.SHA1()).hex()  # SHA-1: what Nova shows
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def key_fingerprint(kind: str, public_key: str) -> str:
    """The fingerprint of an ``ssh`` or ``x509`` key pair's public part."""
    return x509_fingerprint(public_key) if kind == "x509" else fingerprint(public_key)


def generate_x509(user_id: str) -> tuple[str, str]:
    """A new RSA key and a self-signed client certificate for it, as Nova makes for WinRM
    (subject CN=<user>, UPN <user>@localhost, client authentication, ten years):
    (private key PEM, certificate PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    upn = f"{user_id}@localhost".encode()
    if len(upn) > 127:
        raise BadRequest("The user ID is too long for a certificate's principal name.")
    der_utf8 = bytes([0x0C, len(upn)]) + upn  # the UPN as a DER UTF8String
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=X509_DAYS))
            .add_extension(x509.SubjectAlternativeName([x509.OtherName(UPN_OID, der_utf8)]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return private, cert.public_bytes(serialization.Encoding.PEM).decode()


def generate(kind: str, name: str) -> tuple[str, str]:
    """A new key pair: (private key PEM, OpenSSH public key)."""
    key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.OpenSSH
                                if kind == "ed25519" else serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} Generated-by-Stratus {name}"


class Keypairs:
    """The os-keypairs resource over the compute database."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    def of_user(self, user_id: str) -> list[m.KeyPair]:
        with self.core.db.session() as s:
            return list(s.scalars(sa.select(m.KeyPair).where(m.KeyPair.user_id == user_id)
                                  .order_by(m.KeyPair.name)))

    @staticmethod
    def _find(s: Session, user_id: str, name: str) -> m.KeyPair:
        k = s.scalars(sa.select(m.KeyPair).where(
            m.KeyPair.user_id == user_id, m.KeyPair.name == name)).first()
        if k is None:
            raise NotFound(f"Keypair {name} not found for user {user_id}")
        return k

    def show(self, user_id: str, name: str) -> m.KeyPair:
        with self.core.db.session() as s:
            return self._find(s, user_id, name)

    def create(self, project_id: str, user_id: str, name: str, kind: str,
               public_key: str) -> m.KeyPair:
        """Store the user's public key (``kind`` ssh) or certificate (x509), counted against
        the project's key_pairs quota."""
        fp = key_fingerprint(kind, public_key)
        row = m.KeyPair(user_id=user_id, name=name, type=kind, public_key=public_key,
                        fingerprint=fp, created_at=utcnow())
        core = self.core

        def work(s: Session) -> m.KeyPair:
            if s.scalars(sa.select(m.KeyPair).where(m.KeyPair.user_id == user_id,
                                                    m.KeyPair.name == name)).first():
                raise Conflict(f"Key pair '{name}' already exists.")
            limit = core.quota_limits(s, project_id)["key_pairs"]
            count = s.scalar(sa.select(sa.func.count()).select_from(m.KeyPair).where(
                m.KeyPair.user_id == user_id)) or 0
            if 0 <= limit <= count:
                raise OverLimit(f"Quota exceeded for key_pairs: {count} of {limit} used.")
            s.add(row)
            s.flush()
            return row

        return core.transaction(work)

    def delete(self, user_id: str, name: str) -> None:
        def work(s: Session) -> None:
            s.delete(self._find(s, user_id, name))

        self.core.transaction(work)
