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
from stratus.common.crashpoints import crash_point
from stratus.common.errors import BadRequest, Conflict
from stratus.common.timeutil import isotime, utcnow
from stratus.compute import aggregates, instance_actions, scheduler
from stratus.compute import models as m
from stratus.compute.boot_volumes import BootVolumes, local_disk_gb
from stratus.compute.recovery import COMPUTE_OWNER, released

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
            specs = aggregates.scoped_specs((srv.flavor or {}).get("extra_specs") or {})
            q = scheduler.Request(
                vcpus=srv.flavor["vcpus"], ram=srv.flavor["ram"], disk=local_disk_gb(srv),
                availability_zone=srv.requested_az, force_host=sched.get("force_host"),
                image_properties=srv.image.get("properties", {}), group_id=srv.group_id,
                group_policy=policy, group_hosts=ghosts, same_host=sched.get("same_host", []),
                different_host=sched.get("different_host", []), ignore_hosts=srv.tried_hosts,
                aggregate_hosts=aggregates.hosts_matching(s, specs) if specs else None)
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
                        srv.host, srv.availability_zone = cand.host, hrow.zone
                        srv.attempt += 1
                        srv.tried_hosts = [*srv.tried_hosts, cand.host]
                        srv.task_state, srv.updated_at = "networking", utcnow()
                        return cand.host
                # Concurrent requests took every candidate: look at the hosts afresh.
                reason = "Every candidate host was claimed by concurrent requests."
            now = utcnow()
            srv.host, srv.vm_state, srv.task_state, srv.updated_at = None, "error", None, now
            srv.scheduling = released(srv.scheduling)
            srv.fault = {"code": 500, "created": isotime(now),
                         "message": f"No valid host was found. {reason}".strip(),
                         "details": ""}
            instance_actions.settle(s, srv, reported=False, failed=True)
            return None

        return core.transaction(work)

    def place(self, ctx: AuthContext, sid: str) -> None:
        host = self.schedule(sid)
        if host is None:
            return
        crash_point("compute.create.after_schedule")
        if not BootVolumes(self.core).attach_all(  # compute/boot_volumes.py
                sid, host, lambda why: self.fail(sid, why, release_claim=True)):
            return
        self.attach_ports(ctx.token, sid, host)

    def attach_ports(self, token: str | None, sid: str, host: str) -> bool:
        """Make (or take) the server's ports, bound to ``host``, record them and hand the
        server to its agent (``spawning``); False when the build failed instead. With a
        ``token`` (the create request) a port the network API refuses is the request's
        fault (400/409, raised); without one (recovery: the service user) it fails the
        server."""
        with self.core.db.session() as s:
            srv = s.get(m.Server, sid)
            assert srv is not None
            specs = list((srv.scheduling or {}).get("specs", []))
            sg_ids = list((srv.scheduling or {}).get("security_group_ids", []))
            az = srv.availability_zone or self.core.settings.default_availability_zone
            project = srv.project_id
        made: list[dict[str, Any]] = []
        try:
            for spec in specs:
                made.append(self.make_port(token, project, sid, host, az, spec, sg_ids))
        except ServiceError as exc:
            self.drop_ports(made)
            if token is not None and not exc.temporary and exc.status in (400, 404, 409):
                raise (Conflict if exc.status == 409 else BadRequest)(
                    f"The network API refused a port for the server: {exc}") from None
            if token is None and exc.temporary:
                raise  # recovery: the step stays, to be tried again on the next pass
            self.fail(sid, f"Build of instance {sid} aborted: the ports could not be made: "
                           f"{exc}", release_claim=True)
            return False
        except (KeyError, TypeError, ValueError) as exc:
            # The network API answered something unexpected: nothing is left half-made.
            LOG.exception("server %s: unexpected answer of the network API", sid)
            self.drop_ports(made)
            self.fail(sid, f"Build of instance {sid} aborted: unexpected answer of the network "
                           f"API ({type(exc).__name__}: {exc})", release_claim=True)
            return False

        def finish(s: Session) -> None:
            srv = s.get(m.Server, sid)
            assert srv is not None
            for pos, port in enumerate(made):
                s.add(m.ServerPort(server_id=sid, position=pos, **port))
                for ip in port["fixed_ips"]:
                    s.add(m.ServerAddress(network_id=port["network_id"],
                                          ip_address=ip["ip_address"], server_id=sid))
            srv.task_state, srv.updated_at = "spawning", utcnow()
            srv.scheduling = released(srv.scheduling)
            self.core.bump(s, host)

        self.core.transaction(finish)
        crash_point("compute.create.after_record")
        return True

    def resume(self, sid: str) -> bool:
        """Finish the build of a server whose create (or reschedule) stopped in
        ``scheduling`` or ``networking`` (crash recovery, compute/recovery.py): schedule it
        if it has no host, drop the ports the network API holds for it that it does not
        record, then make its ports or bind the recorded ones to its host. True when it went
        to its agent; False when it failed (ERROR with a fault). A temporary failure of the
        network API is raised (the step stays as it is, for the next pass)."""
        with self.core.db.session() as s:
            srv = s.get(m.Server, sid)
            if srv is None or srv.deleted:
                return False
            task, host = srv.task_state, srv.host
        if task == "scheduling" or host is None:
            host = self.schedule(sid)
            if host is None:
                return False
        recorded = self.ports_of(sid)
        if not recorded:
            self.drop_ports(self.unrecorded_ports(sid, strict=True))
            return self.attach_ports(None, sid, host)
        for port in recorded:
            try:
                self.ds.update_port(None, port["port_id"], {"binding:host_id": host})
            except ServiceError as exc:
                if exc.temporary:
                    raise
                self.fail(sid, f"Build of instance {sid} aborted: the port {port['port_id']} "
                               f"could not be bound to {host}: {exc}", release_claim=True)
                return False

        def spawning(s: Session) -> None:
            srv = s.get(m.Server, sid)
            assert srv is not None
            srv.task_state, srv.updated_at = "spawning", utcnow()
            srv.scheduling = released(srv.scheduling)
            self.core.bump(s, host)

        self.core.transaction(spawning)
        return True

    def unrecorded_ports(self, sid: str, strict: bool = False) -> list[dict[str, Any]]:
        """The ``compute:*`` ports the network API holds for the server (by device_id) that
        its rows do not record (a step stopped between making a port and recording it).
        A network API that cannot answer gives none, or raises with ``strict``."""
        try:
            found = self.ds.list_ports(None, device_id=sid)
        except ServiceError as exc:
            if strict:
                raise
            LOG.warning("server %s: the network API could not list its ports: %s", sid, exc)
            return []
        with self.core.db.session() as s:
            srv = s.get(m.Server, sid)
            given = {x.get("port_id") for x in ((srv.scheduling or {}).get("specs", [])
                                                if srv is not None else [])}
            recorded = set(s.scalars(sa.select(m.ServerPort.port_id).where(
                m.ServerPort.server_id == sid)))
        return [{"port_id": p["id"], "created_by_us": p["id"] not in given} for p in found
                if p.get("device_id") == sid and p["id"] not in recorded
                and str(p.get("device_owner") or "").startswith(COMPUTE_OWNER)]

    def make_port(self, token: str | None, project: str, sid: str, host: str, az: str,
                  spec: dict[str, str], sg_ids: list[str]) -> dict[str, Any]:
        """Make the port of ``spec`` (or take the user's) for the server and bind it to
        ``host``; without a ``token`` the service user makes it in ``project``."""
        ds = self.ds
        created = "port_id" not in spec
        if created:
            body: dict[str, Any] = {"network_id": spec["network_id"], "device_id": sid,
                                    "device_owner": f"compute:{az}"}
            if token is None:
                body["project_id"] = project
            if spec.get("fixed_ip"):
                body["fixed_ips"] = [{"ip_address": spec["fixed_ip"]}]
            if sg_ids:
                body["security_groups"] = sg_ids
            port = ds.create_port(token, body)
        else:
            port = ds.update_port(token, spec["port_id"],
                                  {"device_id": sid, "device_owner": f"compute:{az}"})
        crash_point("compute.create.after_port")
        record: dict[str, Any] = {"port_id": port["id"], "created_by_us": created}
        try:
            record.update({"network_id": port["network_id"],
                           "mac_address": port.get("mac_address", ""),
                           "fixed_ips": port.get("fixed_ips", []), "network_name": "",
                           "mtu": 1500, "subnets": []})
            ds.update_port(None, port["id"], {"binding:host_id": host})
            crash_point("compute.create.after_bind")
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

    def drop_ports(self, ports: list[dict[str, Any]]) -> list[str]:
        """Delete the ports we made; unbind the ones the user gave. Returns the ids of
        those the network API could not change (logged)."""
        left = []
        for port in ports:
            try:
                if port["created_by_us"]:
                    self.ds.delete_port(None, port["port_id"])
                else:
                    self.ds.update_port(None, port["port_id"], {
                        "device_id": "", "device_owner": "", "binding:host_id": ""})
            except ServiceError as exc:
                LOG.warning("port %s could not be cleaned up: %s", port["port_id"], exc)
                left.append(str(port["port_id"]))
        return left

    def fail(self, sid: str, message: str, release_claim: bool) -> None:
        def work(s: Session) -> None:
            srv = s.get(m.Server, sid)
            assert srv is not None
            now = utcnow()
            if release_claim and srv.host:
                f = srv.flavor
                self.core.unclaim(s, srv.host, f["vcpus"], f["ram"], local_disk_gb(srv))
                srv.host = None
            srv.vm_state, srv.task_state, srv.updated_at = "error", None, now
            srv.scheduling = released(srv.scheduling)
            srv.fault = {"code": 500, "created": isotime(now), "message": message,
                         "details": ""}
            instance_actions.settle(s, srv, reported=False, failed=True)

        self.core.transaction(work)


    def ports_of(self, sid: str) -> list[dict[str, Any]]:
        with self.core.db.session() as s:
            rows = s.scalars(sa.select(m.ServerPort).where(m.ServerPort.server_id == sid))
            return [{"port_id": p.port_id, "created_by_us": p.created_by_us} for p in rows]

