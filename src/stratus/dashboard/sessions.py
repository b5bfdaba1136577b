"""Server-side sessions: the signed-in user's token never leaves the dashboard.

The browser holds only a random session id (an HttpOnly, SameSite=Lax cookie); the
token, its catalog and the session's CSRF token live here, in the process (hence one
worker). A session ends at logout, when its token expires, or after
``idle_timeout`` seconds without a request. Before sign-in, the login form's CSRF
token is a double-submit cookie (:data:`LOGIN_CSRF_COOKIE`), so anonymous visitors
cost no memory.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

SESSION_COOKIE = "stratus_session"
LOGIN_CSRF_COOKIE = "stratus_login_csrf"
CSRF_FIELD = "csrfmiddlewaretoken"  # Horizon's (and tempest's) name for it
CSRF_HEADER = "x-csrf-token"  # the same token, sent by the page's scripts


@dataclass
class Session:
    """One signed-in user: the token and what the token says."""

    id: str
    token: str
    expires: float  # time.time() when the token expires
    user: dict[str, Any]
    project: dict[str, Any]
    roles: list[str]
    catalog: list[dict[str, Any]]
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    last_seen: float = field(default_factory=time.monotonic)
    flash: list[tuple[str, str]] = field(default_factory=list)  # (level, message)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def check_csrf(self, sent: str | None) -> bool:
        """Whether ``sent`` is this session's CSRF token (constant-time)."""
        return bool(sent) and hmac.compare_digest(self.csrf.encode(), str(sent).encode())


class SessionStore:
    """The sessions of this process, by id (thread-safe)."""

    def __init__(self, idle_timeout: float = 3600.0, max_sessions: int = 10000) -> None:
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, token: str, expires: float, user: dict[str, Any],
               project: dict[str, Any], roles: list[str],
               catalog: list[dict[str, Any]]) -> Session:
        """A new session with a fresh id (never an id the browser brought)."""
        session = Session(secrets.token_urlsafe(32), token, expires, user, project, roles,
                          catalog)
        with self._lock:
            self._expire_locked()
            if len(self._sessions) >= self.max_sessions:  # the least recently used goes
                oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
                self._sessions.pop(oldest.id, None)
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of this id, or None (unknown, idle too long, token expired)."""
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > self.idle_timeout or time.time() >= session.expires:
                self._sessions.pop(session_id, None)
                return None
            session.last_seen = now
            return session

    def drop(self, session_id: str) -> Session | None:
        with self._lock:
            return self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _expire_locked(self) -> None:
        now, wall = time.monotonic(), time.time()
        for sid in [s.id for s in self._sessions.values()
                    if now - s.last_seen > self.idle_timeout or wall >= s.expires]:
            del self._sessions[sid]


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def check_login_csrf(cookie: str | None, sent: str | None) -> bool:
    """The login form's double-submit check: the posted token equals the cookie's."""
    return bool(cookie) and bool(sent) and hmac.compare_digest(
        str(cookie).encode(), str(sent).encode())
