"""Account lockout and password rules, as Keystone's ``[security_compliance]``.

``lockout_failure_attempts`` wrong passwords in a row lock a user for
``lockout_duration`` seconds; while locked, even the right password gets the
same 401 as a wrong one. The count lives in the user's row (it survives a
restart) and is cleared by a good login, by the lock running out, or by an
admin updating the user with ``enabled: true``. Password rules (minimum length,
a regex with its description, the last N passwords not reused) are checked
wherever a password is set: user create, user update, self-service change.
``password_expires_days`` makes a password expire that many days after it was set
(a user's option ``ignore_password_expiry`` exempts it); an expired password still
changes through ``POST /v3/users/{id}/password``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.errors import BadRequest
from stratus.common.timeutil import utcnow
from stratus.identity import models as m
from stratus.identity.passwords import verify_password


@dataclass(frozen=True)
class SecurityRules:
    """The ``[identity]`` security settings; every rule is off at 0 / empty."""

    lockout_failure_attempts: int = 0
    lockout_duration: int = 1800
    password_min_length: int = 0
    password_regex: str = ""
    password_regex_description: str = ""
    unique_last_password_count: int = 0
    password_expires_days: int = 0

    def __post_init__(self) -> None:
        if self.password_regex:
            try:
                re.compile(self.password_regex)
            except re.error as exc:
                raise ValueError(f"[identity] password_regex is not a valid regex: {exc}") from None

    # ---- lockout -------------------------------------------------------------------------

    def locked(self, user: m.User, now: datetime | None = None) -> bool:
        """Is the user locked out now?"""
        if self.lockout_failure_attempts <= 0 or user.failed_auth_at is None:
            return False
        if user_option(user, "ignore_lockout_failure_attempts"):
            return False
        if (user.failed_auth_count or 0) < self.lockout_failure_attempts:
            return False
        until = _naive(user.failed_auth_at) + timedelta(seconds=self.lockout_duration)
        return _naive(now or utcnow(precise=True)) < until

    def record_failure(self, session: Session, user_id: str) -> None:
        """One more wrong password for ``user_id`` (a count restarted once a lock ran out)."""
        if self.lockout_failure_attempts <= 0:
            return
        user = session.get(m.User, user_id)
        if user is None or user_option(user, "ignore_lockout_failure_attempts"):
            return
        now = utcnow(precise=True)
        expired = (
            user.failed_auth_at is not None
            and (user.failed_auth_count or 0) >= self.lockout_failure_attempts
            and not self.locked(user, now)
        )
        user.failed_auth_count = 1 if expired else (user.failed_auth_count or 0) + 1
        user.failed_auth_at = now

    @staticmethod
    def clear(user: m.User) -> None:
        """Forget the failed attempts (a good login, an admin's unlock)."""
        if user.failed_auth_count or user.failed_auth_at is not None:
            user.failed_auth_count = 0
            user.failed_auth_at = None

    # ---- password expiry ------------------------------------------------------------------

    def expires_at(self, user: m.User) -> datetime | None:
        """When the user's password expires (None: never, or the user has none)."""
        return password_expires_at(user, self.password_expires_days)

    def expired(self, user: m.User, now: datetime | None = None) -> bool:
        """Has the user's password expired (it authenticates no more)?"""
        until = self.expires_at(user)
        return until is not None and _naive(now or utcnow(precise=True)) >= _naive(until)

    # ---- password rules ------------------------------------------------------------------

    def check_password(self, session: Session, user: m.User, password: str) -> None:
        """400 with the rule's description when ``password`` may not be set for ``user``."""
        if len(password) < self.password_min_length:
            raise BadRequest(
                f"Password validation error: the password must be at least "
                f"{self.password_min_length} characters long."
            )
        if self.password_regex and re.fullmatch(self.password_regex, password) is None:
            described = self.password_regex_description or (
                f"it must match the regular expression {self.password_regex!r}"
            )
            raise BadRequest(f"Password validation error: {described}")
        if self.unique_last_password_count > 0 and user.id:
            for old in self.recent_hashes(session, user.id, self.unique_last_password_count):
                if verify_password(password, old):
                    raise BadRequest(
                        "Password validation error: the new password must differ from the "
                        f"last {self.unique_last_password_count} password(s) of this user."
                    )

    @staticmethod
    def recent_hashes(session: Session, user_id: str, count: int) -> list[str]:
        """The user's last ``count`` password hashes, newest first."""
        return list(
            session.scalars(
                sa.select(m.PasswordHistory.password_hash)
                .where(m.PasswordHistory.user_id == user_id)
                .order_by(m.PasswordHistory.id.desc())
                .limit(count)
            )
        )

    def remember(self, session: Session, user: m.User) -> None:
        """Keep the user's new hash in its history, trimmed to what the rule needs."""
        if self.unique_last_password_count <= 0 or not user.password_hash:
            return
        with session.no_autoflush:  # a new user is not in the session yet
            older = list(
                session.scalars(
                    sa.select(m.PasswordHistory.id)
                    .where(m.PasswordHistory.user_id == user.id)
                    .order_by(m.PasswordHistory.id.desc())
                )
            )
        stale = older[self.unique_last_password_count - 1:]
        if stale:
            session.execute(sa.delete(m.PasswordHistory).where(m.PasswordHistory.id.in_(stale)))
        session.add(
            m.PasswordHistory(
                user=user,
                user_id=user.id,
                password_hash=user.password_hash,
                created_at=utcnow(precise=True),
            )
        )


# Keystone's user options that Stratus honours (``options`` of a user; a null value unsets).
USER_OPTIONS = ("ignore_lockout_failure_attempts", "ignore_password_expiry")


def user_option(user: m.User, name: str) -> bool:
    """A boolean user option (kept in the user's ``extra`` under ``options``)."""
    options = (getattr(user, "extra", None) or {}).get("options") or {}
    return bool(options.get(name, False))


def password_expires_at(user: m.User, days: int) -> datetime | None:
    """``password_changed_at`` + ``days``; None when expiry is off (0), the user has no
    password or its ``ignore_password_expiry`` option is set."""
    if days <= 0 or not user.password_hash or user.password_changed_at is None:
        return None
    if user_option(user, "ignore_password_expiry"):
        return None
    return _naive(user.password_changed_at) + timedelta(days=days)


def _naive(when: datetime) -> datetime:
    """Compare datetimes whatever the engine gave back (SQLite drops the zone)."""
    return when.replace(tzinfo=None)
