"""Clients between services and from agents: a service user's token and the one JSON
HTTP client of Stratus (:class:`ApiClient`).

Services call each other's APIs (never each other's databases), and agents call
theirs (the network agent's state, registration and port reports, the compute
agent's assignments), either on behalf of the caller (``StaticToken`` with the
caller's token) or as their own service user (``PasswordAuth``). Every failure
becomes a :class:`ServiceError` that says whether retrying later can help. Both
agents wait for changes through :meth:`ApiClient.long_poll`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

import httpx

MAX_LONG_POLL = 30.0  # seconds: the longest wait of a long-poll (the APIs cut longer ones)
# An API that is stopping (a restart) marks its answers with this header; a long-poll
# answered so was cut short by the stop, not by a change (stratus.common.longpoll).
DRAINING_HEADER = "X-Stratus-Draining"
# The pauses between two long-polls while an API restarts (refused, or draining): short
# at first, since a restart takes well under a second, then up to REPOLL_MAX apart.
REPOLL_FIRST = 0.05
REPOLL_MAX = 1.0
# Seconds a call keeps trying a service that refuses connections (its process is being
# restarted: the new one listens within about a second) before it says "unreachable".
HANDOVER = 3.0
_SAFE_METHODS = ("GET", "HEAD")  # sent again after the server closed the connection unanswered


class ServiceError(Exception):
    """A call to another service failed. ``temporary``: the same call may work later
    (unreachable, 5xx, 429); ``status``: the HTTP status, 0 when there was no answer."""

    def __init__(self, message: str, status: int = 0, temporary: bool = False,
                 body: Any = None):
        super().__init__(message)
        self.status = status
        self.temporary = temporary
        self.body = body


class Auth(Protocol):
    def token(self, renew: bool = False) -> str: ...


class StaticToken:
    """A token we were given (the caller's): it cannot be renewed."""

    def __init__(self, token: str):
        self._token = token

    def token(self, renew: bool = False) -> str:
        return self._token


class PasswordAuth:
    """Gets (and renews) a project-scoped token from identity with a service user.
    Thread-safe; the token is renewed after ``lifetime`` seconds or on request."""

    def __init__(self, identity_url: str, username: str, password: str, project: str,
                 domain: str = "Default", timeout: float = 10.0, lifetime: float = 600.0):
        self.url = identity_url.rstrip("/")
        if not self.url.endswith("/v3"):
            self.url += "/v3"
        self.username, self.password, self.project = username, password, project
        self.domain, self.timeout, self.lifetime = domain, timeout, lifetime
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def token(self, renew: bool = False) -> str:
        with self._lock:
            if self._token and not renew and time.monotonic() < self._expires:
                return self._token
            body = {"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": self.username, "domain": {"name": self.domain},
                    "password": self.password}}},
                "scope": {"project": {"name": self.project, "domain": {"name": self.domain}}}}}
            try:
                resp = httpx.post(f"{self.url}/auth/tokens", json=body, timeout=self.timeout)
            except httpx.HTTPError as exc:
                raise ServiceError(f"identity unreachable at {self.url}: {exc}",
                                   temporary=True) from None
            if resp.status_code != 201:
                raise ServiceError(
                    f"identity refused the credentials of {self.username!r} "
                    f"({resp.status_code})", status=resp.status_code,
                    temporary=resp.status_code >= 500)
            self._token = resp.headers["X-Subject-Token"]
            self._expires = time.monotonic() + self.lifetime
            return self._token


class ApiClient:
    """JSON over HTTP to one service, authenticated with ``auth`` (a 401 renews the
    token once). Non-2xx answers raise :class:`ServiceError`."""

    def __init__(self, base_url: str, auth: Auth | None = None, timeout: float = 30.0,
                 service: str = "service", http: httpx.Client | None = None,
                 handover: float = HANDOVER):
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.service = service
        self.handover = handover
        self._http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json: Any = None,
                params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                content: Any = None, ok: Iterable[int] = (), stream: bool = False,
                timeout: float | None = None, handover: float | None = None
                ) -> httpx.Response:
        """One call; ``ok``: statuses answered as they are instead of raised (a 401 still
        renews the token once first); ``timeout``: seconds for this call only (a
        long-poll), instead of the client's; ``handover``: seconds to keep trying a
        service that refuses connections, instead of the client's."""
        url = self.url(path)
        accepted = set(ok)
        resp: httpx.Response | None = None
        for attempt in range(2):
            hdrs = dict(headers or {})
            if self.auth is not None:
                hdrs["X-Auth-Token"] = self.auth.token(renew=attempt > 0)
            try:
                req = self._http.build_request(
                    method, url, json=json, params=params, headers=hdrs, content=content,
                    timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout)
                resp = self._send(req, stream,
                                  self.handover if handover is None else handover)
            except httpx.HTTPError as exc:
                raise ServiceError(f"{self.service} unreachable at {url}: {exc}",
                                   temporary=True) from None
            if resp.status_code == 401 and self.auth is not None and attempt == 0 \
                    and not isinstance(self.auth, StaticToken):
                resp.close()
                continue
            break
        assert resp is not None
        if resp.is_success or resp.status_code in accepted:
            return resp
        if stream:
            resp.read()
        body: Any
        try:
            body = resp.json()
        except ValueError:
            body = resp.text[:500]
        raise ServiceError(
            f"{self.service} answered {resp.status_code} to {method} {url}: {_message(body)}",
            status=resp.status_code,
            temporary=resp.status_code >= 500 or resp.status_code == 429, body=body)

    def _send(self, req: httpx.Request, stream: bool, handover: float) -> httpx.Response:
        """Send ``req``; across a restart of the service, again: while it refuses
        connections (nothing was sent) for up to ``handover`` seconds, and once when it
        closed a kept-alive connection without answering a GET or HEAD."""
        deadline = time.monotonic() + handover
        pause = REPOLL_FIRST
        resent = False
        while True:
            try:
                return self._http.send(req, stream=stream)
            except httpx.ConnectError:
                if time.monotonic() + pause >= deadline or \
                        not isinstance(req.stream, httpx.ByteStream):
                    raise  # the time is over, or a streamed body cannot be sent again
                time.sleep(pause)
                pause = min(pause * 2, REPOLL_MAX)
            except httpx.RemoteProtocolError:
                if resent or req.method not in _SAFE_METHODS:
                    raise
                resent = True

    def long_poll(self, path: str, since: int | None, wait: float, **kw: Any
                  ) -> httpx.Response:
        """GET ``path`` as a long-poll (the server side is :mod:`stratus.common.longpoll`):
        with ``since`` (the generation the caller holds) and ``wait`` seconds (cut to
        ``MAX_LONG_POLL``), the API answers as soon as its generation differs from
        ``since`` or when the wait is over; the call's timeout is the wait plus the
        client's. Without ``since``, or with no wait, a plain GET. ``kw``: as
        :meth:`request` (``ok`` statuses, headers); a query of ``path`` is kept.

        A restart of the API does not end the wait: an answer marked
        :data:`DRAINING_HEADER` (the old process stopping) and a call that got no
        answer (refused while the new one starts) are polled again with the same
        ``since`` and the rest of the wait, after a short pause (:data:`REPOLL_FIRST`,
        doubling up to :data:`REPOLL_MAX`); only when the wait is over does such a
        failure raise (or the draining answer come back) as before."""
        wait = max(0.0, min(wait, MAX_LONG_POLL))
        if since is None or not wait > 0:
            return self.request("GET", path, **kw)
        deadline = time.monotonic() + wait
        pause = REPOLL_FIRST
        left = wait
        while True:
            url = httpx.URL(self.url(path)).copy_merge_params(
                {"since": str(since), "wait": f"{left:g}"})
            try:
                # handover=0: this loop itself polls again across a restart.
                resp = self.request("GET", str(url), timeout=left + self.timeout,
                                    handover=0, **kw)
            except ServiceError as exc:
                # No answer at all (refused, reset, closed): the API may be restarting.
                # Poll again, a little later each time, until the wait is over.
                if exc.status or time.monotonic() + pause >= deadline:
                    raise
            else:
                if not resp.headers.get(DRAINING_HEADER) or \
                        time.monotonic() + pause >= deadline:
                    return resp
                # A stopping API answered "nothing changed" at once: the same poll
                # (same ``since``) goes to the process that takes over.
                resp.close()
            time.sleep(pause)
            pause = min(pause * 2, REPOLL_MAX)
            left = round(max(deadline - time.monotonic(), 0.01), 2)

    def url(self, path: str) -> str:
        """``path`` under the service's base URL. Only a whole ``http://`` or ``https://``
        URL is kept as it is: a relative path that merely starts with "http" (a name such
        as ``http:evil.test``) stays under the base URL, so the token never leaves it."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw).json()

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        resp = self.request("POST", path, json=json, **kw)
        return resp.json() if resp.content else None

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        resp = self.request("PUT", path, json=json, **kw)
        return resp.json() if resp.content else None

    def delete(self, path: str, **kw: Any) -> None:
        self.request("DELETE", path, **kw)


def _message(body: Any) -> str:
    """The human message inside an OpenStack error body, whatever its shape."""
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
        if "message" in body:
            return str(body["message"])
    return str(body)[:300]
