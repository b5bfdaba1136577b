"""Volumes of the libvirt driver: iSCSI network disks through QEMU's own initiator, with a
libvirt secret per attachment for CHAP (mixed into :class:`LibvirtDriver`).

A volume's disk is ``<disk type='network'>`` with ``<source protocol='iscsi'
name='<iqn>/<lun>'>``, its portal, the initiator name the export was made for, and
``<auth>`` naming the secret by its usage, ``<secret prefix><attachment id>``. The
secret prefix is derived from the domain prefix (``st-instance-`` -> ``st-volume-``,
another prefix ``p`` -> ``pvolume-``), so the agent only ever lists, reuses or removes its
own secrets. Which attachments a domain has is read back from its XML (the usage names
in its disks), so the host is the state: an attach or detach cut short by a crash is
finished by the next pass, and a secret no domain uses nor any assignment wants is
removed (``agent/compute/volumes.py``).

An extend while attached: the storage agent makes the LUN again at the new size; QEMU's
iSCSI client keeps the capacity it read at login until ``block_resize`` asks it again
(``virsh blockresize`` to the volume's new size: QEMU re-reads the capacity, and the
virtio disk tells the guest). Before the target shows the new size QEMU refuses ("Cannot
grow iSCSI devices"): the next pass tries again.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from stratus.agent.compute.virt.base import RUNNING, VirtError, VolumeSpec
from stratus.agent.runner import CommandError
from stratus.common.crashpoints import crash_point

DETACH_TIMEOUT = 30.0  # seconds the guest gets to release a hot-unplugged disk
_NO_DOMAIN = ("failed to get domain", "Domain not found")


def secret_prefix(domain_prefix: str) -> str:
    """The usage prefix of this agent's volume secrets, from its domain prefix."""
    if domain_prefix.endswith("-instance-"):
        return domain_prefix[: -len("instance-")] + "volume-"
    return f"{domain_prefix}volume-"


def disk_xml(vol: VolumeSpec, usage: str) -> str:
    """The libvirt disk of a volume (virtio, raw)."""
    disk = ET.Element("disk", type="network", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="raw")
    src = ET.SubElement(disk, "source", protocol="iscsi", name=f"{vol.target_iqn}/{vol.lun}")
    ET.SubElement(src, "host", name=vol.host, port=str(vol.port))
    if vol.initiator:
        ET.SubElement(ET.SubElement(src, "initiator"), "iqn", name=vol.initiator)
    if vol.username:
        auth = ET.SubElement(src, "auth", username=vol.username)
        ET.SubElement(auth, "secret", type="iscsi", usage=usage)
    ET.SubElement(disk, "target", dev=vol.device, bus="virtio")
    ET.SubElement(disk, "serial").text = vol.volume_id[:20]
    return ET.tostring(disk, encoding="unicode")


def secret_xml(usage: str, attachment_id: str) -> str:
    secret = ET.Element("secret", ephemeral="no", private="yes")
    ET.SubElement(secret, "description").text = f"Stratus volume attachment {attachment_id}"
    ET.SubElement(ET.SubElement(secret, "usage", type="iscsi"), "target").text = usage
    return ET.tostring(secret, encoding="unicode")


def volume_disks(xml_text: str, prefix: str) -> dict[str, str]:
    """attachment id -> target dev of the volume disks (ours: by secret usage) in a
    domain's XML."""
    out: dict[str, str] = {}
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return out
    for disk in root.iter("disk"):
        secret = disk.find("./source/auth/secret")
        if secret is None:
            secret = disk.find("./auth/secret")
        target = disk.find("target")
        usage = secret.get("usage", "") if secret is not None else ""
        if usage.startswith(prefix) and target is not None:
            out[usage[len(prefix):]] = target.get("dev", "")
    return out


def parse_capacity(text: str) -> int | None:
    """The ``Capacity`` in bytes of ``virsh domblkinfo`` output."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Capacity" and value.strip().isdigit():
            return int(value.strip())
    return None


def parse_secret_list(text: str) -> dict[str, str]:
    """usage -> uuid of the iSCSI secrets in ``virsh -q secret-list``."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "iscsi":
            out[parts[2]] = parts[0]
    return out


class LibvirtVolumes:
    """The volume half of the libvirt driver (uses its ``virsh``, ``domain_name``,
    ``prefix`` and ``_state``)."""

    prefix: str

    def virsh(self, *args: str, check: bool = True) -> str:
        raise NotImplementedError  # the driver's

    def domain_name(self, server_id: str) -> str:
        raise NotImplementedError  # the driver's

    def _state(self, server_id: str) -> int | None:
        raise NotImplementedError  # the driver's

    @property
    def secret_prefix(self) -> str:
        return secret_prefix(self.prefix)

    def _xml(self, server_id: str, inactive: bool = False) -> str | None:
        try:
            return self.virsh("dumpxml", *(["--inactive"] if inactive else []),
                              self.domain_name(server_id))
        except CommandError as exc:
            if any(x in exc.stderr for x in _NO_DOMAIN):
                return None
            raise

    def _disks(self, server_id: str) -> tuple[dict[str, str], dict[str, str]]:
        """(live, defined) volume disks of the domain (live is empty when it is off)."""
        running = self._state(server_id) == RUNNING
        live = volume_disks(self._xml(server_id) or "", self.secret_prefix) if running else {}
        defined = volume_disks(self._xml(server_id, inactive=True) or "", self.secret_prefix)
        return live, defined

    def plugged_volumes(self, server_id: str) -> set[str]:
        """Plugged: in the running domain, or in the definition of one that is off."""
        if self._state(server_id) == RUNNING:
            live, _ = self._disks(server_id)
            return set(live)
        _, defined = self._disks(server_id)
        return set(defined)

    # --- secrets ------------------------------------------------------------------------
    def _secrets(self) -> dict[str, str]:
        return {u: i for u, i in parse_secret_list(self.virsh("secret-list")).items()
                if u.startswith(self.secret_prefix)}

    def volume_secrets(self) -> set[str]:
        return {u[len(self.secret_prefix):] for u in self._secrets()}

    def _ensure_secret(self, vol: VolumeSpec) -> str:
        usage = f"{self.secret_prefix}{vol.attachment_id}"
        uuid = self._secrets().get(usage)
        with tempfile.TemporaryDirectory(prefix="stratus-secret-") as tmp:
            if uuid is None:
                path = Path(tmp, "secret.xml")
                path.write_text(secret_xml(usage, vol.attachment_id))
                self.virsh("secret-define", str(path))
                uuid = self._secrets().get(usage)
                if uuid is None:
                    raise VirtError(f"secret {usage} was not defined")
            value = Path(tmp, "value")
            fd = os.open(value, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(vol.password or "")
            self.virsh("secret-set-value", uuid, "--file", str(value), "--plain")
        return usage

    def remove_volume_secret(self, attachment_id: str) -> None:
        uuid = self._secrets().get(f"{self.secret_prefix}{attachment_id}")
        if uuid is not None:
            with contextlib.suppress(CommandError):
                self.virsh("secret-undefine", uuid)

    # --- boot from volume ---------------------------------------------------------------
    def use_root_volume(self, dom: ET.Element, volume: VolumeSpec) -> None:
        """Make the domain's vda the volume's network disk (its secret first)."""
        usage = self._ensure_secret(volume) if volume.username else ""
        devices = dom.find("devices")
        if devices is None:
            raise VirtError("the domain has no devices element", temporary=False)
        for i, disk in enumerate(list(devices)):
            target = disk.find("target")
            if disk.tag == "disk" and target is not None and target.get("dev") == "vda":
                devices.remove(disk)
                root = ET.fromstring(disk_xml(volume, usage))
                ET.SubElement(root, "boot", order="1")
                devices.insert(i, root)
                break
        os_el = dom.find("os")
        if os_el is not None:  # per-device boot order instead of the os element's
            for boot in os_el.findall("boot"):
                os_el.remove(boot)

    # --- plug and unplug ----------------------------------------------------------------
    def attach_volume(self, server_id: str, volume: VolumeSpec) -> None:
        live, defined = self._disks(server_id)
        running = self._state(server_id) == RUNNING
        if self._state(server_id) is None:
            raise VirtError(f"domain of server {server_id} is not defined")
        usage = self._ensure_secret(volume) if volume.username else ""
        crash_point("compute_agent.volume_attach.after_secret")
        flags = []
        if volume.attachment_id not in defined:
            flags.append("--config")
        if running and volume.attachment_id not in live:
            flags.append("--live")
        if not flags:
            return
        with tempfile.TemporaryDirectory(prefix="stratus-disk-") as tmp:
            path = Path(tmp, "disk.xml")
            path.write_text(disk_xml(volume, usage))
            self.virsh("attach-device", self.domain_name(server_id), str(path), *flags)
        crash_point("compute_agent.volume_attach.after_plug")  # plugged, not reported

    def detach_volume(self, server_id: str, attachment_id: str) -> None:
        live, defined = self._disks(server_id)
        name = self.domain_name(server_id)
        if attachment_id in defined:
            self._detach(name, defined[attachment_id], "--config")
        if attachment_id in live:
            self._detach(name, live[attachment_id], "--live")
            deadline = time.monotonic() + DETACH_TIMEOUT
            while attachment_id in self._disks(server_id)[0]:
                if time.monotonic() >= deadline:
                    raise VirtError(f"volume attachment {attachment_id} is still in the "
                                    f"running domain {name} after {DETACH_TIMEOUT:.0f}s "
                                    "(the guest has not released it); retried next pass")
                time.sleep(0.5)
        crash_point("compute_agent.volume_detach.after_unplug")  # the secret is left
        self.remove_volume_secret(attachment_id)

    # --- extend while attached ----------------------------------------------------------
    def resize_volume(self, server_id: str, attachment_id: str, size_bytes: int) -> bool:
        """Have QEMU re-read the capacity of a plugged volume shown smaller than
        ``size_bytes`` (never shrinks); True when it grew."""
        if self._state(server_id) != RUNNING:
            return False  # a domain that starts later logs in and reads the new size
        live, _ = self._disks(server_id)
        dev = live.get(attachment_id)
        if not dev:
            return False
        name = self.domain_name(server_id)
        shown = parse_capacity(self.virsh("domblkinfo", name, dev))
        if shown is None or shown >= size_bytes:
            return False
        try:
            self.virsh("blockresize", name, dev, f"{size_bytes}B")
        except CommandError as exc:
            if "Cannot grow" in exc.stderr:
                raise VirtError(f"volume attachment {attachment_id}: the export does not show "
                                f"{size_bytes} bytes yet; retried next pass") from None
            raise
        return True

    def _detach(self, name: str, dev: str, flag: str) -> None:
        try:
            self.virsh("detach-disk", name, dev, flag)
        except CommandError as exc:
            if "not found" not in exc.stderr and "No disk found" not in exc.stderr:
                raise
