"""Project > Key Pairs: list, create (the private key is shown once, never stored),
import, delete."""

from __future__ import annotations

import re

from starlette.responses import Response

from stratus.common.app import Routes
from stratus.dashboard.web import FormError, Page, page

routes = Routes()
NAME = re.compile(r"^[A-Za-z0-9_. @-]{1,255}$")


@routes.add("GET", "/project/key_pairs/")
@page
def list_keypairs(ctx: Page) -> Response:
    return ctx.render("keypairs.html", section="key_pairs",
                      keypairs=ctx.svc.core.keypairs(ctx.api), private_key="")


@routes.add("POST", "/project/key_pairs/create")
@page
def create_keypair(ctx: Page) -> Response:
    """Create or import; a created key pair's private key is in this one answer only."""
    name = ctx.field("name", required=True)
    if not NAME.match(name):
        raise FormError("A key pair name is 1-255 letters, digits, spaces and _ . @ -.")
    private = ctx.svc.core.create_keypair(ctx.api, name, ctx.field("public_key"))
    if not private:
        ctx.flash("info", f"Key pair {name} imported.")
        return ctx.redirect("/project/key_pairs/")
    return ctx.render("keypairs.html", section="key_pairs",
                      keypairs=ctx.svc.core.keypairs(ctx.api), private_key=private,
                      created=name)


@routes.add("POST", "/project/key_pairs/{name}/delete")
@page
def delete_keypair(ctx: Page) -> Response:
    name = ctx.request.path_params["name"]
    if not NAME.match(name):
        raise FormError(f"{name!r} is not a key pair name.")
    ctx.svc.core.delete_keypair(ctx.api, name)
    ctx.flash("info", f"Key pair {name} deleted.")
    return ctx.redirect("/project/key_pairs/")
