"""Placement of a new (or rescheduled) server: schedule and claim a host, make or bind
its ports, and fail the build cleanly when a step cannot be done.

Each host claim is a conditional UPDATE in the database (ComputeCore.claim), so the
in-process host cache only chooses candidates and can never over-commit a host.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import BadRequest, Conflict
from stratus.common.timeutil import isotime, utcnow
from stratus.compute import models as m
from stratus.compute import scheduler

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore
    from stratus.compute.downstream import Downstream

LOG = logging.getLogger("stratus.compute")
CANDIDATES = 50  # hosts claimed in turn before the scheduler looks at the hosts again
SCHEDULE_ROUNDS = 3


class Placement:
    """Part of :class:`stratus.compute.servers.ServerFlow`: host and ports of a server."""

    core: ComputeCore
    ds: Downstream

    def group_hosts(self, s: Session, group_id: str | None, exclude: str) -> tuple[str | None,
                                                                                  list[str]]:
        if not group_id:
            return None, []
        group = s.get(m.ServerGroup, group_id)
        if group is None:
            return None, []
        hosts = [str(h) for (h,) in s.execute(sa.select(m.Server.host).where(
            m.Server.id.in_(group.members), m.Server.id != exclude,
            m.Server.deleted.is_(False), m.Server.host.is_not(None)))]
        return group.policy, hosts

    def schedule(self, sid: str) -> str | None:
        """Pick and claim a host for the server; on no host, ERROR with the fault."""
        core = self.core
        with core.db.session() as s:
            row = s.get(m.Server, sid)
            group_id = row.group_id if row is not None else None

        def work(s: Session) -> str | None:
            if group_id:
                # Members of one group are placed one at a time: this row lock (a write
                # lock on SQLite) holds the next member until this placement commits.
                gt = cast(sa.Table, m.ServerGroup.__table__)
                s.execute(sa.update(gt).where(gt.c.id == group_id).values(name=gt.c.name))
            srv = s.get(m.Server, sid)
            assert srv is not None
            policy, ghosts = self.group_hosts(s, srv.group_id, sid)
            sched = srv.scheduling or {}
            q = scheduler.Request(
                vcpus=srv.flavor["vcpus"], ram=srv.flavor["ram"], disk=srv.flavor["disk"],
                availability_zone=srv.requested_az, force_host=sched.get("force_host"),
                image_properties=srv.image.get("properties", {}), group_id=srv.group_id,
                group_policy=policy, group_hosts=ghosts, same_host=sched.get("same_host", []),
                different_host=sched.get("different_host", []), ignore_hosts=srv.tried_hosts)
            reason = ""
            hinted = [*q.same_host, *q.different_host]
            for rnd in range(SCHEDULE_ROUNDS):
                try:
                    # Later rounds read every host row afresh (not the process's cache).
                    candidates = scheduler.select_hosts(
                        core.host_records(s, fresh=rnd > 0, hinted=hinted), q,
                        core.settings.ratios, core.settings.scheduler_weigher,
                        limit=CANDIDATES)
                except scheduler.NoValidHost as exc:
                    reason = str(exc)
                    if rnd == 0:
                        continue  # confirm on fresh rows before failing the server
                    break
                for cand in candidates:
                    if core.claim(s, cand.host, q.vcpus, q.ram, q.disk):
                        hrow = core.host(s, cand.host)
                        srv.host, srv.availability_zone = cand.host, hrow.availability_zone
                        srv.attempt += 1
                        srv.tried_hosts = [*srv.tried_hosts, cand.host]
                        srv.task_state, srv.updated_at = "networking", utcnow()
                        return cand.host
                # Concurrent requests took every candidate: look at the hosts afresh.
                reason = "Every candidate host was claimed by concurrent requests."
            now = utcnow()
            srv.host, srv.vm_state, srv.task_state, srv.updated_at = None, "error", None, now
            srv.fault = {"code": 500, "created": isotime(now),
                         "message": f"No valid host was found. {reason}".strip(),
                         "details": ""}
            return None

        return core.transaction(work)

    def place(self, ctx: AuthContext, sid: str) -> None:
        host = self.schedule(sid)
        if host is None:
            return
        with self.core.db.session() as s:
            srv = s.get(m.Server, sid)
            assert srv is not None
            specs = list((srv.scheduling or {}).get("specs", []))
            sg_ids = list((srv.scheduling or {}).get("security_group_ids", []))
            az = srv.availability_zone or self.core.settings.default_availability_zone
        made: list[dict[str, Any]] = []
        try:
            for spec in specs:
                made.append(self.make_port(ctx, sid, host, az, spec, sg_ids))
        except ServiceError as exc:
            self.drop_ports(made)
            if not exc.temporary and exc.status in (400, 404, 409):
                raise (Conflict if exc.status == 409 else BadRequest)(
                    f"The network API refused a port for the server: {exc}") from None
            self.fail(sid, f"Build of instance {sid} aborted: the ports could not be made: "
                           f"{exc}", release_claim=True)
            return
        except (KeyError, TypeError, ValueError) as exc:
            # The network API answered something unexpected: nothing is left half-made.
            LOG.exception("server %s: unexpected answer of the network API", sid)
            self.drop_ports(made)
            self.fail(sid, f"Build of instance {sid} aborted: unexpected answer of the network "
                           f"API ({type(exc).__name__}: {exc})", release_claim=True)
            return

        def finish(s: Session) -> None:
            srv = s.get(m.Server, sid)
            assert srv is not None
            for pos, port in enumerate(made):
                s.add(m.ServerPort(server_id=sid, position=pos, **port))
                for ip in port["fixed_ips"]:
                    s.add(m.ServerAddress(network_id=port["network_id"],
                                          ip_address=ip["ip_address"], server_id=sid))
            srv.task_state, srv.updated_at = "spawning", utcnow()
            self.core.bump(s, host)

        self.core.transaction(finish)

    def make_port(self, ctx: AuthContext, sid: str, host: str, az: str, spec: dict[str, str],
                  sg_ids: list[str]) -> dict[str, Any]:
        ds = self.ds
        created = "port_id" not in spec
        if created:
            body: dict[str, Any] = {"network_id": spec["network_id"], "device_id": sid,
                                    "device_owner": f"compute:{az}"}
            if spec.get("fixed_ip"):
                body["fixed_ips"] = [{"ip_address": spec["fixed_ip"]}]
            if sg_ids:
                body["security_groups"] = sg_ids
            port = ds.create_port(ctx.token, body)
        else:
            port = ds.update_port(ctx.token, spec["port_id"],
                                  {"device_id": sid, "device_owner": f"compute:{az}"})
        record: dict[str, Any] = {"port_id": port["id"], "created_by_us": created}
        try:
            record.update({"network_id": port["network_id"],
                           "mac_address": port.get("mac_address", ""),
                           "fixed_ips": port.get("fixed_ips", []), "network_name": "",
                           "mtu": 1500, "subnets": []})
            ds.update_port(None, port["id"], {"binding:host_id": host})
            net = ds.get_network(None, port["network_id"])
            record["network_name"], record["mtu"] = net.get("name", ""), net.get("mtu") or 1500
            subnets = []
            for sub_id in dict.fromkeys(ip["subnet_id"] for ip in record["fixed_ips"]):
                sub = ds.get_subnet(None, sub_id)
                subnets.append({k: sub.get(k) for k in (
                    "id", "cidr", "gateway_ip", "dns_nameservers", "host_routes",
                    "enable_dhcp", "ip_version")})
            record["subnets"] = subnets
        except (ServiceError, KeyError, TypeError, ValueError):
            self.drop_ports([record])
            raise
        return record

    def drop_ports(self, ports: list[dict[str, Any]]) -> None:
        """Delete the ports we made; unbind the ones the user gave."""
        for port in ports:
            try:
                if port["created_by_us"]:
                    self.ds.delete_port(None, port["port_id"])
                else:
                    self.ds.update_port(None, port["port_id"], {
                        "device_id": "", "device_owner": "", "binding:host_id": ""})
            except ServiceError as exc:
                LOG.warning("port %s could not be cleaned up: %s", port["port_id"], exc)

    def fail(self, sid: str, message: str, release_claim: bool) -> None:
        def work(s: Session) -> None:
            srv = s.get(m.Server, sid)
            assert srv is not None
            now = utcnow()
            if release_claim and srv.host:
                f = srv.flavor
                self.core.unclaim(s, srv.host, f["vcpus"], f["ram"], f["disk"])
                srv.host = None
            srv.vm_state, srv.task_state, srv.updated_at = "error", None, now
            srv.fault = {"code": 500, "created": isotime(now), "message": message,
                         "details": ""}

        self.core.transaction(work)


    def ports_of(self, sid: str) -> list[dict[str, Any]]:
        with self.core.db.session() as s:
            rows = s.scalars(sa.select(m.ServerPort).where(m.ServerPort.server_id == sid))
            return [{"port_id": p.port_id, "created_by_us": p.created_by_us} for p in rows]

