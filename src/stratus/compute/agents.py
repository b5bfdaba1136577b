"""The service layer of the agent endpoints (``compute/api/agents.py``).

Owns the sessions and queries behind them and produces the documents of
:mod:`stratus.contracts`: a compute host's heartbeat (its row, the scheduler's
generation), its :class:`~stratus.contracts.compute.AssignmentSet` and the long-poll
on its generation (:func:`watch`, a :class:`stratus.common.longpoll.KeyedWatch` keyed
by host over :func:`generations`), the answer
to a server report, and the :class:`~stratus.contracts.instance.InstanceDocument`
the metadata service and the config drives render (:func:`instance_document`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.clients import ServiceError
from stratus.common.errors import Conflict, NotFound
from stratus.common.longpoll import KeyedWatch
from stratus.common.timeutil import isotime, utcnow
from stratus.compute import models as m
from stratus.compute.views import security_group_names
from stratus.compute.volumes import block_devices, volumes_of
from stratus.contracts.compute import (
    HOST_INTS,
    HOST_TEXTS,
    Assignment,
    AssignmentSet,
    FixedIP,
    FlavorInfo,
    HostResources,
    ImageInfo,
    PortAssignment,
    RebootRequest,
    ResizeRequest,
    SnapshotRequest,
)
from stratus.contracts.instance import (
    HostRoute,
    InstanceDocument,
    NetworkEntry,
    PublicKey,
    SubnetInfo,
)

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

LOG = logging.getLogger("stratus.compute")
# Inventory the scheduler reads: a change bumps the host's generation.
SCHEDULED = {"vcpus", "memory_mb", "local_gb", "availability_zone", "virt_type", "cpu_arch"}


# --- the documents --------------------------------------------------------------------------
def instance_document(srv: m.Server, ports: list[m.ServerPort],
                      floating: dict[str, str | None] | None = None) -> InstanceDocument:
    """The document of docs/compute.md that metadata and config drives render from."""
    networks = []
    for p in sorted(ports, key=lambda x: x.position):
        for ip in p.fixed_ips:
            sub = next((x for x in p.subnets if x.get("id") == ip.get("subnet_id")), {})
            networks.append(NetworkEntry(
                port_id=p.port_id, network_id=p.network_id, mac_address=p.mac_address,
                mtu=p.mtu, ip_address=ip["ip_address"],
                floating_ip=(floating or {}).get(p.port_id),
                subnet=SubnetInfo(
                    id=sub.get("id"), cidr=sub.get("cidr"), gateway_ip=sub.get("gateway_ip"),
                    dns_nameservers=list(sub.get("dns_nameservers") or []),
                    host_routes=[HostRoute(r["destination"], r["nexthop"])
                                 for r in sub.get("host_routes") or []],
                    enable_dhcp=bool(sub.get("enable_dhcp", True)))))
    keys = []
    if srv.key_name and srv.key_data:
        keys.append(PublicKey(srv.key_name, srv.key_type or "ssh", srv.key_data))
    return InstanceDocument(
        uuid=srv.id, name=srv.name, hostname=srv.hostname, project_id=srv.project_id,
        availability_zone=srv.availability_zone,
        flavor_name=(srv.flavor or {}).get("name") or "", image_id=srv.image_id,
        security_groups=security_group_names(srv, ports), launch_index=srv.launch_index,
        created_at=isotime(srv.created_at), meta=dict(srv.meta), keys=keys,
        user_data=srv.user_data, password=srv.password, networks=networks, vendor_data={})


def assignment(srv: m.Server, ports: list[m.ServerPort],
               volumes: list[m.BlockDeviceMapping] | None = None) -> Assignment:
    """What the agent of the server's host must know of it (``volumes``: its block
    device mappings, compute/volumes.py)."""
    image = srv.image or {}
    return Assignment(
        id=srv.id, name=srv.name, hostname=srv.hostname, project_id=srv.project_id,
        user_id=srv.user_id, image_id=srv.image_id,
        image=ImageInfo(disk_format=image.get("disk_format"), checksum=image.get("checksum"),
                        os_hash_algo=image.get("os_hash_algo"),
                        os_hash_value=image.get("os_hash_value"), size=image.get("size"),
                        min_disk=image.get("min_disk"),
                        properties=dict(image.get("properties") or {})),
        flavor=FlavorInfo.from_dict(srv.flavor), vm_state=srv.vm_state,
        task_state=srv.task_state, desired_power=srv.desired_power,
        reboot=RebootRequest(srv.reboot_generation, srv.reboot_type),
        rebuild=srv.rebuild_generation or 0,
        network=srv.network_generation or 0,  # injectNetworkInfo (admin_actions.py)
        resize=ResizeRequest(srv.resize_generation or 0, bool(srv.resize_revert),
                             pending=srv.old_flavor is not None),  # server_resize.py
        delete=srv.task_state == "deleting", config_drive=srv.config_drive,
        ports=[PortAssignment(id=p.port_id, network_id=p.network_id, mac_address=p.mac_address,
                              mtu=p.mtu, device_name=f"tap{p.port_id[:11]}",
                              fixed_ips=[FixedIP(ip["ip_address"], ip.get("subnet_id"))
                                         for ip in p.fixed_ips])
               for p in sorted(ports, key=lambda x: x.position)],
        metadata_document=instance_document(srv, ports),
        snapshots=[SnapshotRequest(x["image_id"], x.get("name")) for x in srv.snapshots],
        attempt=srv.attempt, created_at=isotime(srv.created_at),
        block_devices=block_devices(volumes or [], srv.host),
        detaching=[v.attachment_id for v in volumes or []
                   if v.status == "detaching" and v.attachment_id])


# --- heartbeat, assignments, reports -------------------------------------------------------
def heartbeat(core: ComputeCore, name: str, values: HostResources) -> dict[str, Any]:
    """Record a host's heartbeat (its row made on the first one); a change of what the
    scheduler reads bumps the host's generation. Then fail the servers stuck on dead
    hosts (throttled; never fails the heartbeat itself)."""
    given = {k: v for k, v in vars(values).items() if v is not None}
    if "problems" in given:  # stored as the JSON the heartbeat carried
        given["problems"] = [p.to_dict() for p in given["problems"]]

    def work(s: Session) -> dict[str, Any]:
        now = utcnow()
        h = s.scalars(sa.select(m.ComputeHost).where(m.ComputeHost.host == name)).first()
        if h is None:
            h = m.ComputeHost(
                host=name, hypervisor_hostname=name,
                availability_zone=core.settings.default_availability_zone, vcpus=0,
                memory_mb=0, local_gb=0, vcpus_used=0, memory_mb_used=0, local_gb_used=0,
                running_vms=0, virt_type="kvm", hypervisor_type="QEMU",
                hypervisor_version=0, host_ip="", cpu_arch="x86_64", claimed_vcpus=0,
                claimed_ram=0, claimed_disk=0, claimed_instances=0, enabled=True,
                forced_down=False, generation=0, created_at=now, heartbeat_at=now)
            s.add(h)
        moved = False
        for k, v in given.items():
            moved = moved or (k in SCHEDULED and getattr(h, k) != v)
            setattr(h, k, v)
        h.heartbeat_at = now
        s.flush()
        if moved and h.id is not None:
            # What the scheduler reads changed: a new generation (its host cache).
            core.bump(s, name)
            s.refresh(h)
        return {"host": {"host": h.host, "enabled": h.enabled,
                         "disabled_reason": h.disabled_reason, "generation": h.generation,
                         **{k: getattr(h, k) for k in (*HOST_INTS, *HOST_TEXTS)}}}

    answer = core.transaction(work)
    # Any host's heartbeat also fails the servers stuck on dead hosts (throttled), so
    # that happens without a reader listing them.
    try:
        swept = core.sweep_dead_hosts()
        if swept:
            LOG.warning("%d server(s) on dead compute hosts went ERROR", swept)
    except Exception:
        LOG.exception("the sweep for servers on dead compute hosts failed")
    return answer


def generations(core: ComputeCore, names: Iterable[str]) -> dict[str, int]:
    """The generations of the hosts named (one query; a host without a row is absent)."""
    with core.db.session() as s:
        return {str(h): int(g) for h, g in s.execute(
            sa.select(m.ComputeHost.host, m.ComputeHost.generation).where(
                m.ComputeHost.host.in_(list(names))))}


_WATCHES: weakref.WeakKeyDictionary[ComputeCore, KeyedWatch[str]] = (
    weakref.WeakKeyDictionary())
_WATCHES_LOCK = threading.Lock()


def watch(core: ComputeCore) -> KeyedWatch[str]:
    """The long-poll of the hosts' generations in this process (one per core): every
    waiting agent of the process shares one read of ``generations`` per interval."""
    with _WATCHES_LOCK:
        found = _WATCHES.get(core)
        if found is None:
            ref = weakref.ref(core)  # the watch must not keep its core alive

            def read(names: frozenset[str]) -> dict[str, int]:
                alive = ref()
                return generations(alive, names) if alive is not None else {}

            found = _WATCHES[core] = KeyedWatch(read)
        return found


def assignments(core: ComputeCore, name: str) -> AssignmentSet:
    """Every server placed on the host (but those still being networked by the API);
    404 before the host's first heartbeat."""
    with core.db.session() as s:
        h = s.scalars(sa.select(m.ComputeHost).where(m.ComputeHost.host == name)).first()
        if h is None:
            raise NotFound(f"Compute host {name} could not be found; send a heartbeat "
                           "first.")
        rows = list(s.scalars(sa.select(m.Server).where(
            m.Server.host == name, m.Server.deleted.is_(False),
            m.Server.task_state.is_distinct_from("networking"))))
        ports: dict[str, list[m.ServerPort]] = {}
        if rows:
            for p in s.scalars(sa.select(m.ServerPort).where(
                    m.ServerPort.server_id.in_([r.id for r in rows]))):
                ports.setdefault(p.server_id, []).append(p)
        bdms = volumes_of(s, [r.id for r in rows])
        return AssignmentSet(h.generation, [assignment(r, ports.get(r.id, []), bdms.get(r.id))
                                            for r in rows])


def server_after_report(core: ComputeCore, server_id: str) -> dict[str, Any]:
    """The answer to a report: the server's states now (or that it is gone)."""
    with core.db.session() as s:
        srv = s.get(m.Server, server_id)
        if srv is None or srv.deleted:
            return {"server": {"id": server_id, "deleted": True}}
        return {"server": {"id": srv.id, "vm_state": srv.vm_state,
                           "task_state": srv.task_state, "host": srv.host}}


# --- the metadata service's lookups --------------------------------------------------------
def metadata_lookup(core: ComputeCore, network_id: str, fixed_ip: str) -> InstanceDocument:
    """The instance document of the server with ``fixed_ip`` on ``network_id``, with the
    floating IPs the network API has for its ports (none when it cannot be asked)."""
    with core.db.session() as s:
        addr = s.get(m.ServerAddress, (network_id, fixed_ip))
        srv = s.get(m.Server, addr.server_id) if addr else None
        if srv is None or srv.deleted:
            raise NotFound(f"No server has address {fixed_ip} on network {network_id}.")
        ports = list(s.scalars(sa.select(m.ServerPort).where(
            m.ServerPort.server_id == srv.id)))
    floating: dict[str, str | None] = {}
    for p in ports:
        try:
            fips = core.downstream.floating_ips(p.port_id)
            floating[p.port_id] = fips[0]["floating_ip_address"] if fips else None
        except (ServiceError, KeyError, IndexError):
            floating[p.port_id] = None
    return instance_document(srv, ports, floating)


def set_password(core: ComputeCore, server_id: str, value: str) -> None:
    """Store the password blob the guest posted (once: 409 when one is set)."""
    def work(s: Session) -> None:
        srv = s.get(m.Server, server_id)
        if srv is None or srv.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        if srv.password:
            raise Conflict("The password of this server is already set.")
        srv.password = value

    core.transaction(work)
