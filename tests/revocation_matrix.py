"""The revocation matrix (issue 19): for each revoking event, a token issued before it
stays refused after the event is undone, and a token issued afterwards works.

Shared by the in-process unit test (tests/unit/test_identity_revocation_events.py) and the
integration test against a real stratus-identity on SQLite and PostgreSQL
(tests/integration/test_identity_revocation.py). Each case takes an ``Api``
(tests/identity_api.py: a client plus the admin token) and a unique prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from identity_api import Api

PW = "matrix-pw"


def refused(api: Api, token: str) -> None:
    """The token no longer validates (404) nor authenticates a request (401)."""
    got = api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": token})
    assert got.status_code == 404, got.text
    assert api.call("GET", "/v3/auth/catalog", token).status_code == 401


def works(api: Api, token: str) -> None:
    """The token validates and authenticates a request."""
    got = api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": token})
    assert got.status_code == 200, got.text
    assert api.call("GET", "/v3/auth/catalog", token).status_code == 200


def _ok(resp: Any, status: int = 204) -> Any:
    assert resp.status_code == status, resp.text
    return resp


def _setup(api: Api, name: str, domain: str = "default") -> dict[str, Any]:
    """A project and a user of the same name in ``domain``, the user a member of it."""
    project = api.create("project", name=name, domain_id=domain)
    user = api.create("user", name=name, password=PW, domain_id=domain)
    role = api.role_id("member")
    _ok(api.call("PUT", f"/v3/projects/{project['id']}/users/{user['id']}/roles/{role}"))
    return {"project": project, "user": user, "role": role}


def _undone_stays_revoked(api: Api, old: str, cause: Callable[[], None],
                          undo: Callable[[], None], fresh: Callable[[], str]) -> None:
    works(api, old)
    cause()
    refused(api, old)
    undo()
    refused(api, old)
    works(api, fresh())
    refused(api, old)


def role_removed(api: Api, prefix: str) -> None:
    s = _setup(api, f"{prefix}-role")
    path = f"/v3/projects/{s['project']['id']}/users/{s['user']['id']}/roles/{s['role']}"
    _undone_stays_revoked(
        api, api.token(s["user"]["name"], PW, s["project"]["name"]),
        lambda: _ok(api.call("DELETE", path)), lambda: _ok(api.call("PUT", path)),
        lambda: api.token(s["user"]["name"], PW, s["project"]["name"]))


def _group_member(api: Api, name: str) -> tuple[dict[str, Any], str, str]:
    """A user whose only role on its project comes through a group: (user/project, the
    group grant's path, the membership's path)."""
    project = api.create("project", name=name)
    user = api.create("user", name=name, password=PW)
    group = api.create("group", name=name)
    member = f"/v3/groups/{group['id']}/users/{user['id']}"
    _ok(api.call("PUT", member))
    grant = f"/v3/projects/{project['id']}/groups/{group['id']}/roles/{api.role_id('member')}"
    _ok(api.call("PUT", grant))
    return {"project": project, "user": user}, grant, member


def group_role_removed(api: Api, prefix: str) -> None:
    s, grant, _ = _group_member(api, f"{prefix}-grole")
    token = lambda: api.token(s["user"]["name"], PW, s["project"]["name"])  # noqa: E731
    _undone_stays_revoked(api, token(), lambda: _ok(api.call("DELETE", grant)),
                          lambda: _ok(api.call("PUT", grant)), token)


def group_membership_removed(api: Api, prefix: str) -> None:
    s, _, member = _group_member(api, f"{prefix}-gmem")
    token = lambda: api.token(s["user"]["name"], PW, s["project"]["name"])  # noqa: E731
    _undone_stays_revoked(api, token(), lambda: _ok(api.call("DELETE", member)),
                          lambda: _ok(api.call("PUT", member)), token)


def domain_role_removed(api: Api, prefix: str) -> None:
    s = _setup(api, f"{prefix}-drole")
    path = f"/v3/domains/default/users/{s['user']['id']}/roles/{s['role']}"
    _ok(api.call("PUT", path))
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": s["user"]["id"], "password": PW}}}, "scope": {"domain": {"id": "default"}}}}

    def token() -> str:
        resp = _ok(api.client.post("/v3/auth/tokens", json=body), 201)
        return str(resp.headers["X-Subject-Token"])

    project_token = api.token(s["user"]["name"], PW, s["project"]["name"])
    _undone_stays_revoked(api, token(), lambda: _ok(api.call("DELETE", path)),
                          lambda: _ok(api.call("PUT", path)), token)
    works(api, project_token)  # the project grant was not touched


def user_disabled(api: Api, prefix: str) -> None:
    s = _setup(api, f"{prefix}-udis")
    path = f"/v3/users/{s['user']['id']}"
    token = lambda: api.token(s["user"]["name"], PW, s["project"]["name"])  # noqa: E731
    _undone_stays_revoked(
        api, token(),
        lambda: _ok(api.call("PATCH", path, json={"user": {"enabled": False}}), 200),
        lambda: _ok(api.call("PATCH", path, json={"user": {"enabled": True}}), 200), token)


def password_changed(api: Api, prefix: str) -> None:
    s = _setup(api, f"{prefix}-pw")
    path = f"/v3/users/{s['user']['id']}"
    token = lambda: api.token(s["user"]["name"], PW, s["project"]["name"])  # noqa: E731
    _undone_stays_revoked(
        api, token(),
        lambda: _ok(api.call("PATCH", path, json={"user": {"password": "other-pw"}}), 200),
        lambda: _ok(api.call("PATCH", path, json={"user": {"password": PW}}), 200), token)


def project_disabled(api: Api, prefix: str) -> None:
    s = _setup(api, f"{prefix}-pdis")
    path = f"/v3/projects/{s['project']['id']}"
    token = lambda: api.token(s["user"]["name"], PW, s["project"]["name"])  # noqa: E731
    _undone_stays_revoked(
        api, token(),
        lambda: _ok(api.call("PATCH", path, json={"project": {"enabled": False}}), 200),
        lambda: _ok(api.call("PATCH", path, json={"project": {"enabled": True}}), 200), token)


def domain_disabled(api: Api, prefix: str) -> None:
    dom = api.create("domain", name=f"{prefix}-dom")
    s = _setup(api, f"{prefix}-ddis", domain=dom["id"])
    path = f"/v3/domains/{dom['id']}"
    token = lambda: api.token(  # noqa: E731
        s["user"]["name"], PW, s["project"]["name"], domain=dom["id"])
    _undone_stays_revoked(
        api, token(),
        lambda: _ok(api.call("PATCH", path, json={"domain": {"enabled": False}}), 200),
        lambda: _ok(api.call("PATCH", path, json={"domain": {"enabled": True}}), 200), token)


def user_deleted(api: Api, prefix: str) -> None:
    name = f"{prefix}-udel"
    s = _setup(api, name)
    old = api.token(name, PW, name)
    works(api, old)
    _ok(api.call("DELETE", f"/v3/users/{s['user']['id']}"))
    refused(api, old)
    # Undone: a user of the same name, granted the same role on the same project.
    user = api.create("user", name=name, password=PW)
    _ok(api.call("PUT", f"/v3/projects/{s['project']['id']}/users/{user['id']}/roles/"
                        f"{s['role']}"))
    refused(api, old)
    works(api, api.token(name, PW, name))


def app_credential_deleted(api: Api, prefix: str) -> None:
    s = _setup(api, f"{prefix}-ac")
    uid = s["user"]["id"]
    owner = api.token(s["user"]["name"], PW, s["project"]["name"])

    def make() -> dict[str, Any]:
        resp = api.call("POST", f"/v3/users/{uid}/application_credentials", owner,
                        json={"application_credential": {"name": "ci", "secret": "ac-secret"}})
        return dict(_ok(resp, 201).json()["application_credential"])

    def token(cred_id: str) -> str:
        body = {"auth": {"identity": {"methods": ["application_credential"],
                                      "application_credential": {"id": cred_id,
                                                                 "secret": "ac-secret"}}}}
        return str(_ok(api.client.post("/v3/auth/tokens", json=body), 201
                       ).headers["X-Subject-Token"])

    cred = make()
    old = token(cred["id"])
    works(api, old)
    _ok(api.call("DELETE", f"/v3/users/{uid}/application_credentials/{cred['id']}", owner))
    refused(api, old)
    again = make()  # undone: the same name and secret again
    refused(api, old)
    works(api, token(again["id"]))
    works(api, owner)  # the user's own token was not touched


def token_revoked(api: Api, prefix: str) -> None:
    s = _setup(api, f"{prefix}-tok")
    token = lambda: api.token(s["user"]["name"], PW, s["project"]["name"])  # noqa: E731
    old = token()
    other = token()
    works(api, old)
    _ok(api.call("DELETE", "/v3/auth/tokens", headers={"X-Subject-Token": old}))
    refused(api, old)
    works(api, other)  # only that token
    works(api, token())


def role_deleted(api: Api, prefix: str) -> None:
    name = f"{prefix}-role-del"
    s = _setup(api, f"{prefix}-rdel")
    role = api.create("role", name=name)
    path = f"/v3/projects/{s['project']['id']}/users/{s['user']['id']}/roles/"
    _ok(api.call("PUT", path + role["id"]))
    old = api.token(s["user"]["name"], PW, s["project"]["name"])
    works(api, old)
    _ok(api.call("DELETE", f"/v3/roles/{role['id']}"))
    refused(api, old)
    again = api.create("role", name=name)  # undone: a role of the same name, granted again
    _ok(api.call("PUT", path + again["id"]))
    refused(api, old)
    works(api, api.token(s["user"]["name"], PW, s["project"]["name"]))


CASES: dict[str, Callable[[Api, str], None]] = {
    "role removed": role_removed,
    "role removed from a group": group_role_removed,
    "user removed from a group": group_membership_removed,
    "domain role removed": domain_role_removed,
    "user disabled": user_disabled,
    "password changed": password_changed,
    "project disabled": project_disabled,
    "domain disabled": domain_disabled,
    "user deleted": user_deleted,
    "application credential deleted": app_credential_deleted,
    "token revoked": token_revoked,
    "role deleted": role_deleted,
}
