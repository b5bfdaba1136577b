"""Fernet-style tokens and the key repository they are sealed with.

A token is an authenticated, encrypted payload (``cryptography``'s Fernet:
AES-128-CBC + HMAC-SHA256) holding who the token is for, its scope, methods,
audit ids and timestamps. Nothing is stored per token: validation decrypts
and then checks revocation events and the current state of the user and
project. The key repository holds numbered key files: ``0`` is the staged
key, the highest number is the primary key (used to encrypt), the others are
secondary keys (still accepted to decrypt). Rotation promotes the staged key
to primary, writes a new staged key and drops the oldest secondaries beyond
``max_active_keys``, so tokens issued before a rotation stay valid.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PAYLOAD_VERSION = 1


class KeyRepositoryError(Exception):
    """The key repository is missing, empty or unreadable."""


class TokenDecodeError(Exception):
    """The token is not one of ours, was tampered with, or its key is gone."""


class KeyRepository:
    """Numbered Fernet key files in one directory."""

    def __init__(self, path: str | os.PathLike[str], max_active_keys: int = 3) -> None:
        if max_active_keys < 2:
            raise ValueError("max_active_keys must be at least 2 (staged + primary)")
        self.path = Path(path)
        self.max_active_keys = max_active_keys

    def _indexes(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted(int(p.name) for p in self.path.iterdir() if p.name.isdigit())

    def _write_key(self, index: int) -> None:
        tmp = self.path / f".{index}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / str(index))

    def setup(self) -> bool:
        """Create the repository with a staged and a primary key; True if it did anything."""
        created = False
        if not self.path.is_dir():
            self.path.mkdir(mode=0o700, parents=True)
            created = True
        indexes = self._indexes()
        if 0 not in indexes:
            self._write_key(0)
            created = True
        if len(self._indexes()) < 2:
            self.rotate()
            created = True
        return created

    def rotate(self) -> list[int]:
        """Promote the staged key, stage a new one, prune old secondaries."""
        indexes = self._indexes()
        if 0 not in indexes:
            raise KeyRepositoryError(f"no staged key (0) in {self.path}; run fernet-setup")
        new_primary = (max(indexes) if indexes else 0) + 1
        os.replace(self.path / "0", self.path / str(new_primary))
        self._write_key(0)
        indexes = self._indexes()
        secondaries = [i for i in indexes if i not in (0, new_primary)]
        excess = len(indexes) - self.max_active_keys
        for index in secondaries[: max(excess, 0)]:
            (self.path / str(index)).unlink()
        self._touch()
        return self._indexes()

    def _touch(self) -> None:
        os.utime(self.path)

    def load(self) -> list[bytes]:
        """Keys in the order MultiFernet wants them: primary first, staged last."""
        indexes = self._indexes()
        if len(indexes) < 2 or 0 not in indexes:
            raise KeyRepositoryError(
                f"key repository {self.path} needs a staged and a primary key; "
                "run 'stratus-manage fernet-setup'"
            )
        ordered = [*sorted((i for i in indexes if i != 0), reverse=True), 0]
        return [(self.path / str(i)).read_bytes().strip() for i in ordered]


@dataclass
class TokenPayload:
    user_id: str
    methods: list[str]
    expires_at: float
    issued_at: float
    audit_ids: list[str]
    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    app_cred_id: str | None = None
    trust_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {
            "v": PAYLOAD_VERSION,
            "u": self.user_id,
            "m": self.methods,
            "e": self.expires_at,
            "i": self.issued_at,
            "a": self.audit_ids,
        }
        if self.project_id:
            body["p"] = self.project_id
        if self.domain_id:
            body["d"] = self.domain_id
        if self.system:
            body["s"] = True
        if self.app_cred_id:
            body["ac"] = self.app_cred_id
        if self.trust_id:
            body["t"] = self.trust_id
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TokenPayload:
        try:
            body = json.loads(raw)
            if body.get("v") != PAYLOAD_VERSION:
                raise TokenDecodeError("unknown token payload version")
            return cls(
                user_id=str(body["u"]),
                methods=list(body["m"]),
                expires_at=float(body["e"]),
                issued_at=float(body["i"]),
                audit_ids=list(body["a"]),
                project_id=body.get("p"),
                domain_id=body.get("d"),
                system=bool(body.get("s", False)),
                app_cred_id=body.get("ac"),
                trust_id=body.get("t"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenDecodeError("malformed token payload") from exc


def new_audit_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()


class TokenSealer:
    """Encrypts and decrypts token payloads; reloads keys after a rotation."""

    RELOAD_CHECK_SECONDS = 2.0

    def __init__(self, repository: KeyRepository) -> None:
        self.repository = repository
        self._lock = threading.Lock()
        self._fernet: MultiFernet | None = None
        self._loaded_mtime = -1.0
        self._checked_at = 0.0

    def _current(self) -> MultiFernet:
        now = time.monotonic()
        if self._fernet is not None and now - self._checked_at < self.RELOAD_CHECK_SECONDS:
            return self._fernet
        with self._lock:
            self._checked_at = now
            try:
                mtime = self.repository.path.stat().st_mtime
            except FileNotFoundError:
                raise KeyRepositoryError(
                    f"key repository {self.repository.path} does not exist"
                ) from None
            if self._fernet is None or mtime != self._loaded_mtime:
                keys = self.repository.load()
                self._fernet = MultiFernet([Fernet(k) for k in keys])
                self._loaded_mtime = mtime
            return self._fernet

    def seal(self, payload: TokenPayload) -> str:
        token = self._current().encrypt(payload.to_json())
        return token.decode().rstrip("=")

    def unseal(self, token: str) -> TokenPayload:
        if not token or len(token) > 2048:
            raise TokenDecodeError("token is empty or too long")
        padded = token + "=" * (-len(token) % 4)
        try:
            raw = self._current().decrypt(padded.encode())
        except (InvalidToken, ValueError, TypeError) as exc:
            raise TokenDecodeError("token could not be decrypted") from exc
        return TokenPayload.from_json(raw)
