"""Nova's ``POST /v2.1/os-server-external-events`` (admin): events other services send
about servers (service layer: ``compute/external_events.py``).

The request is checked as Nova's schema checks it: ``events`` a non-empty list of
objects with ``name`` (one of the names the request's microversion knows), ``server_uuid``,
and optionally ``status`` (``completed`` by default, ``failed``, ``in-progress``) and
``tag``; anything else is a 400 naming the field. The answer lists every event with its
``code``: 200 when all were accepted, 207 when some were not, 404 when none were.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import views
from stratus.compute.core import ComputeCore
from stratus.compute.external_events import Event, deliver

routes = Routes()

# event names by the microversion that introduced them (Nova's)
NAMES: dict[str, tuple[int, int]] = {
    "network-changed": (2, 1), "network-vif-plugged": (2, 1),
    "network-vif-unplugged": (2, 1), "network-vif-deleted": (2, 1),
    "volume-extended": (2, 51), "power-update": (2, 76),
    "accelerator-request-bound": (2, 82), "volume-reimaged": (2, 93),
}
STATUSES = ("failed", "completed", "in-progress")


def parse(body: Any, v: tuple[int, int]) -> list[Event]:
    """The request's events, or a 400 that says what is wrong and what is allowed."""
    if not isinstance(body, dict) or set(body) != {"events"}:
        raise BadRequest("Invalid input for field/attribute events: the body must be "
                         "{\"events\": [...]} and nothing else.")
    raw = body["events"]
    if not isinstance(raw, list) or not raw:
        raise BadRequest("Invalid input for field/attribute events: a non-empty list of "
                         "events is required.")
    names = sorted(n for n, since in NAMES.items() if v >= since)
    events = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadRequest("Invalid input for field/attribute events: each event is an "
                             "object.")
        extra = set(item) - {"name", "server_uuid", "status", "tag"}
        if extra:
            raise BadRequest(f"Additional properties are not allowed ({', '.join(sorted(extra))} "
                             "was unexpected)")
        name = item.get("name")
        if name not in names:
            raise BadRequest(f"Invalid input for field/attribute name. Value: {name!r}. "
                             f"Allowed at this microversion: {', '.join(names)}")
        server = item.get("server_uuid")
        if not isinstance(server, str) or not server.strip() or len(server) > 36:
            raise BadRequest(f"Invalid input for field/attribute server_uuid. Value: "
                             f"{server!r}. A server id is required.")
        status = item.get("status", "completed")
        if status not in STATUSES:
            raise BadRequest(f"Invalid input for field/attribute status. Value: {status!r}. "
                             f"Allowed: {', '.join(STATUSES)}")
        tag = item.get("tag")
        if tag is not None and (not isinstance(tag, str) or len(tag) > 255):
            raise BadRequest(f"Invalid input for field/attribute tag. Value: {tag!r}. "
                             "A string of at most 255 characters.")
        events.append(Event(name, server, status, tag))
    return events


def view(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"name": event.name, "server_uuid": event.server_uuid,
                           "status": event.status, "code": event.code}
    if event.tag is not None:
        out["tag"] = event.tag
    return out


@routes.add("POST", "/v2.1/os-server-external-events")
def create_events(req: Req, svc: ComputeCore) -> JSONResponse:
    svc.require_admin(req.ctx, "os_compute_api:os-server-external-events:create")
    events = deliver(svc, parse(req.body, views.mv(req)))
    if all(e.code != 200 for e in events):
        raise NotFound("No instances found for any event")
    code = 200 if all(e.code == 200 for e in events) else 207
    return JSONResponse({"events": [view(e) for e in events]}, status_code=code)
