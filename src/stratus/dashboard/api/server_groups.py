"""Project > Server Groups: list, create (affinity, anti-affinity, soft-*), delete."""

from __future__ import annotations

from starlette.responses import Response

from stratus.common.app import Routes
from stratus.dashboard.web import FormError, Page, check_id, page

routes = Routes()
POLICIES = ("anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity")


@routes.add("GET", "/project/server_groups/")
@page
def list_server_groups(ctx: Page) -> Response:
    return ctx.render("server_groups.html", section="server_groups", policies=POLICIES,
                      groups=ctx.svc.core.server_groups(ctx.api))


@routes.add("POST", "/project/server_groups/create")
@page
def create_server_group(ctx: Page) -> Response:
    policy = ctx.field("policy", default=POLICIES[0])
    if policy not in POLICIES:
        raise FormError(f"The policy is one of {', '.join(POLICIES)}.")
    ctx.svc.core.create_server_group(ctx.api, ctx.field("name", required=True), policy)
    ctx.flash("info", "Server group created.")
    return ctx.redirect("/project/server_groups/")


@routes.add("POST", "/project/server_groups/{group_id}/delete")
@page
def delete_server_group(ctx: Page) -> Response:
    ctx.svc.core.delete_server_group(ctx.api, check_id(ctx.request.path_params["group_id"],
                                                       "server group"))
    ctx.flash("info", "Server group deleted.")
    return ctx.redirect("/project/server_groups/")
