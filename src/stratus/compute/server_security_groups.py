"""Security groups of a running server (addSecurityGroup, removeSecurityGroup, and the
os-security-groups list): applied to the server's ports in the network API."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from stratus.common.timeutil import utcnow
from stratus.compute import models as m
from stratus.compute.server_checks import ServerChecks, downstream_error

LOG = logging.getLogger("stratus.compute")


class ServerSecurityGroups(ServerChecks):
    """Part of :class:`stratus.compute.servers.ServerFlow`: a server's security groups."""

    def _own_ports(self, ctx: AuthContext, sid: str) -> tuple[m.Server, list[str]]:
        with self.core.db.session() as s:
            srv = self.core.server(s, ctx, sid)
            s.expunge(srv)
            ports = [p.port_id for p in s.scalars(sa.select(m.ServerPort).where(
                m.ServerPort.server_id == sid, m.ServerPort.created_by_us.is_(True)
            ).order_by(m.ServerPort.position))]
        return srv, ports

    def change_security_group(self, ctx: AuthContext, sid: str, ref: str, add: bool) -> None:
        """Add the group to (or remove it from) every port this API made for the server.

        Adding a group the ports already have changes nothing; removing one they do not
        have is a 404, as in Nova. A failure half-way puts the ports already changed back.
        """
        srv, port_ids = self._own_ports(ctx, sid)
        if not port_ids:
            raise NotFound(f"Instance {sid} has no ports (made by the compute API) that "
                           "security groups could be applied to.")
        try:
            found = self.lookup_groups(ctx.token, ref, srv.project_id)
        except ServiceError as exc:
            raise downstream_error(exc, "Security groups cannot be read") from None
        if not found:
            raise NotFound(f"Security group {ref} not found for project {srv.project_id}.")
        if len(found) > 1:
            raise Conflict(f"Multiple security groups named {ref} exist; use its ID.")
        group = found[0]
        gid, gname = str(group["id"]), str(group.get("name") or group["id"])
        current: dict[str, list[str]] = {}
        try:
            for pid in port_ids:
                current[pid] = list(self.ds.get_port(ctx.token, pid).get("security_groups")
                                    or [])
        except ServiceError as exc:
            raise downstream_error(exc, f"The ports of instance {sid} cannot be read") \
                from None
        if add:
            wanted = {pid: [*g, gid] for pid, g in current.items() if gid not in g}
        else:
            wanted = {pid: [x for x in g if x != gid] for pid, g in current.items()
                      if gid in g}
            if not wanted:
                raise NotFound(f"Security group {ref} not associated with the instance {sid}")
        done: list[str] = []
        try:
            for pid, groups in wanted.items():
                self.ds.update_port(ctx.token, pid, {"security_groups": groups})
                done.append(pid)
        except ServiceError as exc:
            for pid in done:
                try:
                    self.ds.update_port(ctx.token, pid, {"security_groups": current[pid]})
                except ServiceError as undo:
                    LOG.warning("port %s: security groups not restored: %s", pid, undo)
            if exc.temporary:
                raise ServiceUnavailable(f"The network API failed: {exc}") from None
            raise BadRequest(f"The network API refused the security group {ref} on the "
                             f"ports of instance {sid}: {exc}") from None
        core = self.core

        def record(s: Session) -> None:
            row = s.get(m.Server, sid)
            if row is None or row.deleted:
                return
            names = [n for n in row.security_groups if n not in (gname, ref)]
            row.security_groups = [*names, gname] if add else names
            row.updated_at = utcnow()
            core.bump(s, row.host)

        core.transaction(record)

    def server_security_groups(self, ctx: AuthContext, sid: str) -> list[dict[str, Any]]:
        """The groups on the server's ports, read from the network API (Nova's shape)."""
        with self.core.db.session() as s:
            self.core.server(s, ctx, sid)
            port_ids = [p.port_id for p in s.scalars(sa.select(m.ServerPort).where(
                m.ServerPort.server_id == sid).order_by(m.ServerPort.position))]
        ids: dict[str, None] = {}
        groups: dict[str, dict[str, Any]] = {}
        try:
            for pid in port_ids:
                try:
                    port = self.ds.get_port(ctx.token, pid)
                except ServiceError as exc:
                    if exc.status == 404:
                        continue
                    raise
                ids.update(dict.fromkeys(port.get("security_groups") or []))
            for gid in ids:
                try:
                    groups[gid] = self.ds.get_security_group(ctx.token, gid)
                except ServiceError as exc:
                    if exc.status != 404:
                        raise
        except ServiceError as exc:
            raise downstream_error(exc, "The security groups cannot be read") from None
        return [nova_security_group(g, groups) for g in groups.values()]


def nova_security_group(group: dict[str, Any], known: dict[str, dict[str, Any]]
                        ) -> dict[str, Any]:
    """A network API security group as Nova shows it (ingress rules only)."""
    gid = str(group.get("id"))
    rules = []
    for r in group.get("security_group_rules") or []:
        if r.get("direction") != "ingress":
            continue
        proto = r.get("protocol")
        low, high = r.get("port_range_min"), r.get("port_range_max")
        if proto and low is None and high is None:
            low, high = (1, 65535) if str(proto).lower() in ("tcp", "udp") else (-1, -1)
        remote = r.get("remote_group_id")
        other = known.get(remote) if remote else None
        rules.append({
            "id": r.get("id"), "parent_group_id": gid, "ip_protocol": proto,
            "from_port": low, "to_port": high,
            "ip_range": {} if remote else {"cidr": r.get("remote_ip_prefix") or (
                "::/0" if r.get("ethertype") == "IPv6" else "0.0.0.0/0")},
            "group": {"name": (other or {}).get("name", remote),
                      "tenant_id": (other or {}).get("project_id", group.get("project_id"))}
            if remote else {}})
    return {"id": gid, "name": group.get("name"), "description": group.get("description"),
            "tenant_id": group.get("project_id") or group.get("tenant_id"), "rules": rules}

