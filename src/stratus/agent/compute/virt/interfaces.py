"""Interfaces hot-plugged into and out of a domain (``os-interface``; mixed into
:class:`~stratus.agent.compute.virt.libvirt.LibvirtDriver`): the same ``<interface>`` the
boot defines (``domain_xml.interface_element``), attached to the running domain and to
its definition; a detach takes it out of both and deletes the tap."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from stratus.agent.compute.virt.base import RUNNING, PortSpec, VirtError
from stratus.agent.compute.virt.domain_xml import interface_element, interface_macs, to_string
from stratus.agent.runner import CommandError

if TYPE_CHECKING:
    from stratus.agent.ip_lib import IpLib


class LibvirtInterfaces:
    """The interface half of the libvirt driver (uses its ``virsh``, ``domain_name``,
    ``_state``, ``_xml``, ``ip`` and ``_net_lock``)."""

    if TYPE_CHECKING:
        ip: IpLib
        _net_lock: threading.Lock

        def virsh(self, *args: str, check: bool = True) -> str: ...

        def domain_name(self, server_id: str) -> str: ...

        def _state(self, server_id: str) -> int | None: ...

        def _xml(self, server_id: str, inactive: bool = False) -> str | None: ...

    def _macs(self, server_id: str) -> tuple[dict[str, str], dict[str, str]]:
        """(live, defined) tap -> MAC of the domain (live is empty when it is off)."""
        running = self._state(server_id) == RUNNING
        live = interface_macs(self._xml(server_id) or "") if running else {}
        return live, interface_macs(self._xml(server_id, inactive=True) or "")

    def plugged_interfaces(self, server_id: str) -> set[str]:
        live, defined = self._macs(server_id)
        return set(live) | set(defined)

    def attach_interface(self, server_id: str, port: PortSpec) -> None:
        if self._state(server_id) is None:
            raise VirtError(f"domain of server {server_id} is not defined")
        live, defined = self._macs(server_id)
        flags = []
        if port.device not in defined:
            flags.append("--config")
        if self._state(server_id) == RUNNING and port.device not in live:
            flags.append("--live")
        if not flags:
            return
        with tempfile.TemporaryDirectory(prefix="stratus-nic-") as tmp:
            path = Path(tmp, "interface.xml")
            path.write_text(to_string(interface_element(port)))
            self.virsh("attach-device", self.domain_name(server_id), str(path), *flags)

    def detach_interface(self, server_id: str, device: str) -> None:
        live, defined = self._macs(server_id)
        name = self.domain_name(server_id)
        for macs, flag in ((defined, "--config"), (live, "--live")):
            if device not in macs:
                continue
            try:
                self.virsh("detach-interface", name, "ethernet", "--mac", macs[device], flag)
            except CommandError as exc:
                if "No interface found" not in exc.stderr and "not found" not in exc.stderr:
                    raise
        if device in self._macs(server_id)[0]:
            raise VirtError(f"interface {device} is still in the running domain {name} (the "
                            "guest has not released it); retried next pass")
        with self._net_lock:
            self.ip.begin_pass()
            link = self.ip.link(device)
            if link is not None and link.get("linkinfo", {}).get("info_kind") == "tun":
                self.ip.delete_link(device)
