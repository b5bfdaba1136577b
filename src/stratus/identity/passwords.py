"""Password hashing: argon2id (default) or bcrypt; verification accepts both."""

from __future__ import annotations

import functools

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ALGORITHMS = ("argon2id", "bcrypt")
MAX_PASSWORD_BYTES = 4096

_argon2 = PasswordHasher()  # argon2id, RFC 9106 low-memory profile defaults


def hash_password(password: str, algorithm: str = "argon2id") -> str:
    if algorithm == "argon2id":
        return _argon2.hash(password)
    if algorithm == "bcrypt":
        # bcrypt only reads 72 bytes; pre-hashing would change the format, so refuse silently
        # truncating by hashing the first 72 bytes exactly as bcrypt does.
        return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt()).decode()
    raise ValueError(f"unknown password hash algorithm {algorithm!r}; use one of {ALGORITHMS}")


def verify_password(password: str, hashed: str | None) -> bool:
    if not hashed:
        return False
    if hashed.startswith("$argon2"):
        try:
            return _argon2.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False
    if hashed.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            return bcrypt.checkpw(password.encode()[:72], hashed.encode())
        except ValueError:
            return False
    return False


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password, checked when the user does not exist so that an
    unknown user name costs the same time as a wrong password. Made on first use, not at
    import: an argon2id hash costs about 0.2 s of CPU, which every stratus-manage process
    (a re-run of site.yml starts one per service) paid without checking any password."""
    return _argon2.hash("stratus-no-such-user")
