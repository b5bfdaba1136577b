"""The server life cycle: create (validate, quota, schedule, claim, ports), delete, agent reports.

Calls to the image and network APIs happen outside database transactions; every
step that fails undoes what the earlier steps made (ports, claims, quota).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import ApiError, BadRequest, Conflict, NotFound, ServiceUnavailable
from stratus.compute import models as m
from stratus.compute import scheduler
from stratus.compute.core import ComputeCore, OverLimit, isotime, new_id, utcnow

LOG = logging.getLogger("stratus.compute")
CONSOLE_MAX = 64 * 1024
CANDIDATES = 50  # hosts claimed in turn before the scheduler looks at the hosts again
SCHEDULE_ROUNDS = 3
# task_state -> the vm_state an agent report must show for the task to be done
TASK_TARGETS = {
    "spawning": "active", "powering-off": "stopped", "powering-on": "active",
    "pausing": "paused", "unpausing": "active", "suspending": "suspended",
    "resuming": "active",
}


@dataclass
class CreateRequest:
    name: str
    image_id: str
    flavor_id: str
    networks: list[dict[str, str]] | str | None = None
    key_name: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    security_groups: list[str] = field(default_factory=list)
    availability_zone: str | None = None
    force_host: str | None = None
    config_drive: bool = False
    min_count: int = 1
    max_count: int = 1
    group_id: str | None = None
    same_host: list[str] = field(default_factory=list)
    different_host: list[str] = field(default_factory=list)
    networks_required: bool = False


def _downstream_error(exc: ServiceError, what: str) -> ApiError:
    if exc.temporary:
        return ServiceUnavailable(f"{what}: {exc}")
    return BadRequest(f"{what}: {exc}")


class ServerFlow:
    def __init__(self, core: ComputeCore) -> None:
        self.core = core
        self.ds = core.downstream

    # ---- validation -------------------------------------------------------------------

    def check_image(self, ctx: AuthContext, image_id: str, flavor: m.Flavor) -> dict[str, Any]:
        try:
            image = self.ds.get_image(ctx.token, image_id)
        except ServiceError as exc:
            if exc.status == 404:
                raise BadRequest(f"Image {image_id} could not be found.") from None
            raise _downstream_error(exc, f"Image {image_id} cannot be read") from None
        if image.get("status") != "active":
            raise BadRequest(f"Image {image_id} is not active (its status is "
                             f"{image.get('status')}).")
        if int(image.get("min_ram") or 0) > flavor.ram:
            raise BadRequest(f"Flavor's memory is too small for requested image: the image "
                             f"needs {image.get('min_ram')} MiB, flavor {flavor.name} has "
                             f"{flavor.ram} MiB.")
        if flavor.disk:
            if int(image.get("min_disk") or 0) > flavor.disk:
                raise BadRequest(f"Flavor's disk is too small for requested image: the image "
                                 f"needs {image.get('min_disk')} GiB, flavor {flavor.name} has "
                                 f"{flavor.disk} GiB.")
            if int(image.get("size") or 0) > flavor.disk * 1024**3:
                raise BadRequest(f"Flavor's disk is too small for requested image: the image "
                                 f"is {image.get('size')} bytes, flavor {flavor.name} has "
                                 f"{flavor.disk} GiB.")
        known = {"id", "name", "status", "visibility", "protected", "checksum", "os_hash_algo",
                 "os_hash_value", "size", "virtual_size", "min_ram", "min_disk", "disk_format",
                 "container_format", "owner", "created_at", "updated_at", "tags", "self",
                 "file", "schema", "os_hidden", "locations", "direct_url"}
        return {
            "id": image_id, "name": image.get("name"),
            "disk_format": image.get("disk_format"), "checksum": image.get("checksum"),
            "os_hash_algo": image.get("os_hash_algo"), "os_hash_value": image.get("os_hash_value"),
            "size": image.get("size"), "min_disk": image.get("min_disk") or 0,
            "min_ram": image.get("min_ram") or 0,
            "properties": {k: v for k, v in image.items() if k not in known},
        }

    def resolve_networks(self, ctx: AuthContext, req: CreateRequest) -> list[dict[str, str]]:
        """The ports to make or take: [{"network_id", "fixed_ip"?} | {"port_id"}]."""
        nets = req.networks
        if nets == "none":
            return []
        if nets is None or nets == "auto":
            if nets is None and req.networks_required:
                raise BadRequest("Invalid input: 'networks' is a required property from "
                                 "microversion 2.37 (a list, 'auto' or 'none').")
            try:
                own = self.ds.list_networks(ctx.token, project_id=ctx.project_id)
                shared = self.ds.list_networks(ctx.token, shared="true")
            except ServiceError as exc:
                raise _downstream_error(exc, "The networks cannot be listed") from None
            usable = {n["id"]: n for n in [*own, *shared]
                      if not n.get("router:external") and n.get("status", "ACTIVE") == "ACTIVE"}
            if len(usable) > 1:
                raise Conflict("Multiple possible networks found, use a Network ID to be more "
                               "specific.")
            if not usable:
                if nets == "auto":
                    raise BadRequest("Unable to automatically allocate a network for project "
                                     f"{ctx.project_id}: it has no network and none is shared.")
                return []
            return [{"network_id": next(iter(usable))}]
        out: list[dict[str, str]] = []
        assert isinstance(nets, list)
        for item in nets:
            if "port" in item:
                try:
                    port = self.ds.get_port(ctx.token, item["port"])
                except ServiceError as exc:
                    if exc.status == 404:
                        raise BadRequest(f"Port {item['port']} could not be found.") from None
                    raise _downstream_error(exc, f"Port {item['port']}") from None
                if port.get("device_id"):
                    raise Conflict(f"Port {item['port']} is still in use.")
                if req.max_count > 1:
                    raise BadRequest("Unable to launch multiple instances with a single "
                                     "configured port ID.")
                out.append({"port_id": port["id"], "network_id": port["network_id"]})
                continue
            try:
                self.ds.get_network(ctx.token, item["uuid"])
            except ServiceError as exc:
                if exc.status == 404:
                    raise BadRequest(f"Network {item['uuid']} could not be found.") from None
                raise _downstream_error(exc, f"Network {item['uuid']}") from None
            spec = {"network_id": item["uuid"]}
            if item.get("fixed_ip"):
                if req.max_count > 1:
                    raise BadRequest("Unable to launch multiple instances with a fixed IP "
                                     "address.")
                spec["fixed_ip"] = item["fixed_ip"]
            out.append(spec)
        return out

    def lookup_groups(self, token: str, ref: str, project_id: str) -> list[dict[str, Any]]:
        """The security groups ``ref`` names in the project, or the one whose id it is."""
        found = self.ds.security_groups(token, ref, project_id)
        if found:
            return found
        try:
            return [self.ds.get_security_group(token, ref)]
        except ServiceError as exc:
            if exc.status == 404:
                return []
            raise

    def resolve_groups(self, ctx: AuthContext, names: list[str]) -> list[str]:
        ids = []
        for name in dict.fromkeys(names):
            try:
                found = self.lookup_groups(ctx.token, name, ctx.project_id or "")
            except ServiceError as exc:
                raise _downstream_error(exc, "Security groups cannot be read") from None
            if not found:
                raise BadRequest(f"Security group {name} not found for project "
                                 f"{ctx.project_id}.")
            if len(found) > 1:
                raise Conflict(f"Multiple security groups named {name} exist; use its ID.")
            ids.append(found[0]["id"])
        return ids

    # ---- security groups of a running server (addSecurityGroup, removeSecurityGroup) ---

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
            raise _downstream_error(exc, "Security groups cannot be read") from None
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
            raise _downstream_error(exc, f"The ports of instance {sid} cannot be read") \
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
            raise _downstream_error(exc, "The security groups cannot be read") from None
        return [nova_security_group(g, groups) for g in groups.values()]

    # ---- create -----------------------------------------------------------------------

    def create(self, ctx: AuthContext, req: CreateRequest) -> list[str]:
        core = self.core

        def lookups(s: Session) -> tuple[m.Flavor, m.KeyPair | None, m.ServerGroup | None]:
            flavor = s.get(m.Flavor, req.flavor_id)
            if flavor is None or not core.flavor_visible(s, ctx, flavor):
                raise BadRequest(f"Flavor {req.flavor_id} could not be found.")
            key = None
            if req.key_name is not None:
                key = s.scalars(sa.select(m.KeyPair).where(
                    m.KeyPair.user_id == ctx.user_id, m.KeyPair.name == req.key_name)).first()
                if key is None:
                    raise BadRequest(f"Invalid key_name provided: key pair {req.key_name} "
                                     "could not be found.")
            group = None
            if req.group_id:
                group = s.get(m.ServerGroup, req.group_id)
                if group is None or not (ctx.is_admin or group.project_id == ctx.project_id):
                    raise BadRequest(f"Server group {req.group_id} could not be found.")
            for sid in [*req.same_host, *req.different_host]:
                other = s.get(m.Server, sid)
                if other is None or other.deleted:
                    raise BadRequest(f"Scheduler hint refers to instance {sid}, which could "
                                     "not be found.")
            if req.force_host and s.scalars(sa.select(m.ComputeHost).where(
                    m.ComputeHost.host == req.force_host)).first() is None:
                raise BadRequest(f"Compute host {req.force_host} could not be found.")
            return flavor, key, group

        flavor, key, group = core.transaction(lookups)
        image = self.check_image(ctx, req.image_id, flavor)
        specs = self.resolve_networks(ctx, req)
        sg_ids = self.resolve_groups(ctx, req.security_groups) if specs else []
        flavor_doc = {"id": flavor.id, "name": flavor.name, "vcpus": flavor.vcpus,
                      "ram": flavor.ram, "disk": flavor.disk, "swap": flavor.swap,
                      "ephemeral": flavor.ephemeral, "extra_specs": dict(flavor.extra_specs)}
        project = ctx.project_id or ""
        # Ports made without a group get the project's "default" group in the network API.
        groups = list(dict.fromkeys(req.security_groups)) or (["default"] if specs else [])

        def record(s: Session) -> list[str]:
            count = req.max_count
            while not core.reserve(s, project, count, flavor.vcpus * count,
                                   flavor.ram * count, must=count <= req.min_count):
                count -= 1
            if group is not None:
                limit = core.quota_limits(s, group.project_id)["server_group_members"]
                fresh = s.get(m.ServerGroup, group.id, populate_existing=True)
                assert fresh is not None
                if limit >= 0 and len(fresh.members) + count > limit:
                    raise OverLimit(f"Quota exceeded for server_group_members: group "
                                    f"{group.id} has {len(fresh.members)} of {limit}.")
            now = utcnow()
            ids = []
            for index in range(count):
                name = req.name if count == 1 else f"{req.name}-{index + 1}"
                srv = m.Server(
                    id=new_id(), name=name, hostname=_hostname(name), project_id=project,
                    user_id=ctx.user_id, image_id=req.image_id, image=image,
                    flavor_id=flavor.id, flavor=flavor_doc, vm_state="building",
                    task_state="scheduling", power_state=0, desired_power="running",
                    requested_az=req.availability_zone, tried_hosts=[], attempt=0,
                    scheduling={"specs": specs, "security_group_ids": sg_ids,
                                "force_host": req.force_host, "same_host": req.same_host,
                                "different_host": req.different_host},
                    key_name=key.name if key else None, key_data=key.public_key if key else None,
                    key_type=key.type if key else None, user_data=req.user_data,
                    meta=dict(req.metadata), security_groups=groups,
                    config_drive=req.config_drive, launch_index=index,
                    group_id=group.id if group else None, progress=0, deleted=False,
                    snapshots=[], console_tail="", created_at=now, updated_at=now)
                s.add(srv)
                ids.append(srv.id)
            if group is not None:
                fresh = s.get(m.ServerGroup, group.id)
                assert fresh is not None
                fresh.members = [*fresh.members, *ids]
            return ids

        ids = core.transaction(record)
        done: list[str] = []
        try:
            for sid in ids:
                self.place(ctx, sid)
                done.append(sid)
        except ApiError:
            # The request's own fault (a port the network API refused): nothing is left.
            for sid in ids:
                self.purge(sid)
            raise
        return ids

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

    def purge(self, sid: str) -> None:
        """Undo a create completely (the server is not created): ports, claim, quota, row."""
        self.finalize_delete(sid, remove_row=True)

    # ---- delete -----------------------------------------------------------------------

    def ports_of(self, sid: str) -> list[dict[str, Any]]:
        with self.core.db.session() as s:
            rows = s.scalars(sa.select(m.ServerPort).where(m.ServerPort.server_id == sid))
            return [{"port_id": p.port_id, "created_by_us": p.created_by_us} for p in rows]

    def finalize_delete(self, sid: str, remove_row: bool = False) -> None:
        self.drop_ports(self.ports_of(sid))
        core = self.core

        def work(s: Session) -> None:
            srv = s.get(m.Server, sid)
            if srv is None or srv.deleted:
                return
            f = srv.flavor
            if srv.host:
                core.unclaim(s, srv.host, f["vcpus"], f["ram"], f["disk"])
            core.release(s, srv.project_id, 1, f["vcpus"], f["ram"])
            if srv.group_id:
                group = s.get(m.ServerGroup, srv.group_id)
                if group is not None:
                    group.members = [x for x in group.members if x != sid]
            s.execute(sa.delete(m.ServerAddress).where(m.ServerAddress.server_id == sid))
            s.execute(sa.delete(m.ServerPort).where(m.ServerPort.server_id == sid))
            if remove_row:
                s.delete(srv)
                return
            now = utcnow()
            srv.deleted, srv.deleted_at, srv.updated_at = True, now, now
            srv.vm_state, srv.task_state, srv.host = "deleted", None, None

        core.transaction(work)

    def delete(self, ctx: AuthContext, sid: str) -> None:
        core = self.core

        def work(s: Session) -> bool:
            srv = core.server(s, ctx, sid)
            if srv.host is None:
                return True
            host = s.scalars(sa.select(m.ComputeHost).where(
                m.ComputeHost.host == srv.host)).first()
            if host is None or not core.alive(host):
                return True
            srv.task_state, srv.updated_at = "deleting", utcnow()
            core.bump(s, srv.host)
            return False

        if core.transaction(work):
            self.finalize_delete(sid)

    # ---- agent reports ----------------------------------------------------------------

    def report(self, host: str, sid: str, body: dict[str, Any]) -> None:
        core = self.core

        def check(s: Session) -> m.Server:
            srv = s.get(m.Server, sid)
            if srv is None or srv.deleted or srv.host != host:
                raise Conflict(f"Instance {sid} is not assigned to host {host}.")
            return srv

        core.transaction(check)
        if body.get("deleted") is True:
            self.finalize_delete(sid)
            return
        if body.get("reschedule") is True:
            self.reschedule(sid, host, body.get("fault"))
            return

        def work(s: Session) -> None:
            srv = check(s)
            now = utcnow()
            if "console_tail" in body and isinstance(body["console_tail"], str):
                srv.console_tail = body["console_tail"][-CONSOLE_MAX:]
            if isinstance(body.get("power_state"), int):
                srv.power_state = body["power_state"]
            done = body.get("snapshots_done")
            if isinstance(done, list) and srv.snapshots:
                srv.snapshots = [x for x in srv.snapshots if x["image_id"] not in done]
                if not srv.snapshots and srv.task_state == "image_uploading":
                    srv.task_state = None
            fault = body.get("fault")
            vm_state = body.get("vm_state")
            if vm_state == "error" or (isinstance(fault, dict) and vm_state is None):
                srv.vm_state, srv.task_state = "error", None
                srv.fault = {"code": int((fault or {}).get("code", 500)), "created": isotime(now),
                             "message": str((fault or {}).get("message", "The spawn failed.")),
                             "details": str((fault or {}).get("details", ""))}
            elif vm_state in ("active", "stopped", "paused", "suspended") \
                    and srv.task_state != "deleting":
                if srv.vm_state == "building" and srv.task_state not in (None, "spawning"):
                    pass  # still networking in the API; the agent is early
                else:
                    if srv.vm_state == "building" or srv.vm_state == "error":
                        srv.fault = None
                    srv.vm_state = vm_state
                    if vm_state == "active" and srv.launched_at is None:
                        srv.launched_at, srv.progress = now, 100
                    target = TASK_TARGETS.get(srv.task_state or "")
                    if target == vm_state:
                        srv.task_state = None
                    gen = body.get("reboot_generation")
                    if srv.task_state in ("rebooting", "rebooting_hard") and isinstance(gen, int) \
                            and gen >= srv.reboot_generation:
                        srv.task_state = None
            srv.updated_at = now

        core.transaction(work)

    def reschedule(self, sid: str, host: str, fault: Any) -> None:
        core = self.core
        message = str((fault or {}).get("message", "The spawn failed.")) \
            if isinstance(fault, dict) else "The spawn failed."

        def release(s: Session) -> bool:
            srv = s.get(m.Server, sid)
            assert srv is not None
            f = srv.flavor
            core.unclaim(s, host, f["vcpus"], f["ram"], f["disk"])
            srv.host = None
            if srv.attempt >= core.settings.scheduler_max_attempts:
                now = utcnow()
                srv.vm_state, srv.task_state, srv.updated_at = "error", None, now
                srv.fault = {"code": 500, "created": isotime(now), "message": (
                    f"Exceeded maximum number of retries. Exhausted all hosts available for "
                    f"retrying build failures for instance {sid}. Last failure: {message}"),
                    "details": ""}
                return False
            srv.task_state = "scheduling"
            return True

        if not core.transaction(release):
            return
        new_host = self.schedule(sid)
        if new_host is None:
            return
        for port in self.ports_of(sid):
            try:
                self.ds.update_port(None, port["port_id"], {"binding:host_id": new_host})
            except ServiceError as exc:
                self.fail(sid, f"Rescheduling failed: the port {port['port_id']} could not be "
                               f"bound to {new_host}: {exc}", release_claim=True)
                return

        def spawning(s: Session) -> None:
            srv = s.get(m.Server, sid)
            assert srv is not None
            srv.task_state, srv.updated_at = "spawning", utcnow()
            core.bump(s, new_host)

        core.transaction(spawning)


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


def _hostname(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "-" else "-" for c in name.lower()).strip("-.")
    return out[:63] or "server"
