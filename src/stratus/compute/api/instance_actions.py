"""``os-instance-actions``: the actions recorded on a server (``compute/instance_actions.py``)
and one action with its events.

Policies as Nova's: ``os_compute_api:os-instance-actions:list`` and ``:show`` (a reader of
the server's project, or an admin), ``:events`` (admin: the events below 2.51, and from
then their ``traceback`` and, from 2.62, ``host``), ``:events:details`` (admin: the
events' ``details`` from 2.84). From 2.21 a deleted server's actions are shown too.
"""

from __future__ import annotations

from typing import Any

from stratus.common import policy
from stratus.common.app import Req, Routes
from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Forbidden
from stratus.common.listing import href
from stratus.compute import views
from stratus.compute.api.servers import parse_time
from stratus.compute.core import ComputeCore
from stratus.compute.instance_actions import ActionQuery

routes = Routes()
P = "/v2.1/servers/{id}/os-instance-actions"
RULE = "os_compute_api:os-instance-actions:{}"
MAX_LIMIT = 1000  # Nova's [api] max_limit


def _require(ctx: AuthContext, name: str) -> None:
    rule = RULE.format(name)
    if not policy.permits(ctx, rule, policy.has_role(ctx, "reader")):
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def _query(req: Req) -> tuple[ActionQuery, str | None, int | None]:
    """The listing's filters, marker and limit (2.58; changes-before 2.66); below 2.58
    the query is ignored, as Nova's."""
    v = views.mv(req)
    query = ActionQuery(deleted_ok=v >= (2, 21))
    if v < (2, 58):
        return query, None, None
    q = req.query
    allowed = ["limit", "marker", "changes-since"] + (["changes-before"] if v >= (2, 66)
                                                        else [])
    extra = sorted(set(q) - set(allowed))
    if extra:
        raise BadRequest(f"Invalid input for query parameters: additional properties are "
                         f"not allowed ({', '.join(extra)} unexpected); allowed: "
                         f"{', '.join(allowed)}.")
    for key in allowed:
        if len(q.getlist(key)) > 1:
            raise BadRequest(f"Invalid input for query parameters {key}: it may be given "
                             "once.")
    limit = None
    if "limit" in q:
        raw = q["limit"]
        if not raw.isdigit():
            raise BadRequest(f"Invalid input for query parameters limit: {raw!r} is not a "
                             "non-negative integer.")
        limit = min(int(raw), MAX_LIMIT)
    if "changes-since" in q:
        query.changes_since = parse_time(q["changes-since"], "changes-since")
    if "changes-before" in q:
        query.changes_before = parse_time(q["changes-before"], "changes-before")
    if query.changes_since and query.changes_before \
            and query.changes_before < query.changes_since:
        raise BadRequest("The value of changes-since must be less than or equal to "
                         "changes-before.")
    return query, q.get("marker"), limit


@routes.add("GET", P)
def list_actions(req: Req, svc: ComputeCore) -> dict[str, Any]:
    ctx = req.ctx
    _require(ctx, "list")
    sid = req.params["id"]
    query, marker, limit = _query(req)
    rows = svc.instance_actions.list(ctx, sid, query)
    rows, _ = views.LISTER.page(rows, marker, None, id_of=_request_id)
    if limit is not None:
        rows = rows[:limit]
    v = views.mv(req)
    body: dict[str, Any] = {"instanceActions": [views.instance_action(a, v) for a in rows]}
    if v >= (2, 58) and limit and len(rows) == limit:  # Nova's rule for a next link
        body["links"] = [{"rel": "next", "href": href(
            f"{views.root(req)}/v2.1/servers/{sid}/os-instance-actions", req.query,
            ("marker",), [("marker", rows[-1].request_id)])}]
    return body


def _request_id(row: Any) -> str:
    return str(row.request_id)


@routes.add("GET", P + "/{request_id}")
def show_action(req: Req, svc: ComputeCore) -> dict[str, Any]:
    ctx = req.ctx
    _require(ctx, "show")
    v = views.mv(req)
    shown = svc.instance_actions.show(ctx, req.params["id"], req.params["request_id"],
                                      deleted_ok=v >= (2, 21))
    body = views.instance_action(shown.action, v)
    privileged = policy.permits(ctx, RULE.format("events"), ctx.is_admin)
    details = v >= (2, 84) and policy.permits(ctx, RULE.format("events:details"),
                                              ctx.is_admin)
    if privileged or v >= (2, 51):
        body["events"] = [views.action_event(ev, shown.action.project_id, v, privileged,
                                             details) for ev in shown.events]
    return {"instanceAction": body}
