"""Admin: projects, users, role assignments, flavors, hypervisors with their usage and
every project's instances, for a user with the admin role (the APIs check it again:
what a non-admin token would get refused is never shown)."""

from __future__ import annotations

from starlette.responses import Response

from stratus.common.app import Routes
from stratus.dashboard import views
from stratus.dashboard.web import Page, page

routes = Routes()


@routes.add("GET", "/admin/")
@page
def admin_overview(ctx: Page) -> Response:
    if not ctx.session.is_admin:
        return views.error_page(403, "The admin panels need the admin role on the project "
                                "you are signed in to.", ctx.session)
    return ctx.render("admin.html", section="admin", **ctx.svc.core.admin_state(ctx.api))
