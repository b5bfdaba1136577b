"""A Keystone API client over a starlette TestClient, for in-process tests."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

PASSWORD = "unit-admin-pw"


class Api:
    """A TestClient plus the admin token, with small helpers for the tests."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.admin = self.token("admin", PASSWORD, "admin")

    def token(self, user: str, password: str, project: str | None = None,
              domain: str = "default") -> str:
        resp = self.issue(user, password, project, domain)
        assert resp.status_code == 201, resp.text
        return str(resp.headers["X-Subject-Token"])

    def issue(self, user: str, password: str, project: str | None = None,
              domain: str = "default") -> Any:
        body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"id": domain}, "password": password}}}}}
        if project:
            body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": domain}}}
        return self.client.post("/v3/auth/tokens", json=body)

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        headers.setdefault("X-Auth-Token", self.admin if token is None else token)
        return self.client.request(method, path, headers=headers, **kw)

    def create(self, kind: str, **attrs: Any) -> dict[str, Any]:
        resp = self.call("POST", f"/v3/{kind}s", json={kind: attrs})
        assert resp.status_code == 201, resp.text
        return dict(resp.json()[kind])

    def member(self, name: str, password: str = "pw", role: str = "member") -> dict[str, Any]:
        """A user with ``role`` on a new project of the same name."""
        project = self.create("project", name=name)
        user = self.create("user", name=name, password=password)
        role_id = self.role_id(role)
        resp = self.call("PUT", f"/v3/projects/{project['id']}/users/{user['id']}/roles/{role_id}")
        assert resp.status_code == 204, resp.text
        return {"project": project, "user": user, "token": self.token(name, password, name)}

    def role_id(self, name: str) -> str:
        resp = self.call("GET", "/v3/roles", params={"name": name})
        return str(resp.json()["roles"][0]["id"])
