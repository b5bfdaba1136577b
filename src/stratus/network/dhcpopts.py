"""Port extra DHCP options (``extra_dhcp_opt``): stored on the port, checked here, served
by the network's dnsmasq (the host-state document's ``DhcpHost.options``, rendered by
``agent/network/drivers/dnsmasq.py``).

An option is ``{"opt_name": ..., "opt_value": ..., "ip_version": 4}``. On create and
update the given options are merged into the port's by (``opt_name``, ``ip_version``),
as Neutron does: a new value replaces the old one, and ``opt_value: null`` removes the
option. ``opt_name`` is a name dnsmasq knows (``DNSMASQ_OPTIONS``) or a number from 1 to
254, so dnsmasq never meets an option it cannot read. ``ip_version`` 6 is kept and shown
(Neutron accepts it) but served by nobody: Stratus subnets are IPv4 only.
"""

from __future__ import annotations

from typing import Any

from stratus.common.errors import BadRequest
from stratus.network import models as m

# dnsmasq's DHCPv4 option names (`dnsmasq --help dhcp`, version 2.90).
DNSMASQ_OPTIONS = frozenset({
    "netmask", "time-offset", "router", "dns-server", "log-server", "lpr-server",
    "boot-file-size", "domain-name", "swap-server", "root-path", "extension-path",
    "ip-forward-enable", "non-local-source-routing", "policy-filter", "max-datagram-reassembly",
    "default-ttl", "mtu", "all-subnets-local", "router-discovery", "router-solicitation",
    "static-route", "trailer-encapsulation", "arp-timeout", "ethernet-encap", "tcp-ttl",
    "tcp-keepalive", "nis-domain", "nis-server", "ntp-server", "netbios-ns", "netbios-dd",
    "netbios-nodetype", "netbios-scope", "x-windows-fs", "x-windows-dm", "T1", "T2",
    "vendor-class", "nis+-domain", "nis+-server", "tftp-server", "bootfile-name",
    "mobile-ip-home", "smtp-server", "pop3-server", "nntp-server", "irc-server", "user-class",
    "rapid-commit", "client-arch", "client-interface-id", "client-machine-id", "posix-timezone",
    "tzdb-timezone", "ipv6-only", "domain-search", "sip-server", "classless-static-route",
    "vendor-id-encap", "tftp-server-address", "server-ip-address",
})
MAX_OPTIONS = 32
MAX_VALUE = 255


def _bad(reason: str) -> BadRequest:
    return BadRequest(f"Invalid input for extra_dhcp_opts. Reason: {reason}")


def _name(value: object) -> str:
    if isinstance(value, str) and (value in DNSMASQ_OPTIONS or (
            value.isdigit() and 1 <= int(value) <= 254 and value == str(int(value)))):
        return value
    raise _bad(f"opt_name {value!r} is not a DHCP option dnsmasq knows (a name like "
               "'tftp-server' or 'bootfile-name', or a number from 1 to 254).")


def _value(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE or any(
            c in value for c in "\n\r\x00") or not value.isprintable():
        raise _bad(f"opt_value {value!r} must be a non-empty printable string of at most "
                   f"{MAX_VALUE} characters (or null to remove the option).")
    return value


def parse(raw: object) -> list[dict[str, Any]]:
    """The options of a request, checked; ``opt_value`` None marks a removal."""
    if not isinstance(raw, list):
        raise _bad("a list of {opt_name, opt_value, ip_version} objects is expected.")
    out = []
    for item in raw:
        if not isinstance(item, dict) or "opt_name" not in item or not set(item) <= {
                "opt_name", "opt_value", "ip_version"}:
            raise _bad(f"{item!r} must be an object with opt_name, opt_value and optionally "
                       "ip_version.")
        version = item.get("ip_version", 4)
        if isinstance(version, str) and version in ("4", "6"):
            version = int(version)
        if version not in (4, 6) or isinstance(version, bool):
            raise _bad(f"ip_version {version!r} must be 4 or 6.")
        out.append({"opt_name": _name(item["opt_name"]),
                    "opt_value": _value(item.get("opt_value")), "ip_version": version})
    return out


def merge(current: list[dict[str, Any]], raw: object) -> list[dict[str, Any]]:
    """``current`` with the options of ``raw`` applied (replace, add, or remove on null)."""
    merged = {(o["opt_name"], o["ip_version"]): dict(o) for o in current}
    for opt in parse(raw):
        key = (opt["opt_name"], opt["ip_version"])
        if opt["opt_value"] is None:
            merged.pop(key, None)
        else:
            merged[key] = opt
    if len(merged) > MAX_OPTIONS:
        raise _bad(f"at most {MAX_OPTIONS} options per port.")
    return list(merged.values())


def apply(port: m.Port, obj: dict[str, Any]) -> None:
    """The hook of a port create/update: merge ``obj["extra_dhcp_opts"]`` when given."""
    if "extra_dhcp_opts" in obj and obj["extra_dhcp_opts"] is not None:
        port.extra_dhcp_opts = merge(list(port.extra_dhcp_opts or []), obj["extra_dhcp_opts"])
