# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_project and cloud_user: identity v3 projects, users and their role grants.

``ProjectConvergence`` and ``UserConvergence`` compare the resource of that
name (in its domain) with the options and queue its creation, update,
role grants or deletion; see ``stratus_plan`` for how check mode and a real
run share it. Grants are only added (a grant made elsewhere is kept).

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import urllib.parse

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence


class IdentityApi:
    """The identity calls the two modules make."""

    def __init__(self, client):
        self.client = client

    def call(self, method, path, body=None, query=None, expect=(200, 201, 204)):
        return self.client.request(method, "identity", path, body=body, query=query,
                                   expect=expect).body

    def find(self, kind, name, domain_id=None):
        """The project or user (``kind``) named ``name`` (or with that ID), or None."""
        query = {"name": name}
        if domain_id:
            query["domain_id"] = domain_id
        found = self.call("GET", f"/v3/{kind}", query=query)[kind]
        if not found:
            body = self.call("GET", f"/v3/{kind}/{urllib.parse.quote(name)}", expect=(200, 404))
            return (body or {}).get(kind[:-1])
        if len(found) > 1:
            raise StratusError(f"{len(found)} {kind} are named {name!r}; give the domain.")
        return found[0]

    def require(self, kind, name):
        found = self.find(kind, name)
        if found is None:
            raise StratusError(f"No {kind[:-1]} {name!r} exists.")
        return found

    def role_id(self, name):
        roles = self.call("GET", "/v3/roles", query={"name": name})["roles"]
        if not roles:
            raise StratusError(f"No role {name!r} exists.")
        return roles[0]["id"]

    def has_grant(self, project_id, user_id, role_id):
        path = f"/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"
        return self.client.request("HEAD", "identity", path, expect=(200, 204, 404)).status != 404

    def grant(self, project_id, user_id, role_id):
        self.call("PUT", f"/v3/projects/{project_id}/users/{user_id}/roles/{role_id}")


class _IdentityConvergence(Convergence):
    kind = ""
    fields = ()

    def __init__(self, api, params, check_mode):
        super().__init__(params, check_mode)
        self.api = api

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(IdentityApi(client), params, check_mode)

    def wanted(self):
        return dict((k, self.params[k]) for k in self.fields if self.params.get(k) is not None)

    def grants(self):
        """[(project, user, role)] names of the grants the options ask for."""
        raise NotImplementedError

    def plan(self):
        p = self.params
        current = self.api.find(self.kind, p["name"], p.get("domain_id"))
        if p["state"] == "absent":
            plan = self.new_plan(None)
            if current is not None:
                self.diff.delete(dict(name=current["name"], id=current["id"]))
                plan.then(lambda _r: self.api.call("DELETE", f"/v3/{self.kind}/{current['id']}"))
            return plan
        attrs = self.wanted()
        key = self.kind[:-1]
        if current is None:
            self.diff.create(dict((k, v) for k, v in attrs.items() if k != "password"))
            plan = self.new_plan(None)
            plan.then(lambda _r: self.api.call("POST", f"/v3/{self.kind}",
                                               body={key: dict(attrs, name=p["name"])})[key])
        else:
            changes = {}
            for k, v in attrs.items():
                if k == "password":
                    if p.get("update_password") == "always":
                        changes[k] = v
                        self.diff.add(k, "(hidden)", "(changed)")
                elif self.diff.add(k, current.get(k), v):
                    changes[k] = v
            plan = self.new_plan(current)
            if changes:
                plan.then(lambda r: self.api.call("PATCH", f"/v3/{self.kind}/{r['id']}",
                                                  body={key: changes})[key])
        self.plan_grants(plan, current)
        return plan

    def plan_grants(self, plan, current):
        missing = []
        for project, user, role in self.grants():
            project_obj = current if self.kind == "projects" and project is None else None
            user_obj = current if self.kind == "users" and user is None else None
            if project_obj is None and project is not None:
                project_obj = self.api.require("projects", project)
            if user_obj is None and user is not None:
                user_obj = self.api.require("users", user)
            role_id = self.api.role_id(role)
            label = f"{project or self.params['name']}/{user or self.params['name']}/{role}"
            if project_obj and user_obj and self.api.has_grant(
                    project_obj["id"], user_obj["id"], role_id):
                continue
            missing.append((project, user, role_id, label))
        if not missing:
            return
        self.diff.add("grants_added", [], [m[3] for m in missing])

        def grant_all(resource):
            for project, user, role_id, _label in missing:
                project_id = resource["id"] if project is None else \
                    self.api.require("projects", project)["id"]
                user_id = resource["id"] if user is None else \
                    self.api.require("users", user)["id"]
                self.api.grant(project_id, user_id, role_id)
            return resource

        plan.then(grant_all)

    def result(self, resource):
        out = {"changed": self.diff.changed, "diff": self.diff.diff, "id": None}
        out[self.kind[:-1]] = resource
        if resource is not None:
            out["id"] = resource.get("id")
        return out


class ProjectConvergence(_IdentityConvergence):
    """The decision logic of cloud_project."""

    kind = "projects"
    fields = ("description", "domain_id", "enabled")

    def grants(self):
        out = []
        for item in self.params.get("members") or []:
            out.append((None, item["user"], item.get("role") or "member"))
        if self.params.get("current_user_role"):
            out.append((None, None, self.params["current_user_role"]))
        return out

    def plan_grants(self, plan, current):
        # the current user's grant: resolved here, where the client knows the user
        grants = self.grants()
        self.grants = lambda: [
            (project, user if user is not None or role is None else self.current_user(), role)
            for project, user, role in grants
        ]
        super().plan_grants(plan, current)

    def current_user(self):
        client = self.api.client
        if client.user_id is None:
            client.authenticate()
        return client.user_id


class UserConvergence(_IdentityConvergence):
    """The decision logic of cloud_user."""

    kind = "users"
    fields = ("password", "email", "description", "domain_id", "enabled", "default_project_id")

    def wanted(self):
        attrs = super().wanted()
        if self.params.get("default_project"):
            attrs["default_project_id"] = self.api.require(
                "projects", self.params["default_project"])["id"]
        return attrs

    def grants(self):
        return [(item["project"], None, item.get("role") or "member")
                for item in self.params.get("roles") or []]
