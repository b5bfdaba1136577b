"""The network service's settings and the names its modules share.

``Settings`` is the ``[network]`` section, parsed and checked once; the
constants name the device owners and quota resources; ``neutron`` makes an
error carrying Neutron's own error type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stratus.common.config import Config
from stratus.common.errors import ApiError
from stratus.network import ipam

SECTION = "network"
QUOTA_RESOURCES = (
    "network",
    "subnet",
    "port",
    "router",
    "floatingip",
    "security_group",
    "security_group_rule",
)
NETWORK_TYPES = ("flat", "vxlan", "gre")
SEGMENT_LIMITS = {"vxlan": (1, 2**24 - 1), "gre": (1, 2**32 - 1)}
ROUTER_INTERFACE = "network:router_interface"
ROUTER_GATEWAY = "network:router_gateway"
FLOATINGIP_OWNER = "network:floatingip"
DHCP_OWNER = "network:dhcp"
TRANSACTION_ATTEMPTS = 40


def neutron(cls: type[ApiError], kind: str, message: str) -> ApiError:
    """An API error whose Neutron ``type`` is ``kind`` (e.g. "NetworkNotFound")."""
    err = cls(message)
    err.title = kind
    return err



@dataclass
class Settings:
    """The [network] section, parsed and checked once."""

    tenant_network_type: str = "vxlan"
    segment_ranges: dict[str, list[tuple[int, int]]] = field(
        default_factory=lambda: {"vxlan": [(1, 1000)], "gre": [(1, 1000)]}
    )
    flat_networks: tuple[str, ...] = ("*",)
    physical_mtu: int = 1500
    overhead: dict[str, int] = field(default_factory=lambda: {"vxlan": 50, "gre": 42, "flat": 0})
    base_mac: str = "fa:16:3e:00:00:00"
    max_dns_nameservers: int = 5
    max_host_routes: int = 20
    quotas: dict[str, int] = field(
        default_factory=lambda: {
            "network": 100,
            "subnet": 100,
            "port": 500,
            "router": 10,
            "floatingip": 50,
            "security_group": 10,
            "security_group_rule": 100,
        }
    )

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        tenant_type = config.get(SECTION, "tenant_network_type")
        if tenant_type not in ("vxlan", "gre"):
            raise ValueError(f"[network] tenant_network_type={tenant_type!r}: use vxlan or gre")
        ranges = {
            "vxlan": ipam.parse_ranges(
                config.get(SECTION, "vxlan_vni_ranges"), *SEGMENT_LIMITS["vxlan"],
                "[network] vxlan_vni_ranges",
            ),
            "gre": ipam.parse_ranges(
                config.get(SECTION, "gre_id_ranges"), *SEGMENT_LIMITS["gre"],
                "[network] gre_id_ranges",
            ),
        }
        base_mac = config.get(SECTION, "base_mac").lower()
        if not valid_mac(base_mac):
            raise ValueError(f"[network] base_mac={base_mac!r} is not a MAC address")
        return cls(
            tenant_network_type=tenant_type,
            segment_ranges=ranges,
            flat_networks=tuple(
                p.strip() for p in config.get(SECTION, "flat_networks").split(",") if p.strip()
            ),
            physical_mtu=config.get_int(SECTION, "physical_mtu", minimum=576),
            overhead={
                "vxlan": config.get_int(SECTION, "vxlan_overhead", minimum=0),
                "gre": config.get_int(SECTION, "gre_overhead", minimum=0),
                "flat": 0,
            },
            base_mac=base_mac,
            max_dns_nameservers=config.get_int(SECTION, "max_dns_nameservers", minimum=0),
            max_host_routes=config.get_int(SECTION, "max_host_routes", minimum=0),
            quotas={r: config.get_int(SECTION, f"quota_{r}", minimum=-1) for r in QUOTA_RESOURCES},
        )

    def max_mtu(self, network_type: str) -> int:
        return self.physical_mtu - self.overhead.get(network_type, 0)


def valid_mac(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 17:
        return False
    parts = value.split(":")
    return len(parts) == 6 and all(
        len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    )

