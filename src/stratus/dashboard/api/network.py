"""Project > Network: the topology (SVG, refreshed by the page), networks and subnets,
routers, floating IPs and security groups."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Routes
from stratus.dashboard import views
from stratus.dashboard.web import FormError, Page, check_id, page, safe_next

routes = Routes()


@routes.add("GET", "/project/network_topology/")
@page
def topology(ctx: Page) -> Response:
    return ctx.render("topology.html", section="topology")


@routes.add("GET", "/project/network_topology/topology.svg")
@page
def topology_svg(ctx: Page) -> Response:
    state = ctx.svc.core.network_state(ctx.api)
    servers = ctx.api.get("compute", "servers").get("servers", []) \
        if ctx.api.has("compute") else []
    return views.topology_svg(state, servers)


@routes.add("GET", "/project/networks/")
@page
def list_networks(ctx: Page) -> Response:
    state = ctx.svc.core.network_state(ctx.api)
    subnets: dict[str, list[str]] = {}
    for s in state["subnets"]:
        subnets.setdefault(s["network_id"], []).append(f"{s.get('name', '')} {s['cidr']}")
    external = [n for n in state["networks"] if n.get("router:external")]
    return ctx.render("networks.html", section="networks", subnets=subnets,
                      external=external, all_subnets=state["subnets"],
                      networks=state["networks"], routers=state["routers"],
                      floatingips=state["floatingips"])


@routes.add("POST", "/project/networks/create")
@page
def create_network(ctx: Page) -> Response:
    ctx.svc.core.create_network(ctx.api, ctx.field("name", required=True), ctx.field("cidr"))
    ctx.flash("info", "Network created.")
    return ctx.redirect("/project/networks/")


@routes.add("POST", "/project/networks/{network_id}/delete")
@page
def delete_network(ctx: Page) -> Response:
    ctx.svc.core.delete_network(ctx.api, check_id(ctx.request.path_params["network_id"],
                                                  "network"))
    ctx.flash("info", "Network deleted.")
    return ctx.redirect("/project/networks/")


@routes.add("POST", "/project/routers/create")
@page
def create_router(ctx: Page) -> Response:
    ctx.svc.core.create_router(ctx.api, ctx.field("name", required=True),
                               ctx.field("external_network"), ctx.field("subnet"))
    ctx.flash("info", "Router created.")
    return ctx.redirect("/project/networks/")


@routes.add("POST", "/project/routers/{router_id}/delete")
@page
def delete_router(ctx: Page) -> Response:
    ctx.svc.core.delete_router(ctx.api, check_id(ctx.request.path_params["router_id"],
                                                 "router"))
    ctx.flash("info", "Router deleted.")
    return ctx.redirect("/project/networks/")


@routes.add("POST", "/project/floating_ips/allocate")
@page
def allocate_floating_ip(ctx: Page) -> Response:
    ctx.svc.core.allocate_floating_ip(ctx.api, check_id(ctx.field("network", required=True),
                                                        "network"))
    ctx.flash("info", "Floating IP allocated.")
    return ctx.redirect("/project/networks/")


@routes.add("POST", "/project/floating_ips/{fip_id}/disassociate")
@page
def disassociate_floating_ip(ctx: Page) -> Response:
    ctx.svc.core.disassociate_floating_ip(ctx.api, check_id(
        ctx.request.path_params["fip_id"], "floating IP"))
    ctx.flash("info", "Floating IP disassociated.")
    return ctx.redirect(safe_next(ctx.field("back") or "/project/networks/"))


@routes.add("POST", "/project/floating_ips/{fip_id}/release")
@page
def release_floating_ip(ctx: Page) -> Response:
    ctx.svc.core.release_floating_ip(ctx.api, check_id(ctx.request.path_params["fip_id"],
                                                       "floating IP"))
    ctx.flash("info", "Floating IP released.")
    return ctx.redirect("/project/networks/")


@routes.add("GET", "/project/security_groups/")
@page
def list_security_groups(ctx: Page) -> Response:
    return ctx.render("security_groups.html", section="security_groups",
                      groups=ctx.svc.core.security_groups(ctx.api))


@routes.add("POST", "/project/security_groups/create")
@page
def create_security_group(ctx: Page) -> Response:
    ctx.svc.core.create_security_group(ctx.api, ctx.field("name", required=True),
                                       ctx.field("description"))
    ctx.flash("info", "Security group created.")
    return ctx.redirect("/project/security_groups/")


@routes.add("POST", "/project/security_groups/{group_id}/delete")
@page
def delete_security_group(ctx: Page) -> Response:
    ctx.svc.core.delete_security_group(ctx.api, check_id(
        ctx.request.path_params["group_id"], "security group"))
    ctx.flash("info", "Security group deleted.")
    return ctx.redirect("/project/security_groups/")


@routes.add("POST", "/project/security_groups/{group_id}/rules")
@page
def add_rule(ctx: Page) -> Response:
    """A rule: direction, ether type, protocol, port range, remote prefix."""
    group_id = check_id(ctx.request.path_params["group_id"], "security group")
    direction = ctx.field("direction", default="ingress")
    if direction not in ("ingress", "egress"):
        raise FormError("The direction is ingress or egress.")
    rule: dict[str, Any] = {"direction": direction,
                            "ethertype": ctx.field("ethertype", default="IPv4")}
    protocol = ctx.field("protocol")
    if protocol:
        rule["protocol"] = protocol
    low, high = ctx.field("port_min"), ctx.field("port_max")
    if low:
        rule["port_range_min"] = ctx.int_field("port_min", 0, 65535)
        rule["port_range_max"] = ctx.int_field("port_max", 0, 65535) if high \
            else rule["port_range_min"]
    prefix = ctx.field("remote_ip_prefix")
    if prefix:
        rule["remote_ip_prefix"] = prefix
    ctx.svc.core.add_rule(ctx.api, group_id, rule)
    ctx.flash("info", "Rule added.")
    return ctx.redirect("/project/security_groups/")


@routes.add("POST", "/project/security_group_rules/{rule_id}/delete")
@page
def delete_rule(ctx: Page) -> Response:
    ctx.svc.core.delete_rule(ctx.api, check_id(ctx.request.path_params["rule_id"], "rule"))
    ctx.flash("info", "Rule deleted.")
    return ctx.redirect("/project/security_groups/")
