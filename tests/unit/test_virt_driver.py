"""What the libvirt driver renders and parses, virt type detection, the image cache and
the config drive's file list (no libvirt, no host tools)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratus.agent.compute.virt import configdrive
from stratus.agent.compute.virt.base import (
    PAUSED,
    RUNNING,
    SHUTDOWN,
    SUSPENDED,
    InstanceSpec,
    PortSpec,
    VirtError,
)
from stratus.agent.compute.virt.domain_xml import (
    METADATA_NS,
    build_domain,
    interface_devices,
    server_id_of,
    to_string,
)
from stratus.agent.compute.virt.imagecache import ImageCache
from stratus.agent.compute.virt.libvirt import (
    detect_virt_type,
    parse_dominfo,
    parse_hypervisor_version,
)

pytestmark = pytest.mark.unit

SID = "3f0e4b5c-6d7e-4f80-9a1b-2c3d4e5f6a7b"


def spec(**kw: object) -> InstanceSpec:
    base: dict[str, Any] = dict(
        server_id=SID, name="web1", vcpus=2, memory_mb=512, disk_gb=1,
        image_path="/x/_base/abc", image_format="qcow2",
        ports=[PortSpec("p1", "fa:16:3e:00:00:0b", 1450, "tapp1"),
               PortSpec("p2", "fa:16:3e:00:00:0c", None, "tapp2")],
        config_drive={"openstack/latest/meta_data.json": b"{}"})
    base.update(kw)
    return InstanceSpec(**base)


def render(virt_type: str = "qemu", cd: str | None = "/i/disk.config") -> Any:
    text = to_string(build_domain(spec(), domain_name="scag-" + SID, virt_type=virt_type,
                                  disk_path="/i/disk", config_drive_path=cd,
                                  console_path="/i/console.log"))
    return ET.fromstring(text)


def test_domain_xml_for_tcg() -> None:
    dom = render()
    assert dom.get("type") == "qemu"
    assert dom.findtext("name") == "scag-" + SID and dom.findtext("uuid") == SID
    assert dom.find("memory").text == "512" and dom.find("memory").get("unit") == "MiB"
    assert dom.findtext("vcpu") == "2"
    assert dom.find("cpu").get("mode") == "maximum"
    assert dom.find("os/type").get("machine") == "pc"
    assert dom.find("os/smbios").get("mode") == "sysinfo"
    entries = {e.get("name"): e.text for e in dom.findall("sysinfo/system/entry")}
    assert entries["product"] == "OpenStack Nova" and entries["manufacturer"] == "Stratus"
    assert entries["serial"] == SID and entries["uuid"] == SID
    disks = dom.findall("devices/disk")
    assert [(d.get("device"), d.find("target").get("bus"), d.find("driver").get("type"))
            for d in disks] == [("disk", "virtio", "qcow2"), ("cdrom", "ide", "raw")]
    assert disks[0].find("source").get("file") == "/i/disk"
    assert disks[1].find("source").get("file") == "/i/disk.config"
    assert disks[1].find("readonly") is not None
    nics = dom.findall("devices/interface")
    assert [n.get("type") for n in nics] == ["ethernet", "ethernet"]
    assert nics[0].find("mac").get("address") == "fa:16:3e:00:00:0b"
    assert nics[0].find("target").attrib == {"dev": "tapp1", "managed": "no"}
    assert nics[0].find("model").get("type") == "virtio"
    assert nics[0].find("mtu").get("size") == "1450" and nics[1].find("mtu") is None
    assert dom.find("devices/serial").get("type") == "file"
    assert dom.find("devices/serial/source").get("path") == "/i/console.log"
    assert dom.find("devices/console/target").get("type") == "serial"
    assert dom.find(f"metadata/{{{METADATA_NS}}}instance/{{{METADATA_NS}}}server-id"
                    ).text == SID


def test_domain_xml_for_kvm_without_config_drive() -> None:
    dom = render("kvm", cd=None)
    assert dom.get("type") == "kvm" and dom.find("cpu").get("mode") == "host-passthrough"
    assert [d.get("device") for d in dom.findall("devices/disk")] == ["disk"]
    with pytest.raises(ValueError, match="xen"):
        build_domain(spec(), domain_name="x", virt_type="xen", disk_path="d",
                     config_drive_path=None, console_path="c")


def test_names_cannot_break_the_xml() -> None:
    dom = build_domain(spec(name="<evil>&'\""), domain_name="x", virt_type="qemu",
                       disk_path="d", config_drive_path=None, console_path="c")
    text = to_string(dom)
    root: Any = ET.fromstring(text)
    assert root.find(f"metadata/{{{METADATA_NS}}}instance/"
                                    f"{{{METADATA_NS}}}name").text == "<evil>&'\""


def test_our_domains_are_recognised_by_metadata() -> None:
    text = to_string(build_domain(spec(), domain_name="x", virt_type="qemu", disk_path="d",
                                  config_drive_path=None, console_path="c"))
    assert server_id_of(text) == SID
    assert interface_devices(text) == ["tapp1", "tapp2"]
    assert server_id_of("<domain type='qemu'><name>other</name></domain>") is None
    assert server_id_of("not xml") is None


def test_virt_type_detection(tmp_path: Path) -> None:
    kvm = tmp_path / "kvm"
    kvm.write_bytes(b"")
    modules = tmp_path / "module"
    modules.mkdir()
    assert detect_virt_type("auto", str(kvm), str(modules), probe=lambda: True) == "kvm"
    assert detect_virt_type("auto", str(kvm), str(modules), probe=lambda: False) == "qemu"
    assert detect_virt_type("auto", str(tmp_path / "none"), str(modules)) == "qemu"
    (modules / "kvm_pvm").mkdir()  # software-nested KVM that cannot boot a guest
    assert detect_virt_type("auto", str(kvm), str(modules), probe=lambda: True) == "qemu"
    assert detect_virt_type("kvm", str(tmp_path / "none"), str(modules)) == "kvm"
    with pytest.raises(ValueError, match="auto, kvm or qemu"):
        detect_virt_type("xen")


@pytest.mark.skipif(not Path("/sys/module/kvm_pvm").exists(), reason="not the PVM machine")
def test_this_machine_comes_out_qemu() -> None:
    assert detect_virt_type("auto", probe=lambda: True) == "qemu"


def test_parse_virsh_output() -> None:
    assert parse_hypervisor_version("Using API: QEMU 9.0.0\nRunning hypervisor: QEMU 7.2.22\n"
                                    ) == 7002022
    assert parse_hypervisor_version("") == 0
    info = "Id: 3\nName: x\nState:          running\nManaged save:   no\n"
    assert parse_dominfo(info) == (RUNNING, False)
    assert parse_dominfo("State: paused\n")[0] == PAUSED
    assert parse_dominfo("State: shut off\nManaged save: no\n") == (SHUTDOWN, False)
    assert parse_dominfo("State: shut off\nManaged save: yes\n") == (SUSPENDED, True)


def _meta(data: bytes) -> dict[str, object]:
    return {"disk_format": "raw", "checksum": hashlib.md5(data).hexdigest(),
            "os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(data).hexdigest(),
            "size": len(data)}


def test_image_cache_downloads_once_under_concurrency(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    fetches = []

    def fetch(image_id: str) -> Iterator[bytes]:
        fetches.append(image_id)
        for i in range(0, len(data), 4096):
            time.sleep(0.0005)
            yield data[i:i + 4096]

    cache = ImageCache(tmp_path / "_base", fetch)
    results: list[tuple[str, str]] = []
    threads = [threading.Thread(target=lambda: results.append(cache.ensure("img", _meta(data))))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fetches == ["img"]
    path = tmp_path / "_base" / hashlib.sha1(b"img").hexdigest()
    assert set(results) == {(str(path), "raw")}
    assert path.read_bytes() == data


@pytest.mark.parametrize("field", ["checksum", "os_hash_value", "size"])
def test_image_cache_verifies_the_data(tmp_path: Path, field: str) -> None:
    data = b"abc" * 1000
    meta = _meta(data)
    meta[field] = 1 if field == "size" else "0" * 32
    cache = ImageCache(tmp_path, lambda _i: iter([data]))
    with pytest.raises(VirtError) as err:
        cache.ensure("img", meta)
    assert err.value.temporary is False
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_image_cache_interrupted_download_leaves_no_base(tmp_path: Path) -> None:
    def fetch(_i: str) -> Iterator[bytes]:
        yield b"partial"
        raise OSError("connection reset")

    cache = ImageCache(tmp_path, fetch)
    with pytest.raises(OSError):
        cache.ensure("img", _meta(b"whatever"))
    assert not cache.path_for("img").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_image_cache_reclaim(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, lambda _i: iter([b"x"]))
    cache.ensure("a", _meta(b"x"))
    cache.ensure("b", _meta(b"x"))
    old = time.time() - 1000
    for name in ("a", "b"):
        os.utime(cache.path_for(name), (old, old))
    assert cache.reclaim({"a"}, max_age=3600) == []
    assert cache.reclaim({"a"}, max_age=500) == [cache.key("b")]
    assert cache.path_for("a").exists() and not cache.path_for("b").exists()


def test_config_drive_file_list(tmp_path: Path) -> None:
    content = pytest.importorskip("stratus.contracts.metadata_tree")
    doc = {"uuid": SID, "name": "web1", "hostname": "web1", "project_id": "p",
           "availability_zone": "nova", "launch_index": 0, "created_at": "2026-01-01T00:00:00Z",
           "meta": {}, "keys": [{"name": "k", "type": "ssh", "data": "ssh-ed25519 AAAA k"}],
           "user_data": "IyEvYmluL3NoCmVjaG8gaGkK", "password": None,
           "networks": [{"port_id": "p1", "network_id": "n", "mac_address": "fa:16:3e:00:00:0b",
                         "mtu": 1450, "ip_address": "192.168.10.11", "floating_ip": None,
                         "subnet": {"id": "s", "cidr": "192.168.10.0/24",
                                    "gateway_ip": "192.168.10.1", "dns_nameservers": [],
                                    "host_routes": [], "enable_dhcp": True}}],
           "vendor_data": {}}
    files = content.render(doc)
    configdrive.write_tree(files, tmp_path)
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    for name in ("openstack/latest/meta_data.json", "openstack/latest/network_data.json",
                 "openstack/latest/user_data", "openstack/latest/vendor_data.json",
                 "openstack/latest/vendor_data2.json", "openstack/2012-08-10/meta_data.json",
                 "ec2/latest/meta-data.json", "ec2/latest/user-data"):
        assert name in written
    meta = json.loads((tmp_path / "openstack/latest/meta_data.json").read_text())
    assert meta["uuid"] == SID
    assert (tmp_path / "openstack/latest/user_data").read_bytes() == b"#!/bin/sh\necho hi\n"


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", ""])
def test_config_drive_refuses_escaping_paths(tmp_path: Path, name: str) -> None:
    with pytest.raises(VirtError):
        configdrive.write_tree({name: b"x"}, tmp_path)
