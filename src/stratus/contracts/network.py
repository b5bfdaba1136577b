"""The documents between the network API and the network agent.

The network API (``stratus.network.hoststate``) builds one :class:`HostState` per
host and serves it (JSON, see ``docs/agent.md``); the agent
(``stratus.agent.network``) converges the host to it. The agent sends back
a :class:`HostRegistration` (``PUT /v2.0/stratus-agent/hosts/<host>``) and, after
every pass, a :class:`PortStatusReport` (``PUT /v2.0/stratus-agent/hosts/<host>/ports``).
Both sides import these types, and nothing else of each other. Everything here is a
plain dataclass with ``from_dict``/``to_dict``; unknown keys are ignored (so
the API can add fields before the agent knows them) and missing required
keys or bad values raise :class:`ModelError` (``ContractError``, the error of every
contract) saying what was wrong. (One file of about 600 lines on purpose: the whole
document and its checks, read top to bottom.)

What a host receives:

* ``networks``: every network this host needs layer 2 for (its VM ports',
  its DHCP servers' and its routers' networks);
* ``ports``: the instance ports bound to this host (the agent plugs the
  device :func:`tap_name` that the compute driver created, applies
  security groups and anti-spoofing);
* ``dhcp_servers``: one per network this host serves DHCP for;
* ``routers``: routers hosted here (network node);
* ``security_groups``: every group referenced by ``ports``, with the IPs of
  its members already resolved (for ``remote_group_id`` rules);
* ``tunnel_peers``: the underlay IPs of every other host;
* ``metadata``: where the metadata proxy forwards and the shared secret;
* ``generation``: the API's state generation when the document was read (the agent
  long-polls ``since`` it); not part of what the host must look like.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from stratus.contracts._check import ContractError

SEGMENTATION_TYPES = ("vxlan", "gre", "flat")
DIRECTIONS = ("ingress", "egress")
PROTOCOLS = (None, "tcp", "udp", "icmp")  # icmp: ICMPv6 in an IPv6 rule
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")

T = TypeVar("T")


# The one error of every contract; this module's documents have always called it so.
ModelError = ContractError
L2_BACKENDS = ("ovs", "linuxbridge")  # HostRegistration.l2_backend


def _check_ip(value: str, what: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ModelError(f"{what} {value!r} is not a valid IP address") from None
    return value


def _check_cidr(value: str, what: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ModelError(f"{what} {value!r} is not a valid CIDR") from None
    return value


def _check_mac(value: str, what: str) -> str:
    parts = value.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise ModelError(f"{what} {value!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return value.lower()


# --- host object names: the one 15-character rule (both agents name taps by it) ----------
DEPLOY_PREFIX_PATTERN = r"[a-z][a-z0-9]{0,3}"
IFNAME_MAX = 15  # Linux interface names (IFNAMSIZ - 1)
TAP_KIND = "tp"


def check_deploy_prefix(prefix: str) -> str:
    """``prefix`` if it is a deploy prefix (``^[a-z][a-z0-9]{0,3}$``), else ModelError."""
    if not isinstance(prefix, str) or not re.fullmatch(DEPLOY_PREFIX_PATTERN, prefix):
        raise ModelError(f"deploy_prefix {prefix!r} must be a lowercase letter then at most "
                         f"3 lowercase letters or digits (^{DEPLOY_PREFIX_PATTERN}$)")
    return prefix


def interface_name(deploy_prefix: str, kind: str, resource_id: str) -> str:
    """A host interface of a deploy: ``<prefix>-<kind><resource id>``, the id without its
    dashes and cut so that the name fits Linux's 15 characters (as Neutron truncates).

    The dash after the prefix (never part of a prefix) makes ownership unambiguous: a
    name is this deploy's exactly when it starts with ``<prefix>-<kind>``."""
    head = f"{check_deploy_prefix(deploy_prefix)}-{kind}"
    if len(head) > IFNAME_MAX - 6:
        raise ModelError(f"interface kind {kind!r} leaves too little room for the id")
    return (head + resource_id.replace("-", ""))[:IFNAME_MAX]


def tap_name(deploy_prefix: str, port_id: str) -> str:
    """The host device of an instance port, as the compute agent creates it (the domain
    XML's target dev) and the network agent plugs it: ``st-tp1ba43184e0`` for prefix
    ``st`` (``t16n-tp1ba43184`` for ``t16n``)."""
    return interface_name(deploy_prefix, TAP_KIND, port_id)


class _Serializable:
    """from_dict/to_dict for the dataclasses below, driven by their type hints."""

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        if not isinstance(data, dict):
            raise ModelError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise ModelError(f"{cls.__name__}: required key {f.name!r} is missing")
                continue
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{cls.__name__}.{f.name}")
        obj = cls(**kwargs)
        validate = getattr(obj, "validate", None)
        if validate:
            validate()
        return obj

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _unconvert(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ModelError(f"{where} must be a list")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(hint, type) and issubclass(hint, _Serializable):
        return hint.from_dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ModelError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ModelError(f"{where} must be a string, got {value!r}")
        return value
    return value


def _unconvert(value: Any) -> Any:
    if isinstance(value, _Serializable):
        return value.to_dict()
    if isinstance(value, list):
        return [_unconvert(v) for v in value]
    return value


@dataclass
class HostRoute(_Serializable):
    """A route pushed to instances by DHCP (option 121)."""

    destination: str
    nexthop: str

    def validate(self) -> None:
        _check_cidr(self.destination, "host route destination")
        _check_ip(self.nexthop, "host route nexthop")


@dataclass
class Subnet(_Serializable):
    """A subnet of a network, IPv4 or IPv6 (its ``cidr`` says which).

    IPv6 only: ``ipv6_ra_mode``/``ipv6_address_mode`` as the API keeps them (one of
    :data:`IPV6_MODES` or null, docs/ipv6.md); ``router_ra``: a router of the cloud has an
    interface on the subnet, so its namespace sends the router advertisements (the DHCP
    server then sends none)."""

    id: str
    cidr: str
    gateway_ip: str | None = None
    dns_nameservers: list[str] = field(default_factory=list)
    host_routes: list[HostRoute] = field(default_factory=list)
    enable_dhcp: bool = True
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None
    router_ra: bool = False

    def validate(self) -> None:
        _check_cidr(self.cidr, "subnet cidr")
        if self.gateway_ip:
            _check_ip(self.gateway_ip, "subnet gateway_ip")
        for dns in self.dns_nameservers:
            _check_ip(dns, "dns nameserver")
        for what in ("ipv6_ra_mode", "ipv6_address_mode"):
            if getattr(self, what) not in (None, *IPV6_MODES):
                raise ModelError(f"subnet {self.id}: {what} {getattr(self, what)!r} is not "
                                 f"one of {', '.join(IPV6_MODES)} or null")

    @property
    def ip_version(self) -> int:
        return ipaddress.ip_network(self.cidr, strict=False).version

    @property
    def ipv6_mode(self) -> str | None:
        """How hosts get their address: the address mode, else the RA mode (as the API
        allocates), None for an IPv4 subnet or a subnet with neither (stateful DHCPv6)."""
        return self.ipv6_address_mode or self.ipv6_ra_mode

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.cidr, strict=False).prefixlen


@dataclass
class Network(_Serializable):
    """A network this host carries at layer 2.

    ``segmentation_type`` is ``vxlan`` or ``gre`` (tenant, tunnelled between
    hosts with ``segmentation_id`` as the VNI/key) or ``flat`` (provider:
    bridged to the interface that ``physical_network`` maps to in the agent's
    ``physical_interface_mappings``). ``mtu`` is what instances should use
    (already reduced by the tunnel overhead by the API).
    """

    id: str
    segmentation_type: str = "vxlan"
    segmentation_id: int | None = None
    physical_network: str | None = None
    mtu: int = 1450
    subnets: list[Subnet] = field(default_factory=list)
    external: bool = False
    name: str = ""

    def validate(self) -> None:
        if self.segmentation_type not in SEGMENTATION_TYPES:
            raise ModelError(
                f"network {self.id}: segmentation_type {self.segmentation_type!r} is not one of "
                f"{', '.join(SEGMENTATION_TYPES)}"
            )
        if self.segmentation_type != "flat" and not (
            self.segmentation_id and 0 < self.segmentation_id < 2**24
        ):
            raise ModelError(
                f"network {self.id}: segmentation_id {self.segmentation_id!r} must be 1..16777215"
            )
        if self.segmentation_type == "flat" and not self.physical_network:
            raise ModelError(f"network {self.id}: a flat network needs physical_network")
        if not 68 <= self.mtu <= 65535:
            raise ModelError(f"network {self.id}: mtu {self.mtu} must be 68..65535")


@dataclass
class FixedIP(_Serializable):
    subnet_id: str
    ip_address: str

    def validate(self) -> None:
        _check_ip(self.ip_address, "fixed ip")


@dataclass
class AddressPair(_Serializable):
    """An extra source a port may send from (an IP or CIDR, optionally another MAC)."""

    ip_address: str
    mac_address: str | None = None

    def validate(self) -> None:
        _check_cidr(self.ip_address, "allowed address pair")
        if self.mac_address:
            self.mac_address = _check_mac(self.mac_address, "allowed address pair mac")


@dataclass
class Port(_Serializable):
    """An instance port bound to this host.

    ``device_name`` is the host-side device the compute driver created when the API
    names it; without it the network agent plugs :func:`tap_name` of its deploy prefix
    (``device`` keeps the unprefixed ``tap`` + 11 characters of earlier releases).
    With ``port_security_enabled`` false, neither security groups nor
    anti-spoofing apply.
    """

    id: str
    network_id: str
    mac_address: str
    fixed_ips: list[FixedIP] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    allowed_address_pairs: list[AddressPair] = field(default_factory=list)
    port_security_enabled: bool = True
    device_owner: str = "compute:nova"
    device_name: str | None = None

    def validate(self) -> None:
        self.mac_address = _check_mac(self.mac_address, f"port {self.id} mac_address")

    @property
    def device(self) -> str:
        return self.device_name or ("tap" + self.id[:11])

    @property
    def ips(self) -> list[str]:
        return [f.ip_address for f in self.fixed_ips]


@dataclass
class DhcpOption(_Serializable):
    """A port's extra DHCP option (extra_dhcp_opt): a dnsmasq option name or number."""

    name: str
    value: str

    def validate(self) -> None:
        if not self.name or not all(c.isalnum() or c in "+-" for c in self.name):
            raise ModelError(f"dhcp option name {self.name!r} is not an option name")
        if not self.value or any(c in self.value for c in "\n\r\x00"):
            raise ModelError(f"dhcp option {self.name}: value {self.value!r} is not one line")


@dataclass
class DhcpHost(_Serializable):
    """One static lease: every port of the network, on any host (with the port's extra
    DHCP options)."""

    mac_address: str
    ip_address: str
    hostname: str | None = None
    options: list[DhcpOption] = field(default_factory=list)

    def validate(self) -> None:
        self.mac_address = _check_mac(self.mac_address, "dhcp host mac_address")
        _check_ip(self.ip_address, "dhcp host ip_address")


@dataclass
class DhcpServer(_Serializable):
    """A dnsmasq for one network, in namespace ``qdhcp-<network id>``.

    ``port_id``/``mac_address``/``fixed_ips`` describe the DHCP port (device
    owner ``network:dhcp``); ``hosts`` are the static leases. With
    ``metadata_proxy`` the namespace also answers 169.254.169.254:80 and the
    leases carry a classless static route (option 121) to it via the DHCP port.
    """

    network_id: str
    port_id: str
    mac_address: str
    fixed_ips: list[FixedIP] = field(default_factory=list)
    hosts: list[DhcpHost] = field(default_factory=list)
    metadata_proxy: bool = True
    lease_seconds: int = 86400

    def validate(self) -> None:
        self.mac_address = _check_mac(self.mac_address, "dhcp port mac_address")


@dataclass
class RouterInterface(_Serializable):
    """A router port on a tenant subnet (``qr-`` device in the router namespace)."""

    port_id: str
    network_id: str
    subnet_id: str
    mac_address: str
    ip_address: str
    prefixlen: int

    def validate(self) -> None:
        self.mac_address = _check_mac(self.mac_address, "router interface mac_address")
        _check_ip(self.ip_address, "router interface ip_address")


@dataclass
class RouterGateway(_Serializable):
    """The router's port on the external network (``qg-`` device): its first address
    (IPv4 when it has one) and, when the external network has an IPv6 subnet, its IPv6
    address there (``ipv6_*``; never translated: IPv6 has no NAT, as in Neutron)."""

    port_id: str
    network_id: str
    mac_address: str
    ip_address: str
    prefixlen: int
    gateway_ip: str | None = None
    ipv6_address: str | None = None
    ipv6_prefixlen: int = 64
    ipv6_gateway_ip: str | None = None

    def validate(self) -> None:
        self.mac_address = _check_mac(self.mac_address, "router gateway mac_address")
        _check_ip(self.ip_address, "router gateway ip_address")
        if self.ipv6_address:
            _check_ip(self.ipv6_address, "router gateway ipv6_address")
        if self.ipv6_gateway_ip:
            _check_ip(self.ipv6_gateway_ip, "router gateway ipv6_gateway_ip")


@dataclass
class FloatingIP(_Serializable):
    """A floating IP on the external network mapped 1:1 to an instance's fixed IP."""

    floating_ip_address: str
    fixed_ip_address: str
    id: str = ""

    def validate(self) -> None:
        _check_ip(self.floating_ip_address, "floating ip")
        _check_ip(self.fixed_ip_address, "floating ip fixed address")


@dataclass
class Router(_Serializable):
    """A router hosted here, in namespace ``qrouter-<router id>``."""

    id: str
    interfaces: list[RouterInterface] = field(default_factory=list)
    gateway: RouterGateway | None = None
    enable_snat: bool = True
    floating_ips: list[FloatingIP] = field(default_factory=list)
    # The router's extra routes (extraroute): installed in its namespace.
    routes: list[HostRoute] = field(default_factory=list)


@dataclass
class SecurityGroupRule(_Serializable):
    """A Neutron-style rule; ``remote_group_id`` is resolved via that group's member_ips."""

    direction: str
    ethertype: str = "IPv4"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    id: str = ""

    def validate(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ModelError(f"rule direction {self.direction!r} is not ingress or egress")
        if self.protocol is not None:
            self.protocol = self.protocol.lower()
        if self.protocol not in PROTOCOLS:
            raise ModelError(f"rule protocol {self.protocol!r} is not tcp, udp, icmp or null")
        if self.remote_ip_prefix:
            _check_cidr(self.remote_ip_prefix, "rule remote_ip_prefix")


@dataclass
class SecurityGroup(_Serializable):
    """A security group and the fixed IPs of all its member ports (all hosts)."""

    id: str
    rules: list[SecurityGroupRule] = field(default_factory=list)
    member_ips: list[str] = field(default_factory=list)
    name: str = ""


@dataclass
class MetadataSettings(_Serializable):
    """Where the metadata proxy forwards (``stratus-metadata``) and how it signs.

    An empty ``shared_secret`` here means: use the agent's configured
    ``[agent] metadata_shared_secret``; the proxy refuses to start when both
    are empty.
    """

    upstream_url: str = ""
    shared_secret: str = ""


@dataclass
class HostState(_Serializable):
    """Everything one host must look like. See the module docstring."""

    host: str
    tunnel_peers: list[str] = field(default_factory=list)
    networks: list[Network] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)
    dhcp_servers: list[DhcpServer] = field(default_factory=list)
    routers: list[Router] = field(default_factory=list)
    security_groups: list[SecurityGroup] = field(default_factory=list)
    metadata: MetadataSettings = field(default_factory=MetadataSettings)
    # When the state was read, not what it says: two states equal but for it are equal.
    generation: int | None = field(default=None, compare=False)

    def validate(self) -> None:
        for peer in self.tunnel_peers:
            _check_ip(peer, "tunnel peer")
        net_ids = {n.id for n in self.networks}
        for port in self.ports:
            if port.network_id not in net_ids:
                raise ModelError(f"port {port.id}: network {port.network_id} is not in networks")
        for dhcp in self.dhcp_servers:
            if dhcp.network_id not in net_ids:
                raise ModelError(f"dhcp server: network {dhcp.network_id} is not in networks")
        for router in self.routers:
            for itf in router.interfaces:
                if itf.network_id not in net_ids:
                    raise ModelError(
                        f"router {router.id}: network {itf.network_id} is not in networks"
                    )
            if router.gateway and router.gateway.network_id not in net_ids:
                raise ModelError(
                    f"router {router.id}: network {router.gateway.network_id} is not in networks"
                )

    # --- lookups used by the drivers -------------------------------------------------
    def network(self, network_id: str) -> Network:
        for net in self.networks:
            if net.id == network_id:
                return net
        raise KeyError(network_id)

    def security_group(self, group_id: str) -> SecurityGroup | None:
        for group in self.security_groups:
            if group.id == group_id:
                return group
        return None

    @classmethod
    def from_json(cls, text: str) -> HostState:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"desired state is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# --- what the agent sends back ---------------------------------------------------------------
@dataclass
class HostRegistration(_Serializable):
    """The agent's host: its tunnel endpoint (every other host's tunnel peer), whether it
    is a network node (DHCP servers and routers) and, optionally, its L2 backend
    (``l2_backend``: one of :data:`L2_BACKENDS`; absent or null: unknown, as from an agent
    older than the field). Body: ``{"host": {...}}``."""

    underlay_ip: str | None = None
    network_node: bool = False
    l2_backend: str | None = None

    def validate(self) -> None:
        if self.underlay_ip:
            _check_ip(self.underlay_ip, "underlay_ip")
        if self.l2_backend is not None and self.l2_backend not in L2_BACKENDS:
            raise ModelError(f"l2_backend {self.l2_backend!r} is not one of "
                             f"{', '.join(L2_BACKENDS)} (or null: unknown)")

    @classmethod
    def from_body(cls, body: Any) -> HostRegistration:
        return cls.from_dict(_unwrap(body, "host", cls.__name__))

    def to_body(self) -> dict[str, Any]:
        """The body; an unknown ``l2_backend`` is left out (an older API refuses the key)."""
        data = self.to_dict()
        if data["l2_backend"] is None:
            del data["l2_backend"]
        return {"host": data}


@dataclass
class PortStatusReport(_Serializable):
    """The ports the agent's last pass left up (``active``: plugged and filtered, or up in
    their namespace) and those of its state that are not (``down``). Body: ``{"ports":
    {...}}``."""

    active: list[str] = field(default_factory=list)
    down: list[str] = field(default_factory=list)

    @classmethod
    def from_body(cls, body: Any) -> PortStatusReport:
        return cls.from_dict(_unwrap(body, "ports", cls.__name__))

    def to_body(self) -> dict[str, Any]:
        return {"ports": self.to_dict()}


def _unwrap(body: Any, key: str, what: str) -> Any:
    if not isinstance(body, dict) or key not in body:
        raise ModelError(f"{what}: the body must be a JSON object with a {key!r} object")
    return body[key]
