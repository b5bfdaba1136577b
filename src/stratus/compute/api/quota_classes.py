"""os-quota-class-sets (admin): a quota class's limits; the ``default`` class's are the
quotas of every project without its own, changed by PUT and kept in the database.

Per microversion as Nova: below 2.50 the network quotas (floating_ips, fixed_ips,
security_groups, security_group_rules) and no server-group quotas; from 2.50 server_groups
and server_group_members instead; from 2.57 no injected_file* limits. The network and
injected_file* limits are not enforced by Stratus: shown with Nova's defaults, and a value
given for them is kept and shown back (as Nova keeps it)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.compute import views
from stratus.compute.api.quotas import NETWORK_QUOTAS
from stratus.compute.core import ComputeCore
from stratus.compute.quota_classes import QuotaClasses
from stratus.compute.quotas import FIXED_LIMITS, QUOTA_RESOURCES

routes = Routes()
P = "/v2.1/os-quota-class-sets/{id}"
SERVER_GROUP_QUOTAS = ("server_groups", "server_group_members")
UNENFORCED = {**NETWORK_QUOTAS, **FIXED_LIMITS}  # shown, kept, not enforced


def shaped(req: Req, limits: dict[str, int], name: str | None) -> dict[str, Any]:
    """The class's limits as Nova shows them at the request's microversion (``id`` only in
    a show)."""
    v = views.mv(req)
    out: dict[str, Any] = {} if name is None else {"id": name}
    shown = [r for r in QUOTA_RESOURCES if v >= (2, 50) or r not in SERVER_GROUP_QUOTAS]
    shown += [*NETWORK_QUOTAS] if v < (2, 50) else []
    shown += [*FIXED_LIMITS] if v < (2, 57) else []
    out.update((res, limits[res]) for res in shown)
    return {"quota_class_set": out}


def class_name(req: Req) -> str:
    name = req.params["id"]
    if not 1 <= len(name) <= 255:
        raise BadRequest("The quota class name must be 1 to 255 characters long.")
    return name


@routes.add("GET", P)
def show_quota_class_set(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-quota-class-sets:show")
    name = class_name(req)
    return shaped(req, QuotaClasses(svc).show(name, UNENFORCED), name)


@routes.add("PUT", P)
def update_quota_class_set(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """Change some of the class's limits (integers from -1, -1 unlimited); the network
    quotas (below 2.50) and injected_file* (below 2.57) are kept to be shown back, not
    enforced."""
    svc.require_admin(req.ctx, "os_compute_api:os-quota-class-sets:update")
    name = class_name(req)
    data = views.obj(req.body, "quota_class_set")
    v = views.mv(req)
    allowed = (set(NETWORK_QUOTAS) if v < (2, 50) else set()) | (
        set(FIXED_LIMITS) if v < (2, 57) else set())
    views.only(data, {*QUOTA_RESOURCES, *allowed}, "quota_class_set")
    values = {r: views.integer(data, r, minimum=-1) for r in data}
    return shaped(req, QuotaClasses(svc).update(name, values, UNENFORCED), None)
