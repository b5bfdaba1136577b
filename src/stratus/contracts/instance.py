"""The instance document: what an instance may know about itself.

The compute API produces it (``stratus.compute.agents.instance_document``) for
two consumers: the metadata service (``GET /v2.1/stratus/metadata``, served
over HTTP) and the compute agent (inside each assignment, written into the
config drive). Both render the same files from it with
:mod:`stratus.contracts.metadata_tree`. docs/compute.md, "The instance
document", describes the fields. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stratus.contracts import _check as c
from stratus.contracts._check import ContractError

__all__ = ["ContractError", "HostRoute", "InstanceDocument", "NetworkEntry", "PublicKey",
           "SubnetInfo"]


@dataclass(frozen=True)
class HostRoute:
    destination: str
    nexthop: str

    @classmethod
    def from_dict(cls, data: Any, where: str = "host_route") -> HostRoute:
        d = c.mapping(data, where)
        return cls(c.required_text(d, "destination", where), c.required_text(d, "nexthop", where))

    def to_dict(self) -> dict[str, Any]:
        return {"destination": self.destination, "nexthop": self.nexthop}


@dataclass(frozen=True)
class SubnetInfo:
    """The subnet of one fixed IP (what network_data.json needs of it)."""

    id: str | None = None
    cidr: str | None = None
    gateway_ip: str | None = None
    dns_nameservers: list[str] = field(default_factory=list)
    host_routes: list[HostRoute] = field(default_factory=list)
    enable_dhcp: bool = True

    @classmethod
    def from_dict(cls, data: Any, where: str = "subnet") -> SubnetInfo:
        d = c.mapping(data if data is not None else {}, where)
        routes = c.seq(d.get("host_routes"), c.path(where, "host_routes"))
        return cls(
            id=c.opt_text(d, "id", where), cidr=c.opt_text(d, "cidr", where),
            gateway_ip=c.opt_text(d, "gateway_ip", where),
            dns_nameservers=c.texts(d, "dns_nameservers", where),
            host_routes=[HostRoute.from_dict(r, c.path(c.path(where, "host_routes"), i))
                         for i, r in enumerate(routes)],
            enable_dhcp=c.boolean(d, "enable_dhcp", where, default=True))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "cidr": self.cidr, "gateway_ip": self.gateway_ip,
                "dns_nameservers": list(self.dns_nameservers),
                "host_routes": [r.to_dict() for r in self.host_routes],
                "enable_dhcp": self.enable_dhcp}


@dataclass(frozen=True)
class NetworkEntry:
    """One fixed IP of one port (a port with two addresses is two entries)."""

    port_id: str = ""
    network_id: str = ""
    mac_address: str = ""
    mtu: int | None = None
    ip_address: str | None = None
    floating_ip: str | None = None
    subnet: SubnetInfo = field(default_factory=SubnetInfo)
    vif_type: str | None = None     # network_data.json link type (default "ovs")
    device_name: str | None = None  # default tap<port id[:11]>

    @classmethod
    def from_dict(cls, data: Any, where: str = "network") -> NetworkEntry:
        d = c.mapping(data, where)
        return cls(
            port_id=c.text(d, "port_id", where), network_id=c.text(d, "network_id", where),
            mac_address=c.text(d, "mac_address", where), mtu=c.opt_integer(d, "mtu", where),
            ip_address=c.opt_text(d, "ip_address", where),
            floating_ip=c.opt_text(d, "floating_ip", where),
            subnet=SubnetInfo.from_dict(d.get("subnet"), c.path(where, "subnet")),
            vif_type=c.opt_text(d, "vif_type", where),
            device_name=c.opt_text(d, "device_name", where))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "port_id": self.port_id, "network_id": self.network_id,
            "mac_address": self.mac_address, "mtu": self.mtu, "ip_address": self.ip_address,
            "floating_ip": self.floating_ip, "subnet": self.subnet.to_dict()}
        if self.vif_type is not None:
            out["vif_type"] = self.vif_type
        if self.device_name is not None:
            out["device_name"] = self.device_name
        return out


@dataclass(frozen=True)
class PublicKey:
    name: str = ""
    type: str = "ssh"
    data: str = ""

    @classmethod
    def from_dict(cls, data: Any, where: str = "key") -> PublicKey:
        d = c.mapping(data, where)
        return cls(c.text(d, "name", where), c.text(d, "type", where) or "ssh",
                   c.text(d, "data", where))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "data": self.data}


@dataclass(frozen=True)
class InstanceDocument:
    """Everything the metadata files of one instance are rendered from."""

    uuid: str
    name: str | None = None
    hostname: str | None = None
    project_id: str | None = None
    availability_zone: str | None = None
    flavor_name: str = ""             # EC2 instance-type
    image_id: str | None = None       # EC2 ami-id
    security_groups: list[str] = field(default_factory=list)  # names, EC2 security-groups
    launch_index: int = 0
    created_at: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    keys: list[PublicKey] = field(default_factory=list)
    user_data: str | None = None      # base64, as the compute API stores it
    password: str | None = None       # the blob the guest posted, once
    networks: list[NetworkEntry] = field(default_factory=list)
    vendor_data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> InstanceDocument:
        d = c.mapping(data, where or "instance")
        meta = c.obj(d, "meta", where)
        return cls(
            uuid=c.required_text(d, "uuid", where),
            name=c.opt_text(d, "name", where), hostname=c.opt_text(d, "hostname", where),
            project_id=c.opt_text(d, "project_id", where),
            availability_zone=c.opt_text(d, "availability_zone", where),
            flavor_name=c.text(d, "flavor_name", where), image_id=c.opt_text(d, "image_id", where),
            security_groups=c.texts(d, "security_groups", where),
            launch_index=c.integer(d, "launch_index", where),
            created_at=c.opt_text(d, "created_at", where),
            meta={str(k): str(v) for k, v in meta.items()},
            keys=[PublicKey.from_dict(k, c.path(c.path(where, "keys"), i))
                  for i, k in enumerate(c.seq(d.get("keys"), c.path(where, "keys")))],
            user_data=c.opt_text(d, "user_data", where),
            password=c.opt_text(d, "password", where),
            networks=[NetworkEntry.from_dict(n, c.path(c.path(where, "networks"), i))
                      for i, n in enumerate(c.seq(d.get("networks"),
                                                  c.path(where, "networks")))],
            vendor_data=c.obj(d, "vendor_data", where))

    @classmethod
    def coerce(cls, doc: InstanceDocument | Mapping[str, Any]) -> InstanceDocument:
        """The document itself, or the document its JSON form describes."""
        return doc if isinstance(doc, InstanceDocument) else cls.from_dict(doc)

    def to_dict(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid, "name": self.name, "hostname": self.hostname,
            "project_id": self.project_id, "availability_zone": self.availability_zone,
            "flavor_name": self.flavor_name, "image_id": self.image_id,
            "security_groups": list(self.security_groups), "launch_index": self.launch_index,
            "created_at": self.created_at, "meta": dict(self.meta),
            "keys": [k.to_dict() for k in self.keys], "user_data": self.user_data,
            "password": self.password, "networks": [n.to_dict() for n in self.networks],
            "vendor_data": dict(self.vendor_data)}
