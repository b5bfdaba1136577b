"""Reading servers: the filtered listing, one server with what its view shows (ports,
host state, floating IPs), its metadata, ports and password.

Reads first fail the servers stuck on dead hosts (``expire_dead_builds``), so a reader
never sees a build that can no longer finish.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.compute import models as m
from stratus.compute.volumes import volumes_of

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore
    from stratus.compute.downstream import Downstream

LOG = logging.getLogger("stratus.compute")


@dataclass
class ServerShown:
    """One server and what its view needs."""

    server: m.Server
    ports: list[m.ServerPort]
    host_state: str | None = None  # UP, DOWN, MAINTENANCE or "" (for admins only)
    floating: dict[str, list[str]] = field(default_factory=dict)  # port id -> addresses
    volumes: list[m.BlockDeviceMapping] = field(default_factory=list)  # compute/volumes.py


@dataclass
class ServerQuery:
    """A parsed server listing: which rows, filtered how.

    The servers of ``project`` (of every project with ``all_projects``), deleted or not
    (``deleted``); ``changes_since`` also brings the servers deleted since then (of
    ``deleted_project``, or every project's with ``deleted_all_projects``) unless
    ``deleted`` lists the deleted ones anyway. ``keep`` filters rows in Python (name,
    status, host, image, flavor, zone); ``ip`` matches any fixed address of the server.
    """

    project: str | None
    all_projects: bool = False
    deleted: bool = False
    changes_since: datetime | None = None
    deleted_project: str | None = None
    deleted_all_projects: bool = False
    keep: Callable[[m.Server], bool] | None = None
    ip: re.Pattern[str] | None = None


@dataclass
class ServerPage:
    """A page of servers; ``ports``, ``host_states`` and ``floating`` are filled when
    the listing is detailed."""

    servers: list[m.Server]
    more: bool
    ports: dict[str, list[m.ServerPort]] = field(default_factory=dict)
    host_states: dict[str, str] = field(default_factory=dict)
    floating: dict[str, list[str]] = field(default_factory=dict)
    volumes: dict[str, list[m.BlockDeviceMapping]] = field(default_factory=dict)

    def host_state(self, srv: m.Server) -> str:
        """UP, DOWN or MAINTENANCE of the server's host ("" without one)."""
        return self.host_states.get(srv.host or "", "")


class ServerReads:
    """Part of :class:`stratus.compute.servers.ServerFlow`: reading servers."""

    core: ComputeCore
    ds: Downstream

    def _ports(self, s: Session, sid: str) -> list[m.ServerPort]:
        return list(s.scalars(sa.select(m.ServerPort).where(m.ServerPort.server_id == sid)))

    def _host_states(self, s: Session) -> dict[str, str]:
        core = self.core
        return {h.host: ("UP" if core.alive(h) else "DOWN") if h.enabled else "MAINTENANCE"
                for h in s.scalars(sa.select(m.ComputeHost))}

    def _floating(self, port_ids: list[str]) -> dict[str, list[str]]:
        """Floating IPs of these ports from the network API; none shown when it fails."""
        try:
            return self.ds.floating_map(port_ids)
        except ServiceError as exc:
            LOG.warning("floating IPs cannot be read: %s", exc)
            return {}

    def _shown(self, s: Session, ctx: AuthContext, srv: m.Server) -> ServerShown:
        """What the view of ``srv`` needs but its floating IPs (read after the session)."""
        state = self._host_states(s).get(srv.host or "", "") if ctx.is_admin else None
        return ServerShown(srv, self._ports(s, srv.id), state,
                           volumes=volumes_of(s, [srv.id]).get(srv.id, []))

    def _with_floating(self, shown: ServerShown) -> ServerShown:
        shown.floating = self._floating([p.port_id for p in shown.ports])
        return shown

    def show(self, ctx: AuthContext, sid: str) -> ServerShown:
        with self.core.db.session() as s:
            self.core.expire_dead_builds(s)
            shown = self._shown(s, ctx, self.core.server(s, ctx, sid))
        return self._with_floating(shown)

    def page(self, ctx: AuthContext, query: ServerQuery,
             paginate: Callable[[list[m.Server]], tuple[list[m.Server], bool]],
             detail: bool) -> ServerPage:
        """The servers ``query`` selects, newest first, cut by ``paginate`` (which raises
        for a marker it does not find: nothing is then written)."""
        stmt = sa.select(m.Server)
        if not query.all_projects:
            stmt = stmt.where(m.Server.project_id == query.project)
        stmt = stmt.where(m.Server.deleted.is_(query.deleted))
        if query.changes_since is not None:
            stmt = stmt.where(m.Server.updated_at >= query.changes_since)
        with self.core.db.session() as s:
            self.core.expire_dead_builds(s)
            rows = list(s.scalars(stmt.order_by(m.Server.created_at.desc(),
                                                m.Server.id.desc())))
            if query.changes_since is not None and not query.deleted:
                rows += list(s.scalars(sa.select(m.Server).where(
                    m.Server.deleted.is_(True), m.Server.updated_at >= query.changes_since,
                    *([m.Server.project_id == query.deleted_project]
                      if not query.deleted_all_projects else []))))
            if query.keep is not None:
                rows = [r for r in rows if query.keep(r)]
            if query.ip is not None:
                ip_re = query.ip
                with_ip = {a.server_id for a in s.scalars(sa.select(m.ServerAddress))
                           if ip_re.search(a.ip_address)}
                rows = [r for r in rows if r.id in with_ip]
            rows, more = paginate(rows)
            page = ServerPage(rows, more)
            if detail:
                if ctx.is_admin:
                    page.host_states = self._host_states(s)
                for r in rows:
                    page.ports[r.id] = self._ports(s, r.id)
                page.volumes = volumes_of(s, [r.id for r in rows])
                port_ids = list(s.scalars(sa.select(m.ServerPort.port_id).where(
                    m.ServerPort.server_id.in_([r.id for r in rows])))) if rows else []
        if detail and rows:
            page.floating = self._floating(port_ids)
        return page

    def metadata(self, ctx: AuthContext, sid: str) -> dict[str, str]:
        with self.core.db.session() as s:
            return dict(self.core.server(s, ctx, sid).meta)

    def with_ports(self, ctx: AuthContext, sid: str) -> tuple[m.Server, list[m.ServerPort]]:
        """The server and its ports (os-interface, ips)."""
        with self.core.db.session() as s:
            srv = self.core.server(s, ctx, sid)
            return srv, self._ports(s, srv.id)

    def password(self, ctx: AuthContext, sid: str) -> str | None:
        """The encrypted password blob the guest posted, if any."""
        with self.core.db.session() as s:
            return self.core.server(s, ctx, sid).password

