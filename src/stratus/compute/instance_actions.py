"""Instance actions (Nova's ``os-instance-actions``): one action per server request that
changes a server, with the events that tell how its work went.

A request that changes a server records its action (``record``) in the same transaction
as the change itself, under the request's ``X-Openstack-Request-Id`` (bound to the request
by :class:`RequestBinding`, an ASGI middleware of the compute app). The action gets one
event ``compute_<thing>`` (Nova's names) that is open until the work is done:

- ``task``: the request set a ``task_state`` the agent ends (start, stop, reboot, rebuild,
  resize, createImage, the build): the event closes with ``Success`` when the task is
  over;
- ``report``: the API recorded the change and the agent converges to it without a task
  (interfaces, volumes, fixed IPs, confirmResize): the event closes with ``Success`` at
  the agent's next state report of the server;
- ``delete``: closes when the delete is finished (by the agent's report or in the API).

A report that puts the server in ERROR closes every open event with ``Error`` (the
fault's message is the event's ``details`` from 2.84, its details the admin-only
``traceback``) and marks the action's ``message`` ``Error``, as Nova does. ``settle`` is
the hook the agent report path (``servers.ServerFlow.report``) calls; a finished delete
closes what is still open (``close_all``), and so does the sweep that puts the servers
of a dead host in ERROR (``fail_open``).
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratus.common.auth import AuthContext
from stratus.common.errors import NotFound
from stratus.common.timeutil import utcnow
from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

# the request's state dict (``scope["state"]``, where the request-id middleware puts
# ``request_id``), for the request being served in this context
_STATE: ContextVar[dict[str, Any] | None] = ContextVar("stratus_compute_request_state",
                                                       default=None)

# action name (Nova's nova/compute/instance_actions.py names) -> its event
EVENTS: dict[str, str | None] = {
    "create": "compute__do_build_and_run_instance",
    "delete": "compute_terminate_instance",
    "start": "compute_start_instance",
    "stop": "compute_stop_instance",
    "reboot": "compute_reboot_instance",
    "pause": "compute_pause_instance",
    "unpause": "compute_unpause_instance",
    "suspend": "compute_suspend_instance",
    "resume": "compute_resume_instance",
    "createImage": "compute_snapshot_instance",
    "createBackup": "compute_backup_instance",  # compute/server_backup.py
    "rebuild": "compute_rebuild_instance",
    "resize": "compute_resize_instance",
    "confirmResize": "compute_confirm_resize",
    "revertResize": "compute_revert_resize",
    "attach_interface": "compute_attach_interface",
    "detach_interface": "compute_detach_interface",
    "attach_volume": "compute_attach_volume",
    "detach_volume": "compute_detach_volume",
    "addFixedIp": "compute_add_fixed_ip_to_instance",
    "removeFixedIp": "compute_remove_fixed_ip_from_instance",
    "injectNetworkInfo": "compute_inject_network_info",  # compute/admin_actions.py
    "resetState": None,  # Nova records it with no event
    "lock": None, "unlock": None,  # compute/server_lock.py (the API alone: no event)
}
# the API's action names that Nova records under another name
ACTION_NAMES = {"os-start": "start", "os-stop": "stop"}


class RequestBinding:
    """ASGI middleware: makes the request's state (and so its request id, which the
    request-id middleware sets in it) visible to the service layer of this request, and
    answers the id under Nova's own header too (``x-compute-request-id``, which Tempest
    reads to find a server's create action). Added outside the request-id middleware;
    both share the one ``scope["state"]``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        token = _STATE.set(state)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start" and state.get("request_id"):
                message = {**message, "headers": [
                    *message.get("headers", []),
                    (b"x-compute-request-id", str(state["request_id"]).encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _STATE.reset(token)


def request_id() -> str:
    """The id of the request being served (``req-<uuid>``); a fresh one outside a request
    (the service layer called directly)."""
    state = _STATE.get()
    found = state.get("request_id") if state is not None else None
    return str(found) if found else f"req-{uuid.uuid4()}"


def record(s: Session, ctx: AuthContext, srv: m.Server, action: str,
           now: datetime | None = None) -> m.InstanceAction:
    """Record ``action`` of the current request on ``srv`` with its open event; call it in
    the request's own transaction, after the change (the server's ``task_state`` tells
    whether the event waits for a task or for the agent's report)."""
    name = ACTION_NAMES.get(action, action)
    now = now or utcnow()
    s.flush()  # a new server row first (the action refers to it)
    row = m.InstanceAction(server_id=srv.id, request_id=request_id(), action=name,
                           project_id=ctx.project_id or srv.project_id, user_id=ctx.user_id,
                           message=None, start_time=now, updated_at=now)
    s.add(row)
    s.flush()
    event = EVENTS[name]
    if event is None:  # done at once (resetState)
        return row
    awaits = "delete" if name == "delete" else "task" if srv.task_state else "report"
    s.add(m.InstanceActionEvent(action_id=row.id, server_id=srv.id, event=event,
                                awaits=awaits, host=srv.host, start_time=now))
    return row


def _open(s: Session, sid: str) -> list[m.InstanceActionEvent]:
    return list(s.scalars(sa.select(m.InstanceActionEvent).where(
        m.InstanceActionEvent.server_id == sid,
        m.InstanceActionEvent.finish_time.is_(None)).order_by(m.InstanceActionEvent.id)))


def _close(s: Session, ev: m.InstanceActionEvent, srv: m.Server, ok: bool,
           now: datetime, details: str | None = None) -> None:
    """Finish ``ev``: Success, or Error with ``details`` (else the server's fault)."""
    ev.finish_time, ev.result = now, "Success" if ok else "Error"
    ev.host = ev.host or srv.host
    action = s.get(m.InstanceAction, ev.action_id)
    if action is not None:
        action.updated_at = now
    if not ok:
        fault = srv.fault or {}
        ev.details = details or str(fault.get("message") or "The server went to ERROR.")
        ev.traceback = None if details else (str(fault.get("details") or "") or None)
        if action is not None:
            action.message = "Error"


def settle(s: Session, srv: m.Server, reported: bool, failed: bool) -> None:
    """Close the server's open events a change ended (in that change's transaction):
    all with ``Error`` when it ``failed`` the server (an agent's report of ERROR, a build
    the API failed); else the task events once no task is left, and the report events
    once the agent ``reported`` a state."""
    now = utcnow()
    for ev in _open(s, srv.id):
        if failed:
            _close(s, ev, srv, False, now)
        elif srv.task_state is None and (ev.awaits == "task"
                                         or (ev.awaits == "report" and reported)):
            _close(s, ev, srv, True, now)


def abandon(s: Session, srv: m.Server, details: str) -> None:
    """The API gave up the server's task before the agent had it (createImage refused by
    the image API): its open task events end with ``Error``."""
    now = utcnow()
    for ev in _open(s, srv.id):
        if ev.awaits == "task":
            _close(s, ev, srv, False, now, details)


def fail_open(s: Session, sid: str, host: str | None, details: str) -> None:
    """The heartbeat sweep put the server in ERROR (its host stopped reporting): every
    open event ends with ``Error`` and ``details``."""
    now = utcnow()
    for ev in _open(s, sid):
        ev.finish_time, ev.result, ev.details = now, "Error", details
        ev.host = ev.host or host
        action = s.get(m.InstanceAction, ev.action_id)
        if action is not None:
            action.updated_at, action.message = now, "Error"
    s.flush()  # the sweep expires the session's objects next


def close_all(s: Session, srv: m.Server) -> None:
    """A finished delete: its event succeeds, the work still open of other actions (a
    build, a task) ends with ``Error``."""
    now = utcnow()
    for ev in _open(s, srv.id):
        if ev.awaits == "delete":
            _close(s, ev, srv, True, now)
        else:
            _close(s, ev, srv, False, now, "The server was deleted before this finished.")


@dataclass
class ActionQuery:
    """What a listing asks for (2.58: marker, limit, changes-since; 2.66:
    changes-before); the page is cut by the handler."""

    deleted_ok: bool = False  # from 2.21 a deleted server's actions are shown
    changes_since: datetime | None = None
    changes_before: datetime | None = None


@dataclass
class Shown:
    """One action with its events (in start order) and the server's project and host."""

    action: m.InstanceAction
    events: list[m.InstanceActionEvent] = field(default_factory=list)


class InstanceActions:
    """``ComputeCore.instance_actions``: reading a server's actions."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    def _server(self, s: Session, ctx: AuthContext, sid: str, deleted_ok: bool) -> m.Server:
        srv = s.get(m.Server, sid)
        if srv is None or (srv.deleted and not deleted_ok) \
                or not (ctx.is_admin or srv.project_id == ctx.project_id):
            raise NotFound(f"Instance {sid} could not be found.")
        return srv

    def list(self, ctx: AuthContext, sid: str, query: ActionQuery) -> list[m.InstanceAction]:
        """The server's actions, newest first, within the time filters."""
        with self.core.db.session() as s:
            self._server(s, ctx, sid, query.deleted_ok)
            stmt = sa.select(m.InstanceAction).where(m.InstanceAction.server_id == sid)
            if query.changes_since is not None:
                stmt = stmt.where(m.InstanceAction.updated_at >= query.changes_since)
            if query.changes_before is not None:
                stmt = stmt.where(m.InstanceAction.updated_at <= query.changes_before)
            stmt = stmt.order_by(m.InstanceAction.start_time.desc(), m.InstanceAction.id.desc())
            rows = list(s.scalars(stmt))
            s.expunge_all()
            return rows

    def show(self, ctx: AuthContext, sid: str, req_id: str, deleted_ok: bool) -> Shown:
        """One action by its request id (the newest, should a client have reused one), with
        its events; 404 when the server has none of that id."""
        with self.core.db.session() as s:
            self._server(s, ctx, sid, deleted_ok)
            action = s.scalars(sa.select(m.InstanceAction).where(
                m.InstanceAction.server_id == sid, m.InstanceAction.request_id == req_id,
            ).order_by(m.InstanceAction.id.desc())).first()
            if action is None:
                raise NotFound(f"Action for request_id {req_id} on instance {sid} not "
                               "found")
            events = list(s.scalars(sa.select(m.InstanceActionEvent).where(
                m.InstanceActionEvent.action_id == action.id).order_by(
                m.InstanceActionEvent.id)))
            s.expunge_all()
            return Shown(action, events)
