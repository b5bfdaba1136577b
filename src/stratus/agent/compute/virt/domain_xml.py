"""The libvirt domain of an instance, built as an element tree (never a string template)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from stratus.agent.compute.virt.base import InstanceSpec, PortSpec

METADATA_NS = "https://stratus.dev/xmlns/compute/1"
ET.register_namespace("stratus", METADATA_NS)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def build_domain(spec: InstanceSpec, *, domain_name: str, virt_type: str, disk_path: str,
                 config_drive_path: str | None, console_path: str,
                 vnc_listen: str | None = None,
                 local_disks: Sequence[tuple[str, str]] = ()) -> ET.Element:
    """The ``<domain>`` element: TCG (``qemu``) or ``kvm``, machine ``pc``, SMBIOS that
    makes cloud-init pick the OpenStack datasource, a virtio disk, the config drive as
    an IDE cdrom, virtio NICs on unmanaged taps, the serial console into a file, and a
    VNC display on ``vnc_listen`` (a port libvirt picks; none when ``vnc_listen`` is
    None). ``local_disks``: (path, target dev) of raw virtio disks after the root disk
    (the flavor's ephemeral and swap disks, virt/localdisks.py)."""
    if virt_type not in ("kvm", "qemu"):
        raise ValueError(f"virt_type {virt_type!r} is not kvm or qemu")
    dom = ET.Element("domain", {"type": virt_type})
    _sub(dom, "name", domain_name)
    _sub(dom, "uuid", spec.server_id)
    meta = _sub(dom, "metadata")
    inst = _sub(meta, f"{{{METADATA_NS}}}instance")
    _sub(inst, f"{{{METADATA_NS}}}server-id", spec.server_id)
    _sub(inst, f"{{{METADATA_NS}}}name", spec.name)
    _sub(dom, "memory", str(spec.memory_mb), unit="MiB")
    _sub(dom, "vcpu", str(spec.vcpus))

    sysinfo = _sub(dom, "sysinfo", type="smbios")
    system = _sub(sysinfo, "system")
    for name, value in (("manufacturer", "Stratus"), ("product", "OpenStack Nova"),
                        ("serial", spec.server_id), ("uuid", spec.server_id),
                        ("family", "Virtual Machine")):
        _sub(system, "entry", value, name=name)

    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine="pc")
    _sub(os_el, "boot", dev="hd")
    _sub(os_el, "smbios", mode="sysinfo")
    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if virt_type == "qemu":
        _sub(dom, "cpu", mode="maximum")
    else:
        _sub(dom, "cpu", mode="host-passthrough")
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")

    devices = _sub(dom, "devices")
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="qcow2")
    _sub(disk, "source", file=disk_path)
    _sub(disk, "target", dev="vda", bus="virtio")
    for path, dev in local_disks:
        local = _sub(devices, "disk", type="file", device="disk")
        _sub(local, "driver", name="qemu", type="raw")
        _sub(local, "source", file=path)
        _sub(local, "target", dev=dev, bus="virtio")
    if config_drive_path:
        cdrom = _sub(devices, "disk", type="file", device="cdrom")
        _sub(cdrom, "driver", name="qemu", type="raw")
        _sub(cdrom, "source", file=config_drive_path)
        _sub(cdrom, "target", dev="hda", bus="ide")
        _sub(cdrom, "readonly")
    for port in spec.ports:
        devices.append(interface_element(port))
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=console_path, append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="file")
    _sub(console, "source", path=console_path, append="on")
    _sub(console, "target", type="serial", port="0")
    if vnc_listen is not None:
        graphics = _sub(devices, "graphics", type="vnc", autoport="yes", listen=vnc_listen)
        _sub(graphics, "listen", type="address", address=vnc_listen)
        video = _sub(devices, "video")
        _sub(video, "model", type="vga")
    _sub(devices, "memballoon", model="virtio")
    return dom


def interface_element(port: PortSpec) -> ET.Element:
    """A port's ``<interface>``: a virtio NIC on its unmanaged tap (the boot's and a
    hot-plug's, ``virt/interfaces.py``)."""
    nic = ET.Element("interface", type="ethernet")
    _sub(nic, "mac", address=port.mac_address)
    _sub(nic, "target", dev=port.device, managed="no")
    _sub(nic, "model", type="virtio")
    if port.mtu:
        _sub(nic, "mtu", size=str(port.mtu))
    return nic


def interface_macs(xml_text: str) -> dict[str, str]:
    """The tap name -> MAC address of a domain's ethernet interfaces."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return {}
    out = {}
    for nic in root.findall("devices/interface[@type='ethernet']"):
        target, mac = nic.find("target"), nic.find("mac")
        if target is not None and target.get("dev"):
            out[str(target.get("dev"))] = mac.get("address", "") if mac is not None else ""
    return out


def to_string(dom: ET.Element) -> str:
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode")


def server_id_of(xml_text: str) -> str | None:
    """The server id in our metadata element, or None when the domain is not ours."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return None
    el = root.find(f"metadata/{{{METADATA_NS}}}instance/{{{METADATA_NS}}}server-id")
    return el.text if el is not None and el.text else None


def interface_devices(xml_text: str) -> list[str]:
    """The tap names of a domain's ethernet interfaces."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return []
    return [t.get("dev", "") for t in root.findall("devices/interface[@type='ethernet']/target")
            if t.get("dev")]
