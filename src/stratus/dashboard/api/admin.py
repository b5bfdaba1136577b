"""Admin: projects, users, role assignments, flavors, hypervisors with their usage and
every project's instances, for a user with the admin role (the APIs check it again:
what a non-admin token would get refused is never shown); and the admins' writes:
create/delete projects and users (a password set once), grant/revoke a role on a
project, create/delete flavors. A member gets the 403 page and nothing is called."""

from __future__ import annotations

from starlette.responses import Response

from stratus.common.app import Routes
from stratus.dashboard import views
from stratus.dashboard.web import FormError, Page, check_id, page

routes = Routes()


@routes.add("GET", "/admin/")
@page
def admin_overview(ctx: Page) -> Response:
    if (refused := _admin_only(ctx)) is not None:
        return refused
    return ctx.render("admin.html", section="admin", **ctx.svc.core.admin_state(ctx.api))


_FLAVOR_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _admin_only(ctx: Page) -> Response | None:
    """The 403 page for a member (the APIs would refuse too; nothing is called)."""
    if ctx.session.is_admin:
        return None
    return views.error_page(403, "The admin panels need the admin role on the project "
                            "you are signed in to.", ctx.session)


def _done(ctx: Page, message: str) -> Response:
    ctx.flash("info", message)
    return ctx.redirect("/admin/")


@routes.add("POST", "/admin/projects/create")
@page
def create_project(ctx: Page) -> Response:
    if (refused := _admin_only(ctx)) is not None:
        return refused
    name = ctx.field("name", required=True)
    ctx.svc.core.create_project(ctx.api, name, ctx.field("description"))
    return _done(ctx, f"Project {name} created.")


@routes.add("POST", "/admin/projects/{project_id}/delete")
@page
def delete_project(ctx: Page) -> Response:
    if (refused := _admin_only(ctx)) is not None:
        return refused
    project_id = check_id(ctx.request.path_params["project_id"], "project")
    if project_id == ctx.session.project.get("id"):
        raise FormError("You cannot delete the project you are signed in to.")
    ctx.svc.core.delete_project(ctx.api, project_id)
    return _done(ctx, "Project deleted.")


@routes.add("POST", "/admin/users/create")
@page
def create_user(ctx: Page) -> Response:
    if (refused := _admin_only(ctx)) is not None:
        return refused
    name = ctx.field("name", required=True)
    password = (ctx.form.get("password") or [""])[0]  # kept as typed (no strip)
    if len(password) < 8:
        raise FormError("The password must have at least 8 characters.")
    if password != (ctx.form.get("confirm_password") or [""])[0]:
        raise FormError("The two passwords differ.")
    project = ctx.field("project")
    if project:
        check_id(project, "project")
    ctx.svc.core.create_user(ctx.api, name, password, project, ctx.field("email"))
    return _done(ctx, f"User {name} created.")


@routes.add("POST", "/admin/users/{user_id}/delete")
@page
def delete_user(ctx: Page) -> Response:
    if (refused := _admin_only(ctx)) is not None:
        return refused
    user_id = check_id(ctx.request.path_params["user_id"], "user")
    if user_id == ctx.session.user.get("id"):
        raise FormError("You cannot delete the user you are signed in as.")
    ctx.svc.core.delete_user(ctx.api, user_id)
    return _done(ctx, "User deleted.")


@routes.add("POST", "/admin/roles/{action}")
@page
def grant_or_revoke(ctx: Page) -> Response:
    if (refused := _admin_only(ctx)) is not None:
        return refused
    action = ctx.request.path_params["action"]
    if action not in ("grant", "revoke"):
        raise FormError(f"{action!r} is not grant or revoke.")
    project = check_id(ctx.field("project", required=True), "project")
    user = check_id(ctx.field("user", required=True), "user")
    role = ctx.field("role", required=True)
    if action == "grant":
        ctx.svc.core.grant_role(ctx.api, project, user, role)
        return _done(ctx, f"Role {role} granted.")
    ctx.svc.core.revoke_role(ctx.api, project, user, role)
    return _done(ctx, f"Role {role} revoked.")


@routes.add("POST", "/admin/flavors/create")
@page
def create_flavor(ctx: Page) -> Response:
    if (refused := _admin_only(ctx)) is not None:
        return refused
    spec = {"name": ctx.field("name", required=True),
            "vcpus": ctx.int_field("vcpus", 1, 1024, default=1),
            "ram": ctx.int_field("ram", 1, 16 * 1024 * 1024, default=512),
            "disk": ctx.int_field("disk", 0, 1024 * 1024, default=1),
            "public": ctx.field("public") == "on"}
    ctx.svc.core.create_flavor(ctx.api, spec)
    return _done(ctx, f"Flavor {spec['name']} created.")


@routes.add("POST", "/admin/flavors/{flavor_id}/delete")
@page
def delete_flavor(ctx: Page) -> Response:
    if (refused := _admin_only(ctx)) is not None:
        return refused
    flavor_id = ctx.request.path_params["flavor_id"]
    if not flavor_id or len(flavor_id) > 255 or not set(flavor_id) <= _FLAVOR_ID_CHARS:
        raise FormError(f"{flavor_id!r} is not a flavor id.")
    ctx.svc.core.delete_flavor(ctx.api, flavor_id)
    return _done(ctx, "Flavor deleted.")
