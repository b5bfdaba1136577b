"""Fernet key repository and token sealing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stratus.identity.tokens import (
    KeyRepository,
    KeyRepositoryError,
    TokenDecodeError,
    TokenPayload,
    TokenSealer,
)

pytestmark = pytest.mark.unit


def payload(**kw: object) -> TokenPayload:
    base: dict = {"user_id": "u1", "methods": ["password"], "expires_at": time.time() + 60,
                  "issued_at": time.time(), "audit_ids": ["a1"], "project_id": "p1"}
    base.update(kw)
    return TokenPayload(**base)


def test_setup_creates_staged_and_primary_with_private_modes(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "keys")
    assert repo.setup() is True
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["0", "1"]
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "keys" / "1").stat().st_mode & 0o777 == 0o600
    assert repo.setup() is False


def test_round_trip_and_tamper(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "k")
    repo.setup()
    sealer = TokenSealer(repo)
    token = sealer.seal(payload())
    got = sealer.unseal(token)
    assert (got.user_id, got.project_id, got.audit_ids) == ("u1", "p1", ["a1"])
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    with pytest.raises(TokenDecodeError):
        sealer.unseal(flipped)
    for junk in ("", "garbage", "x" * 5000):
        with pytest.raises(TokenDecodeError):
            sealer.unseal(junk)


def test_rotation_keeps_old_tokens_until_their_key_is_pruned(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "k", max_active_keys=3)
    repo.setup()
    sealer = TokenSealer(repo)
    sealer.RELOAD_CHECK_SECONDS = 0
    old = sealer.seal(payload())
    assert repo.rotate() == [0, 1, 2]
    assert sealer.unseal(old).user_id == "u1"  # key 1 is now a secondary
    new = sealer.seal(payload(user_id="u2"))
    assert repo.rotate() == [0, 2, 3]  # key 1 pruned: three keys kept
    with pytest.raises(TokenDecodeError):
        sealer.unseal(old)
    assert sealer.unseal(new).user_id == "u2"


def test_staged_key_decrypts_before_it_is_primary(tmp_path: Path) -> None:
    """Another node that already rotated encrypts with our staged key: we must accept it."""
    repo = KeyRepository(tmp_path / "k")
    repo.setup()
    staged = (tmp_path / "k" / "0").read_bytes()
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    (other / "0").write_bytes(b"")
    from cryptography.fernet import Fernet

    (other / "0").write_bytes(Fernet.generate_key())
    (other / "5").write_bytes(staged)
    token = TokenSealer(KeyRepository(other)).seal(payload())
    assert TokenSealer(repo).unseal(token).user_id == "u1"


def test_missing_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyRepositoryError, match="fernet-setup"):
        KeyRepository(tmp_path).load()
    with pytest.raises(ValueError):
        KeyRepository(tmp_path, max_active_keys=1)


def test_system_and_trust_scope_survive_sealing(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "k")
    repo.setup()
    sealer = TokenSealer(repo)
    system = sealer.unseal(sealer.seal(payload(project_id=None, system=True)))
    assert system.system and system.project_id is None and system.trust_id is None
    trust = sealer.unseal(sealer.seal(payload(trust_id="t1")))
    assert (trust.trust_id, trust.project_id, trust.system) == ("t1", "p1", False)
