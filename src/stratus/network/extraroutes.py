"""Router extra routes (``extraroute``, ``extraroute-atomic``): the atomic
``add_extraroutes`` / ``remove_extraroutes`` actions beside the ``routes`` attribute a
router PUT replaces (``routers.py``, whose ``parse_routes`` validates both: each nexthop
on one of the router's subnets).

``add`` keeps the routes the router has and adds those not there yet; ``remove`` drops
those given (ones the router lacks are ignored), as Neutron does. At most
``MAX_ROUTES`` (Neutron's ``max_routes``). The routes reach the network nodes in the
host-state document (``Router.routes``) and the agent installs them in the router's
namespace (``agent/network/drivers/router.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest
from stratus.common.timeutil import utcnow
from stratus.network import ipam, views
from stratus.network.routers import parse_routes

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore

MAX_ROUTES = 30


def _key(route: dict[str, str]) -> tuple[str, str]:
    return route["destination"], route["nexthop"]


def check_count(routes: list[dict[str, str]]) -> None:
    if len(routes) > MAX_ROUTES:
        raise BadRequest(f"Invalid input for routes: {len(routes)} routes exceed the maximum "
                         f"of {MAX_ROUTES} per router.")


def change_routes(core: NetworkCore, ctx: AuthContext, router_id: str, body: Any,
                  add: bool) -> dict[str, Any]:
    """Add (or remove) the routes of ``{"router": {"routes": [...]}}``; the router view."""
    obj = views.entity(body, "router")
    views.only(obj, {"routes"}, "router")
    if not isinstance(obj.get("routes"), list):
        raise BadRequest("Invalid input for routes. Reason: a list of {destination, nexthop} "
                         "objects is expected under router.routes.")

    def work(s: Session) -> dict[str, Any]:
        r = core.router(s, ctx, router_id)
        core.require_member(ctx, "update_router")
        have = [dict(x) for x in r.routes]
        if add:
            given = parse_routes(core, s, r, obj["routes"])
            new = list(have)
            for route in given:
                if _key(route) not in {_key(x) for x in new}:
                    new.append(route)
        else:
            given = [_shape(x) for x in obj["routes"]]
            drop = {_key(x) for x in given}
            new = [x for x in have if _key(x) not in drop]
        check_count(new)
        if new != have:
            r.routes = new
            r.updated_at = utcnow()
            r.revision_number += 1
            s.flush()
        return views.routers(s, [r])[0]

    return core.transaction(work)


def _shape(item: Any) -> dict[str, str]:
    """A route to remove: only its shape is checked (the nexthop need not be attached)."""
    if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
        raise BadRequest(f"Invalid input for routes. Reason: {item!r} must have exactly "
                         "'destination' and 'nexthop'.")
    dest = ipam.parse_cidr(item["destination"], "route destination", None)
    return {"destination": str(dest),
            "nexthop": str(ipam.parse_ip(item["nexthop"], "route nexthop", dest.version))}
