"""The dashboard's service layer: every call to the Stratus APIs, with the user's token.

:class:`Cloud` signs a user in and out at the identity API. :class:`UserApi` is one
request's view of the cloud as that user: the endpoints come from the token's catalog,
each call carries the session's token (never a service user's), and :attr:`UserApi.calls`
counts the calls, so the pages (and the benchmark) can prove "one call per resource kind".
An API's refusal becomes :class:`ApiFailure` holding the API's own message.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import httpx

from stratus.common.clients import ApiClient, ServiceError, StaticToken

# Catalog types per API, in order of preference.
SERVICE_TYPES = {
    "compute": ("compute",),
    "image": ("image",),
    "network": ("network",),
    "volume": ("block-storage", "volumev3", "volume"),
}
COMPUTE_VERSION = "2.47"  # servers carry their flavor: no flavor call per page


class ApiFailure(Exception):
    """An API refused or failed; ``message`` is the API's own words."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def api_message(exc: ServiceError) -> str:
    """The message inside an OpenStack error body (``{"badRequest": {"message": ...}}``,
    ``{"NeutronError": {...}}``, ``{"error": {...}}``), else the client's sentence."""
    body = exc.body
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])
        if body.get("message"):
            return str(body["message"])
    return str(exc)


@dataclass
class Login:
    """What a successful sign-in gives the session."""

    token: str
    expires: float
    user: dict[str, Any]
    project: dict[str, Any]
    roles: list[str]
    catalog: list[dict[str, Any]]


class Cloud:
    """Sign-in and sign-out at the identity API; makes a :class:`UserApi` per request."""

    def __init__(self, identity_url: str, interface: str = "public", region: str = "",
                 timeout: float = 30.0, http: httpx.Client | None = None) -> None:
        url = identity_url.rstrip("/")
        self.identity_url = url if url.endswith("/v3") else f"{url}/v3"
        self.interface = interface
        self.region = region
        self.timeout = timeout
        self.http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _identity(self, token: str | None = None) -> ApiClient:
        return ApiClient(self.identity_url, StaticToken(token) if token else None,
                         timeout=self.timeout, service="identity", http=self.http)

    def login(self, username: str, password: str, domain: str) -> Login:
        """A project-scoped token for ``username``: an unscoped one first, to list the
        user's projects, then one scoped to the first of them (by name), as Horizon
        does; the unscoped token is revoked. Wrong credentials raise ApiFailure(401)."""
        anon = self._identity()
        user = {"name": username, "password": password, "domain": {"name": domain}}
        unscoped = self._auth(anon, {"identity": {"methods": ["password"],
                                                  "password": {"user": user}}})
        try:
            projects = self._identity(unscoped).get("auth/projects").get("projects", [])
            projects = sorted((p for p in projects if p.get("enabled", True)),
                              key=lambda p: (p.get("name") or ""))
            if not projects:
                raise ApiFailure(f"The user {username} has no role on any project.", 403)
            # A password sign-in of its own (not a rescope of the unscoped token): the
            # session's token then shares no revocation chain with the unscoped one,
            # which is revoked right here.
            scoped = self._auth_body(anon, {
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": {"project": {"id": projects[0]["id"]}}})
        except ServiceError as exc:
            raise ApiFailure(api_message(exc), exc.status) from None
        finally:
            self.logout(unscoped)
        token, body = scoped
        info = body["token"]
        expires = _epoch(info.get("expires_at"))
        return Login(token, expires, info.get("user", {}), info.get("project", {}),
                     [r.get("name", "") for r in info.get("roles", [])],
                     info.get("catalog", []))

    def _auth(self, client: ApiClient, auth: dict[str, Any]) -> str:
        try:
            return self._auth_body(client, auth)[0]
        except ServiceError as exc:
            if exc.status == 401:
                raise ApiFailure("Invalid credentials: the user name, password or domain "
                                 "is wrong.", 401) from None
            raise ApiFailure(api_message(exc), exc.status) from None

    @staticmethod
    def _auth_body(client: ApiClient, auth: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        resp = client.request("POST", "auth/tokens", json={"auth": auth})
        return resp.headers["X-Subject-Token"], resp.json()

    def logout(self, token: str) -> bool:
        """Revoke ``token`` at the identity API; False if that failed (it still expires)."""
        try:
            self._identity(token).request("DELETE", "auth/tokens",
                                          headers={"X-Subject-Token": token}, ok=(404,))
        except ServiceError:
            return False
        return True

    def user_api(self, token: str, catalog: list[dict[str, Any]]) -> UserApi:
        return UserApi(self, token, catalog)


class UserApi:
    """The cloud as one signed-in user sees it (one per request)."""

    def __init__(self, cloud: Cloud, token: str, catalog: list[dict[str, Any]]) -> None:
        self.cloud = cloud
        self.token = token
        self.catalog = catalog
        self.calls = 0
        self._clients: dict[str, ApiClient] = {}

    def endpoint(self, kind: str) -> str | None:
        """The URL of API ``kind`` in the token's catalog (interface and region as set)."""
        for stype in SERVICE_TYPES.get(kind, (kind,)):
            for entry in self.catalog:
                if entry.get("type") != stype:
                    continue
                for ep in entry.get("endpoints", []):
                    if ep.get("interface") != self.cloud.interface:
                        continue
                    if self.cloud.region and ep.get("region_id", ep.get("region")) not in (
                            None, self.cloud.region):
                        continue
                    return str(ep["url"]).rstrip("/")
        return None

    def has(self, kind: str) -> bool:
        return self.endpoint(kind) is not None

    def client(self, kind: str) -> ApiClient:
        if kind not in self._clients:
            if kind == "identity":
                url: str | None = self.cloud.identity_url
            else:
                url = self.endpoint(kind)
            if url is None:
                raise ApiFailure(f"The {kind} API is not in this cloud's catalog.", 404)
            self._clients[kind] = ApiClient(url, StaticToken(self.token),
                                            timeout=self.cloud.timeout, service=kind,
                                            http=self.cloud.http, handover=0)
        return self._clients[kind]

    def call(self, kind: str, method: str, path: str, **kw: Any) -> Any:
        """One API call; the JSON answer (None when empty). ApiFailure on refusal."""
        headers = dict(kw.pop("headers", None) or {})
        if kind == "compute":
            headers.setdefault("OpenStack-API-Version", f"compute {COMPUTE_VERSION}")
        self.calls += 1
        try:
            resp = self.client(kind).request(method, path, headers=headers, **kw)
        except ServiceError as exc:
            raise ApiFailure(api_message(exc), exc.status) from None
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    def get(self, kind: str, path: str, **kw: Any) -> Any:
        return self.call(kind, "GET", path, **kw)


def _epoch(text: Any) -> float:
    """An ISO time (``2026-01-01T00:00:00.000000Z``) as seconds since the epoch."""
    try:
        moment = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()
