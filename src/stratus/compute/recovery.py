"""Crash recovery of the compute API: builds and deletes no live request owns, and ports
left in the network API for servers that no longer want them.

Every multi-step operation that crosses into the network API is recorded before it
acts: the server's row says which step it is in (``task_state`` ``scheduling``,
``networking`` or ``deleting``) and which API process works on it (``owner`` in the
row's ``scheduling`` document: ``<hostname>:<pid>:<process start time>``, set in the
same transaction that enters the step and dropped when the step hands the server to
its agent). :func:`recover` runs at start and then every ``[compute]
recovery_interval`` seconds (:func:`start`); it takes over (a conditional UPDATE, so
only one process does) every such server whose owner is not alive — on this host: no
process with that pid and start time; on another host: no change for
``recovery_stale_after`` seconds — and finishes it:

- ``scheduling``: schedule it again, then make (or re-bind) its ports;
- ``networking``: the ports the network API holds for it (found by ``device_id``) that
  the row does not record are dropped, then the ports are made again (or the recorded
  ones bound to its host) and the server goes to its agent (``spawning``);
- ``deleting`` (a delete the API itself was finishing): the delete is finished;
- ``image_snapshot`` (a createImage between asking the image API and recording the
  snapshot): the queued image made for the server (``instance_uuid``) is recorded and
  the agent uploads it; none was made: the server goes back to no task.

A step that cannot be finished fails the server: ERROR with a fault saying why, its
host claim released and its ports dropped; its quota stays counted until it is deleted.
While the network or image API cannot be reached the step stays as it is, owned by the
process that took it over, which tries again on each pass (for at most
``recovery_stale_after`` seconds, then it fails the server).
:func:`sweep_ports` drops ports of ``compute:*`` owners whose server is deleted, or
whose server no longer builds and does not record them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.clients import ServiceError
from stratus.common.timeutil import utcnow
from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

LOG = logging.getLogger("stratus.compute.recovery")
OWNER = "owner"
SNAPSHOT_STEP = "image_snapshot"  # createImage: between asking the image API and recording
STEPS = ("scheduling", "networking", "deleting", SNAPSHOT_STEP)
COMPUTE_OWNER = "compute:"
# Server id -> when (monotonic) this process first found the network or image API down
# while finishing the server's step; it tries again on each pass, for at most
# ``stale_after`` seconds, then fails the server.
_WAITING: dict[str, float] = {}

__all__ = ["Outcome", "owned", "owner_alive", "process_token", "recover", "released",
           "start", "sweep_ports"]


def _start_time(pid: int) -> str:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22); ""
    when there is no such process (or no /proc), or it is already dead: a zombie not yet
    reaped or exiting (a killed service's worker lingers so)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return "" if fields[0] in ("Z", "X", "x") else fields[19]
    except (OSError, IndexError):
        return ""


def process_token() -> str:
    """This process as an owner of a step: ``<hostname>:<pid>:<start time>``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def owned(sched: dict[str, Any] | None) -> dict[str, Any]:
    """The row's ``scheduling`` document with this process as the owner of its step."""
    return {**(sched or {}), OWNER: process_token()}


def released(sched: dict[str, Any] | None) -> dict[str, Any]:
    """The row's ``scheduling`` document with no owner (the agent's turn, or done)."""
    return {k: v for k, v in (sched or {}).items() if k != OWNER}


def owner_alive(owner: Any, updated_at: datetime, stale_after: float,
                now: datetime | None = None) -> bool:
    """Whether the process named by ``owner`` may still be working on the step. On this
    host that is exact (the pid runs and started when the token says); elsewhere (or for
    a row without an owner) the step counts as alive until it is ``stale_after`` seconds
    old."""
    if isinstance(owner, str) and owner.count(":") >= 2:
        host, pid, start = owner.rsplit(":", 2)
        if host == socket.gethostname() and pid.isdigit():
            if start:
                return _start_time(int(pid)) == start
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
    return (now or utcnow()) - updated_at < timedelta(seconds=stale_after)


@dataclass
class Outcome:
    """What one recovery pass did (server ids)."""

    resumed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    ports_dropped: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # for the network or image API

    def __bool__(self) -> bool:
        return bool(self.resumed or self.failed or self.deleted or self.ports_dropped
                    or self.waiting)


def _take_over(core: ComputeCore, sid: str, task: str, updated: datetime,
               sched: dict[str, Any] | None) -> bool:
    """Make this process the owner of the server's step, if nobody changed it since it was
    read (one conditional UPDATE: of several processes, one wins)."""
    t = cast(sa.Table, m.Server.__table__)

    def work(s: Session) -> bool:
        done = s.execute(sa.update(t).where(
            t.c.id == sid, t.c.deleted.is_(False), t.c.task_state == task,
            t.c.updated_at == updated).values(scheduling=owned(sched), updated_at=utcnow()))
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    return core.transaction(work)


def recover(core: ComputeCore, stale_after: float = 600.0) -> Outcome:
    """One pass over the servers in a step no live process owns (see the module text)."""
    out = Outcome()
    now = utcnow()
    with core.db.session() as s:
        rows = [(r.id, r.task_state, r.updated_at, dict(r.scheduling or {}))
                for r in s.scalars(sa.select(m.Server).where(
                    m.Server.deleted.is_(False), m.Server.task_state.in_(STEPS)))]
    me = process_token()
    for sid, task, updated, sched in rows:
        owner = sched.get(OWNER)
        if task == "deleting" and not owner:
            continue  # the host's agent deletes it (or the dead-host sweep/a new delete)
        if not (sid in _WAITING and owner == me):  # else: taken over, to be tried again
            if owner_alive(owner, updated, stale_after, now):
                continue
            if not _take_over(core, sid, str(task), updated, sched):
                continue
            LOG.warning("server %s: taking over its %s step (owner %s is gone)", sid, task,
                        owner or "unknown")
        try:
            if task == "deleting":
                core.servers.finalize_delete(sid)
                out.deleted.append(sid)
            elif task == SNAPSHOT_STEP:
                core.servers.resume_snapshot(sid)
                out.resumed.append(sid)
            elif core.servers.resume(sid):
                out.resumed.append(sid)
            else:
                out.failed.append(sid)
        except Exception as exc:  # one server's trouble must not stop the pass
            tick = time.monotonic()
            waited = tick - _WAITING.setdefault(sid, tick)
            if isinstance(exc, ServiceError) and exc.temporary and waited < stale_after:
                LOG.warning("server %s: its %s step waits for a service: %s", sid, task, exc)
                out.waiting.append(sid)
                continue
            _WAITING.pop(sid, None)
            if isinstance(exc, ServiceError):
                LOG.warning("server %s: recovery of its %s step failed: %s", sid, task, exc)
            else:
                LOG.exception("server %s: recovery of its %s step failed", sid, task)
            core.servers.fail(sid, f"The compute API stopped while the server was in task "
                                   f"{task}, and the step could not be finished: "
                                   f"{type(exc).__name__}: {exc}", release_claim=True)
            out.failed.append(sid)
        else:
            _WAITING.pop(sid, None)
    return out


def sweep_ports(core: ComputeCore, out: Outcome | None = None) -> Outcome:
    """Drop the ``compute:*`` ports of the network API whose server is deleted, or whose
    server is not building and does not record them (a step that died between making a
    port and recording it). A port naming a server this API never had is left alone."""
    out = out or Outcome()
    ports = [p for p in core.downstream.list_ports(None)
             if str(p.get("device_owner") or "").startswith(COMPUTE_OWNER) and p.get("device_id")]
    if not ports:
        return out
    ids = list({str(p["device_id"]) for p in ports})
    with core.db.session() as s:
        servers = {r.id: (r.deleted, r.task_state, list((r.scheduling or {}).get("specs", [])))
                   for r in s.scalars(sa.select(m.Server).where(m.Server.id.in_(ids)))}
        recorded = set(s.scalars(sa.select(m.ServerPort.port_id).where(
            m.ServerPort.server_id.in_(ids))))
    stray = []
    for p in ports:
        found = servers.get(str(p["device_id"]))
        if found is None or p["id"] in recorded:
            continue
        deleted, task, specs = found
        if not deleted and task in ("scheduling", "networking"):
            continue  # its build is making it right now (or recovery will)
        given = {x.get("port_id") for x in specs}
        stray.append({"port_id": p["id"], "created_by_us": p["id"] not in given})
        LOG.warning("port %s of %s server %s is not recorded: dropping it", p["id"],
                    "deleted" if deleted else "the", p["device_id"])
    core.servers.drop_ports(stray)
    out.ports_dropped.extend(x["port_id"] for x in stray)
    return out


def start(core: ComputeCore, interval: float, stale_after: float) -> threading.Thread:
    """Run :func:`recover` and :func:`sweep_ports` now and then every ``interval`` seconds
    (only now when it is 0) in a daemon thread of this process."""
    def loop() -> None:
        halt = threading.Event()
        while True:
            try:
                done = recover(core, stale_after)
                sweep_ports(core, done)
                if done:
                    LOG.warning("recovery: resumed %s, failed %s, deleted %s, ports dropped %s",
                                done.resumed, done.failed, done.deleted, done.ports_dropped)
            except ServiceError as exc:
                LOG.warning("recovery pass incomplete (will retry): %s", exc)
            except Exception:
                LOG.exception("recovery pass failed")
            if interval <= 0:
                return
            halt.wait(interval)

    thread = threading.Thread(target=loop, name="compute-recovery", daemon=True)
    thread.start()
    return thread
