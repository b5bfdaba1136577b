"""What an instance sees as its metadata, rendered from the instance document.

Pure functions, no I/O, standard library only, so that both consumers of the
document import them without importing each other: the compute agent writes
:func:`render`'s files into the config drive, and ``stratus-metadata`` serves
the same files over HTTP plus the EC2 plain-text tree (:func:`ec2_text`).

Every function takes an :class:`~stratus.contracts.instance.InstanceDocument`
(or its JSON form, which is read through ``InstanceDocument.from_dict``); the
document is described in docs/compute.md ("The instance document").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from stratus.contracts.instance import InstanceDocument

Doc = InstanceDocument | Mapping[str, Any]

# The OpenStack metadata versions, oldest first (Nova's list), and the first
# version each file appears in.
OPENSTACK_VERSIONS = (
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
)
_FILE_SINCE = {
    "meta_data.json": "2012-08-10",
    "user_data": "2012-08-10",
    "vendor_data.json": "2013-10-17",
    "network_data.json": "2015-10-15",
    "vendor_data2.json": "2016-10-06",
}
# Served over HTTP only (never on a config drive): the guest posts its password here.
PASSWORD_SINCE = "2013-04-04"

# The EC2 metadata versions Nova answers, oldest first.
EC2_VERSIONS = (
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
)

RANDOM_SEED_BYTES = 512
DEFAULT_VIF_TYPE = "ovs"


def device_name(port_id: str) -> str:
    """The tap device of a port (as the compute agent names it)."""
    return "tap" + port_id[:11]


def instance_id(uuid: str) -> str:
    """EC2 instance id ``i-xxxxxxxx`` derived from the server's uuid."""
    return "i-" + uuid.replace("-", "")[:8].lower()


def _ec2_id(prefix: str, value: str | None) -> str:
    if not value:
        return f"{prefix}-00000000"
    return f"{prefix}-" + value.replace("-", "")[:8].lower()


def random_seed(uuid: str) -> str:
    """512 bytes, base64: deterministic per server so a config drive is reproducible."""
    out = b""
    counter = 0
    while len(out) < RANDOM_SEED_BYTES:
        out += hashlib.sha512(f"stratus-random-seed\n{uuid}\n{counter}".encode()).digest()
        counter += 1
    return base64.b64encode(out[:RANDOM_SEED_BYTES]).decode()


def user_data_bytes(doc: Doc) -> bytes | None:
    """The decoded user data, or None when the server has none."""
    raw = InstanceDocument.coerce(doc).user_data
    if raw is None or raw == "":
        return None
    try:
        return base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError):
        # The compute API stores base64; anything else is served as it came.
        return str(raw).encode()


def _public_keys(doc: InstanceDocument) -> list[dict[str, str]]:
    return [k.to_dict() for k in doc.keys]


def meta_data(doc: Doc) -> dict[str, Any]:
    """The OpenStack ``meta_data.json``."""
    doc = InstanceDocument.coerce(doc)
    keys = _public_keys(doc)
    uuid = doc.uuid
    return {
        "uuid": uuid,
        "name": doc.name or "",
        "hostname": doc.hostname or doc.name or "",
        "launch_index": doc.launch_index,
        "availability_zone": doc.availability_zone or "nova",
        "project_id": doc.project_id or "",
        "meta": dict(doc.meta),
        "public_keys": {k["name"]: k["data"] for k in keys if k["type"] == "ssh"},
        "keys": keys,
        "devices": [],
        "random_seed": random_seed(uuid),
    }


def _mask(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return str(network.netmask)


def _route(destination: str, nexthop: str) -> dict[str, str]:
    net = ipaddress.ip_network(destination, strict=False)
    return {"network": str(net.network_address), "netmask": _mask(net), "gateway": nexthop}


def network_data(doc: Doc) -> dict[str, Any]:
    """The OpenStack ``network_data.json``: one link per port, one static network per
    fixed IP (with the default route via the subnet's gateway and the host routes;
    the link's ``mtu`` only when the port has one),
    and the DNS servers as services. Static, as Nova renders Neutron ports, so
    cloud-init configures the NIC the same way whether or not the subnet runs DHCP.
    The first network with a gateway (per IP version) also carries ``gateway``."""
    doc = InstanceDocument.coerce(doc)
    links: dict[str, dict[str, Any]] = {}
    networks: list[dict[str, Any]] = []
    services: list[dict[str, str]] = []
    seen_dns: set[str] = set()
    gateway_given: set[int] = set()  # IP versions whose default gateway is already named
    # One entry of the document per fixed IP: a port with two addresses is one link
    # with two networks.
    for index, net in enumerate(doc.networks):
        port_id = net.port_id
        link_id = net.device_name or device_name(port_id)
        if link_id not in links:
            link: dict[str, Any] = {
                "id": link_id,
                "vif_id": port_id,
                "type": net.vif_type or DEFAULT_VIF_TYPE,
                "ethernet_mac_address": net.mac_address.lower(),
            }
            if net.mtu:
                link["mtu"] = net.mtu
            links[link_id] = link
        ip = net.ip_address
        subnet = net.subnet
        if not ip or not subnet.cidr:
            continue
        cidr = ipaddress.ip_network(subnet.cidr, strict=False)
        routes: list[dict[str, str]] = []
        gateway = subnet.gateway_ip
        if gateway:
            default = "0.0.0.0/0" if cidr.version == 4 else "::/0"
            routes.append(_route(default, gateway))
        for host_route in subnet.host_routes:
            routes.append(_route(host_route.destination, host_route.nexthop))
        dns = list(subnet.dns_nameservers)
        entry: dict[str, Any] = {
            "id": f"network{index}",
            "type": "ipv4" if cidr.version == 4 else "ipv6",
            "link": link_id,
            "ip_address": ip,
            "netmask": _mask(cidr),
            "routes": routes,
            "network_id": net.network_id,
            "services": [{"type": "dns", "address": a} for a in dns],
        }
        if gateway and cidr.version not in gateway_given:
            # Not in Nova's output: cloud-init copies it to the subnet, so the first NIC's
            # default route needs no `route` command (ifupdown without net-tools runs the
            # routes' `post-up route add ... || true` in vain). Only once per IP version:
            # a second `gateway` would make ifup fail on the second NIC.
            entry["gateway"] = gateway
            gateway_given.add(cidr.version)
        networks.append(entry)
        for address in dns:
            if address not in seen_dns:
                seen_dns.add(address)
                services.append({"type": "dns", "address": address})
    return {"links": list(links.values()), "networks": networks, "services": services}


def ec2_metadata(doc: Doc) -> dict[str, Any]:
    """The EC2 ``meta-data`` as a JSON map (the config drive's ``meta-data.json``)."""
    doc = InstanceDocument.coerce(doc)
    first = doc.networks[0] if doc.networks else None
    hostname = doc.hostname or doc.name or ""
    keys = [k for k in _public_keys(doc) if k["type"] == "ssh"]
    uuid = doc.uuid
    return {
        "ami-id": _ec2_id("ami", doc.image_id),
        "ami-launch-index": doc.launch_index,
        "ami-manifest-path": "FIXME",
        "block-device-mapping": {"ami": "vda", "root": "/dev/vda"},
        "hostname": hostname,
        "instance-action": "none",
        "instance-id": instance_id(uuid),
        "instance-type": doc.flavor_name or "",
        "local-hostname": hostname,
        "local-ipv4": (first.ip_address if first else None) or "",
        "placement": {"availability-zone": doc.availability_zone or "nova"},
        "public-hostname": hostname,
        "public-ipv4": (first.floating_ip if first else None) or "",
        "public-keys": {str(i): {"openssh-key": k["data"]} for i, k in enumerate(keys)},
        "reservation-id": _ec2_id("r", hashlib.sha1(uuid.encode()).hexdigest()),
        "security-groups": list(doc.security_groups),
    }


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def _openstack_all(doc: InstanceDocument) -> dict[str, bytes]:
    """Every OpenStack file once (user_data only when there is some)."""
    files = {
        "meta_data.json": _json(meta_data(doc)),
        "network_data.json": _json(network_data(doc)),
        "vendor_data.json": _json(doc.vendor_data),
        "vendor_data2.json": _json({}),
    }
    user = user_data_bytes(doc)
    if user is not None:
        files["user_data"] = user
    return files


def _in_version(name: str, version: str) -> bool:
    return version == "latest" or version >= _FILE_SINCE[name]


def openstack_files(doc: Doc, version: str) -> dict[str, bytes]:
    """The files of one OpenStack metadata version (``latest`` has all of them)."""
    files = _openstack_all(InstanceDocument.coerce(doc))
    return {n: d for n, d in files.items() if _in_version(n, version)}


def render(doc: Doc) -> dict[str, bytes]:
    """Every file of the config drive, by path relative to its root."""
    doc = InstanceDocument.coerce(doc)
    out: dict[str, bytes] = {}
    files = _openstack_all(doc)
    for version in (*OPENSTACK_VERSIONS, "latest"):
        for name in _FILE_SINCE:
            if name in files and _in_version(name, version):
                out[f"openstack/{version}/{name}"] = files[name]
    ec2 = _json(ec2_metadata(doc))
    user = files.get("user_data")
    for version in ("2009-04-04", "latest"):
        out[f"ec2/{version}/meta-data.json"] = ec2
        if user is not None:
            out[f"ec2/{version}/user-data"] = user
    return out


def _listing(items: list[str]) -> bytes:
    return "\n".join(items).encode()


def ec2_text(meta: dict[str, Any], path: str) -> bytes | None:
    """The EC2 plain-text tree below ``meta-data/``: ``path`` is what follows it
    (``""`` for the top listing, ``"placement/"``, ``"public-keys/0/openssh-key"``).
    Directories list their entries one per line, sub-directories with a trailing
    ``/``; ``public-keys/`` lists ``<index>=<key name>`` (given in ``key_names``).
    None when the path does not exist."""
    parts = [p for p in path.split("/") if p]
    if any(p.startswith("_") for p in parts):
        return None
    node: Any = meta
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            # EC2 also answers public-keys/<index>=<name>/... on the index alone.
            if depth > 0 and parts[depth - 1] == "public-keys" and isinstance(node, dict):
                index = part.split("=", 1)[0]
                if index in node:
                    node = node[index]
                    continue
            return None
        node = node[part]
    if isinstance(node, dict):
        if parts and parts[-1] == "public-keys":
            names = meta.get("_key_names") or {}
            return _listing([f"{i}={names.get(i, '')}" for i in node])
        return _listing([
            f"{k}/" if isinstance(v, dict) else k for k, v in node.items()
            if not k.startswith("_")
        ])
    if isinstance(node, list):
        return _listing([str(v) for v in node])
    return str(node).encode()


def ec2_tree(doc: Doc) -> dict[str, Any]:
    """:func:`ec2_metadata` plus the key names the ``public-keys/`` listing shows."""
    doc = InstanceDocument.coerce(doc)
    meta = ec2_metadata(doc)
    keys = [k for k in _public_keys(doc) if k["type"] == "ssh"]
    meta["_key_names"] = {str(i): k["name"] for i, k in enumerate(keys)}
    return meta
