"""The compute agent's volumes: the assignment's block devices against what the domain
has plugged (hooked into ``converge.ServerWork.converge`` and the reconcile pass).

Level-triggered: every pass reads the attachments plugged into the domain (the driver
reads them from the domain's XML), unplugs those the assignment no longer lists (the
API marked them detaching), plugs the ones it lists that are missing, has the domain
re-read the capacity of a plugged one smaller than its ``size_gb`` (extended while
attached: the guest then sees the new size), and reports the plugged ones; the compute
API completes or deletes the attachments from that report. After a pass over every
server, :func:`sweep_secrets` removes this agent's secrets that no assignment wants
and no domain uses (a crash between unplugging and removing the secret, or a server
destroyed with its volumes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from stratus.agent.compute.virt.base import ComputeDriver, VirtError, VolumeSpec
from stratus.agent.runner import CommandError
from stratus.contracts.compute import Assignment, BlockDevice

LOG = logging.getLogger("stratus.agent.compute.volumes")
GIB = 1024 ** 3
# attachment id -> the size_gb the domain was last seen at (or grown to): the capacity is
# read again only when the assignment's size_gb changes (or after a restart)
_sizes_seen: dict[str, int] = {}


def volume_spec(b: BlockDevice) -> VolumeSpec:
    """The driver's description of a block device, from its iSCSI connection_info."""
    info = b.connection_info
    raw = info.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    kind = info.get("driver_volume_type")
    if kind != "iscsi":
        raise VirtError(f"volume {b.volume_id}: driver_volume_type {kind!r} is not iscsi",
                        temporary=False)
    try:
        portal = str(data["target_portal"])
        host, _, port = portal.rpartition(":")
        return VolumeSpec(
            attachment_id=b.attachment_id, volume_id=b.volume_id, device=b.device,
            target_iqn=str(data["target_iqn"]), lun=int(data.get("target_lun", 1)),
            host=host.strip("[]") or portal, port=int(port) if port else 3260,
            username=data.get("auth_username"), password=data.get("auth_password"),
            initiator=b.initiator)
    except (KeyError, TypeError, ValueError) as exc:
        raise VirtError(f"volume {b.volume_id}: connection_info is incomplete ({exc})",
                        temporary=False) from None


def boot_volume(a: Assignment) -> VolumeSpec | None:
    """The server's root volume (its block device with boot_index 0), if it boots from
    one."""
    for b in a.block_devices:
        if b.boot_index == 0:
            return volume_spec(b)
    return None


def converge_volumes(driver: ComputeDriver, a: Assignment) -> list[str]:
    """Plug and unplug the server's volumes; the attachment ids plugged afterwards. A
    volume that fails is logged and retried on the next pass (the others go on)."""
    sid = a.id
    wanted = {b.attachment_id: b for b in a.block_devices}
    plugged = driver.plugged_volumes(sid)
    for aid in sorted(plugged - set(wanted)):
        try:
            driver.detach_volume(sid, aid)
            _sizes_seen.pop(aid, None)
            LOG.info("server %s: volume attachment %s unplugged", sid, aid)
        except (VirtError, CommandError) as exc:
            LOG.warning("server %s: unplugging attachment %s failed: %s", sid, aid, exc)
    for aid, b in sorted(wanted.items()):
        if aid in plugged:
            continue
        try:
            driver.attach_volume(sid, volume_spec(b))
            LOG.info("server %s: volume %s plugged as %s", sid, b.volume_id, b.device)
        except (VirtError, CommandError) as exc:
            LOG.warning("server %s: plugging volume %s failed: %s", sid, b.volume_id, exc)
    plugged = driver.plugged_volumes(sid)
    for aid, b in sorted(wanted.items()):
        if aid in plugged and b.size_gb and _sizes_seen.get(aid) != b.size_gb:
            try:
                if driver.resize_volume(sid, aid, b.size_gb * GIB):
                    LOG.info("server %s: volume %s grown to %d GiB in the guest", sid,
                             b.volume_id, b.size_gb)
                _sizes_seen[aid] = b.size_gb
            except (VirtError, CommandError) as exc:
                LOG.warning("server %s: growing volume %s failed: %s (retried next pass)",
                            sid, b.volume_id, exc)
    return sorted(plugged)


def sweep_secrets(driver: ComputeDriver, servers: Iterable[Assignment]) -> list[str]:
    """Remove this agent's volume secrets of attachments no assignment lists and no
    domain has plugged; the attachment ids removed."""
    wanted = {b.attachment_id for a in servers for b in a.block_devices}
    secrets = driver.volume_secrets() - wanted
    if not secrets:
        return []
    used: set[str] = set()
    for sid in driver.list_instances():
        used |= driver.plugged_volumes(sid)
    removed = sorted(secrets - used)
    for aid in removed:
        driver.remove_volume_secret(aid)
        LOG.info("removed the leftover secret of volume attachment %s", aid)
    return removed
