"""Remote consoles (Nova's consoleauth model): where each server's VNC display is, and
the one-time tokens the novncproxy trades for it.

- ``record`` keeps the display the host's agent reports (``vnc`` in a server report);
- ``issue`` makes a token for one server: random, only its SHA-256 stored, expiring
  after ``[compute] console_token_ttl`` seconds; the URL carries the token and the
  server id for the noVNC client served by ``stratus-novncproxy``;
- ``consume`` is the proxy's check: the token exists, is not expired, is for that
  server and was never used; one conditional UPDATE spends it, so two proxies racing
  with one token cannot both win; the answer is where to connect.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.common.timeutil import utcnow
from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

__all__ = ["PROTOCOLS", "Consoles", "token_hash"]

# protocol -> the console types of it this cloud serves (Nova's names)
PROTOCOLS = {"vnc": ("novnc",)}
NOVA_PROTOCOLS = ("vnc", "spice", "rdp", "serial", "mks")
TOKEN_BYTES = 24


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256 (hex)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Consoles:
    """The compute API's consoles (``core.consoles``)."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    # ---- the agent's report ------------------------------------------------------------

    @staticmethod
    def record(s: Session, server_id: str, host: str, vnc: dict[str, Any] | None) -> None:
        """Keep (or forget, when ``vnc`` is None) the display a report names; unchanged
        displays are not rewritten."""
        row = s.get(m.ServerConsole, server_id)
        if vnc is None:
            if row is not None:
                s.delete(row)
            return
        if row is None:
            s.add(m.ServerConsole(server_id=server_id, host=host, address=vnc["host"],
                                  port=vnc["port"], updated_at=utcnow()))
        elif (row.host, row.address, row.port) != (host, vnc["host"], vnc["port"]):
            row.host, row.address, row.port = host, vnc["host"], vnc["port"]
            row.updated_at = utcnow()

    # ---- a user asks for a console -----------------------------------------------------

    def issue(self, ctx: AuthContext, server_id: str, protocol: str, console_type: str) -> str:
        """A console URL for the server: 400 for a protocol or type this cloud does not
        serve, 404 for a server the caller cannot see, 409 while it has no display."""
        if protocol not in PROTOCOLS:
            raise BadRequest(f"Unavailable console type {protocol}: this cloud serves "
                             f"{', '.join(sorted(PROTOCOLS))} consoles only.")
        if console_type not in PROTOCOLS[protocol]:
            raise BadRequest(f"Unavailable console type {console_type}: the {protocol} "
                             f"console types are {', '.join(PROTOCOLS[protocol])}.")
        settings = self.core.settings
        token = secrets.token_urlsafe(TOKEN_BYTES)

        def work(s: Session) -> None:
            srv = self.core.server(s, ctx, server_id)
            if s.get(m.ServerConsole, srv.id) is None or srv.task_state == "deleting":
                raise Conflict(f"Instance {server_id} is not ready: it has no VNC display "
                               f"yet (vm_state {srv.vm_state}); a running server has one.")
            now = utcnow()
            # Spent and expired tokens go after a grace period (cheap: expires_at index).
            s.execute(sa.delete(m.ConsoleToken).where(
                m.ConsoleToken.expires_at < now - timedelta(seconds=settings.console_token_ttl)))
            s.add(m.ConsoleToken(token_hash=token_hash(token), server_id=srv.id,
                                 console_type=console_type, created_at=now,
                                 expires_at=now + timedelta(seconds=settings.console_token_ttl)))

        self.core.transaction(work)
        return console_url(settings.novncproxy_base_url, token, server_id)

    # ---- the proxy's check -------------------------------------------------------------

    def _check(self, s: Session, token: str, server_id: str | None
               ) -> tuple[m.ConsoleToken, m.ServerConsole]:
        if not token or len(token) > 256:
            raise NotFound("The console token could not be found.")
        row = s.get(m.ConsoleToken, token_hash(token))
        if row is None:
            raise NotFound("The console token could not be found.")
        if row.used_at is not None:
            raise NotFound("The console token was used already; ask for a new console.")
        if row.expires_at <= utcnow():
            raise NotFound("The console token has expired; ask for a new console.")
        if server_id is not None and server_id != row.server_id:
            raise NotFound(f"The console token is not for instance {server_id}.")
        srv = s.get(m.Server, row.server_id)
        display = s.get(m.ServerConsole, row.server_id)
        if srv is None or srv.deleted or display is None:
            raise NotFound(f"Instance {row.server_id} has no VNC display any more.")
        return row, display

    def show(self, token: str) -> dict[str, Any]:
        """Nova's ``os-console-auth-tokens/{token}`` (admin): what the token opens,
        without spending it."""
        def work(s: Session) -> dict[str, Any]:
            row, display = self._check(s, token, None)
            return connect_info(row, display)

        return self.core.transaction(work)

    def consume(self, token: str, server_id: str | None) -> dict[str, Any]:
        """Spend the token (once) and answer where its display is."""
        digest = token_hash(token)

        def work(s: Session) -> dict[str, Any]:
            row, display = self._check(s, token, server_id)
            info = connect_info(row, display)
            now = utcnow()
            t = cast(sa.Table, m.ConsoleToken.__table__)
            spent = s.execute(sa.update(t).where(
                t.c.token_hash == digest, t.c.used_at.is_(None), t.c.expires_at > now,
            ).values(used_at=now))
            if getattr(spent, "rowcount", 0) != 1:
                raise NotFound("The console token was used already; ask for a new console.")
            return info

        return self.core.transaction(work)


def connect_info(row: m.ConsoleToken, display: m.ServerConsole) -> dict[str, Any]:
    """Nova's ``console`` body of a token: the instance and where to connect."""
    return {"instance_uuid": row.server_id, "host": display.address, "port": display.port,
            "internal_access_path": None, "console_type": row.console_type,
            "compute_host": display.host}


def console_url(base_url: str, token: str, server_id: str) -> str:
    """The noVNC page with the websocket path it must open (token and server in it)."""
    path = f"websockify?token={token}&instance={server_id}"
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}path={quote(path, safe='')}"
