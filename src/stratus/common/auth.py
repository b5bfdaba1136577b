"""Who is calling: token validation for every service, with a short cache.

A service asks ``TokenValidator.validate(token)`` for an ``AuthContext``.
Identity validates its own tokens in-process; every other service uses
``RemoteTokenValidator``, which asks identity (``GET /v3/auth/tokens`` with the
user's own token as both X-Auth-Token and X-Subject-Token, which Keystone
allows any token holder to do) and caches the answer for a few seconds, never
past the token's expiry.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from stratus.common.clients import ApiClient, ServiceError
from stratus.common.errors import Forbidden, ServiceUnavailable, Unauthorized

AUTH_REQUIRED = "The request you have made requires authentication."


@dataclass(frozen=True)
class AuthContext:
    """The caller as a policy check sees it."""

    user_id: str
    user_name: str = ""
    user_domain_id: str = "default"
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    roles: frozenset[str] = field(default_factory=frozenset)
    audit_ids: tuple[str, ...] = ()
    expires_at: float = 0.0
    token: str = field(default="", repr=False)
    trust_id: str | None = None  # a token scoped to a trust (OS-TRUST)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @classmethod
    def from_token_body(cls, body: dict[str, Any], token: str) -> AuthContext:
        tok = body["token"]
        user = tok["user"]
        project = tok.get("project") or {}
        domain = tok.get("domain") or {}
        expires = datetime.fromisoformat(tok["expires_at"].replace("Z", "+00:00")).timestamp()
        return cls(
            user_id=user["id"],
            user_name=user.get("name", ""),
            user_domain_id=(user.get("domain") or {}).get("id", "default"),
            project_id=project.get("id"),
            project_name=project.get("name"),
            project_domain_id=(project.get("domain") or {}).get("id"),
            domain_id=domain.get("id"),
            system="system" in tok,
            roles=frozenset(r["name"] for r in tok.get("roles", [])),
            trust_id=(tok.get("OS-TRUST:trust") or {}).get("id"),
            audit_ids=tuple(tok.get("audit_ids", [])),
            expires_at=expires,
            token=token,
        )


def require_project_scope(ctx: AuthContext, action: str) -> str:
    """The token's project, for ``action`` that creates a resource owned by a project.

    A system- or domain-scoped token has no project: it is refused with 403, as Nova,
    Neutron, Glance and Cinder refuse it (their policies for project resources are
    project-scoped), so that no resource is ever made without an owner.
    """
    if ctx.project_id:
        return ctx.project_id
    scope = "system" if ctx.system else "domain" if ctx.domain_id else "unscoped"
    raise Forbidden(f"{action} needs a project-scoped token: a {scope}-scoped token cannot "
                    "create the resources of a project.")


class TokenValidator(Protocol):
    def validate(self, token: str) -> AuthContext: ...


class TTLCache:
    """A small thread-safe LRU cache whose entries expire."""

    def __init__(self, ttl: float, max_entries: int = 10000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[float, AuthContext]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> AuthContext | None:
        now = time.time()
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            deadline, value = item
            if deadline <= now:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def put(self, key: str, value: AuthContext) -> None:
        deadline = min(time.time() + self.ttl, value.expires_at)
        with self._lock:
            self._data[key] = (deadline, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)


class RemoteTokenValidator:
    """Validates tokens against the identity API, caching answers briefly."""

    def __init__(
        self,
        identity_url: str,
        cache_seconds: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.identity_url = identity_url.rstrip("/")
        if not self.identity_url.endswith("/v3"):
            self.identity_url += "/v3"
        self.cache = TTLCache(cache_seconds)
        # The caller's token is the credential, so the client carries no auth of its own.
        self.client = ApiClient(self.identity_url, timeout=10.0, service="identity",
                                http=client)

    def validate(self, token: str) -> AuthContext:
        if not token:
            raise Unauthorized(AUTH_REQUIRED)
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        try:
            resp = self.client.request(
                "GET", "/auth/tokens", ok=range(100, 600),
                headers={"X-Auth-Token": token, "X-Subject-Token": token},
            )
        except ServiceError as exc:
            raise ServiceUnavailable(
                f"The identity service at {self.identity_url} cannot be reached: {exc}"
            ) from exc
        if resp.status_code in (401, 403, 404):
            raise Unauthorized(AUTH_REQUIRED)
        if resp.status_code != 200:
            raise ServiceUnavailable(
                f"The identity service answered {resp.status_code} while validating a token."
            )
        ctx = AuthContext.from_token_body(resp.json(), token)
        self.cache.put(token, ctx)
        return ctx
