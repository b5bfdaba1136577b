"""Project > Overview: the quota usage charts."""

from __future__ import annotations

from starlette.responses import Response

from stratus.common.app import Routes
from stratus.dashboard.web import Page, page

routes = Routes()


@routes.add("GET", "/project/")
@page
def overview(ctx: Page) -> Response:
    charts = ctx.svc.core.overview(ctx.api)
    return ctx.render("overview.html", section="overview", charts=charts)
