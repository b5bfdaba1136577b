"""Admin > write actions: projects, users (their password set once, at creation), role
grants on a project, flavors — as the signed-in admin, through the identity and compute
APIs (which check the admin role again). Part of the pages' service layer
(:class:`~stratus.dashboard.core.DashboardCore` mixes it in)."""

from __future__ import annotations

from typing import Any

from stratus.dashboard.cloud import ApiFailure, UserApi


class AdminWritesCore:
    """The admin panel's writes (mixed into DashboardCore)."""

    def create_project(self, api: UserApi, name: str, description: str) -> None:
        api.call("identity", "POST", "projects", json={"project": {
            "name": name, "description": description, "domain_id": "default",
            "enabled": True}})

    def delete_project(self, api: UserApi, project_id: str) -> None:
        api.call("identity", "DELETE", f"projects/{project_id}")

    def create_user(self, api: UserApi, name: str, password: str, project_id: str,
                    email: str) -> None:
        user: dict[str, Any] = {"name": name, "password": password, "domain_id": "default",
                                "enabled": True}
        if project_id:
            user["default_project_id"] = project_id
        if email:
            user["email"] = email
        api.call("identity", "POST", "users", json={"user": user})

    def delete_user(self, api: UserApi, user_id: str) -> None:
        api.call("identity", "DELETE", f"users/{user_id}")

    def role_id(self, api: UserApi, role: str) -> str:
        """The id of the role named ``role`` (one call), else ApiFailure(404)."""
        roles = api.get("identity", "roles", params={"name": role}).get("roles", [])
        if not roles:
            raise ApiFailure(f"There is no role named {role!r}.", 404)
        return str(roles[0]["id"])

    def grant_role(self, api: UserApi, project_id: str, user_id: str, role: str) -> None:
        role_id = self.role_id(api, role)
        api.call("identity", "PUT", f"projects/{project_id}/users/{user_id}/roles/{role_id}")

    def revoke_role(self, api: UserApi, project_id: str, user_id: str, role: str) -> None:
        role_id = self.role_id(api, role)
        api.call("identity", "DELETE",
                 f"projects/{project_id}/users/{user_id}/roles/{role_id}")

    def create_flavor(self, api: UserApi, spec: dict[str, Any]) -> None:
        api.call("compute", "POST", "flavors", json={"flavor": {
            "name": spec["name"], "vcpus": spec["vcpus"], "ram": spec["ram"],
            "disk": spec["disk"], "os-flavor-access:is_public": spec["public"]}})

    def delete_flavor(self, api: UserApi, flavor_id: str) -> None:
        api.call("compute", "DELETE", f"flavors/{flavor_id}")
