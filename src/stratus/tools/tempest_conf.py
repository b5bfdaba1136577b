"""Writes a tempest.conf that describes a deployed Stratus cloud truthfully.

    python -m stratus.tools.tempest_conf --clouds-yaml /etc/stratus/clouds.yaml \\
        --output WORKSPACE/etc/tempest.conf [--cloud stratus] [--image NAME] [--ssh-user root]

Everything comes from the cloud itself, through its public APIs, with the admin
credentials of its clouds.yaml: the catalog (which services exist, the region), the
compute and volume microversion ranges, the two smallest flavors, the image, the external
network, the network API's extension list and the number of compute hosts. What the APIs
cannot tell (the identity extensions, the compute features) is the constant description of
what Stratus builds, kept here next to the reasons. The generation is split in two:
``discover`` (HTTP) and ``render`` (a pure function of ``CloudFacts``), so that the unit
tests check the file without a cloud. docs/tempest.md has the whole harness.
"""

from __future__ import annotations

import argparse
import configparser
import io
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

# Keystone has no extension listing in v3: the ones Stratus's identity service builds.
# Not built (their tests are skipped by these settings or listed in etc/tempest-skips.txt):
# OS-INHERIT, OS-OAUTH1, OS-EP-FILTER (endpoint groups), OS-FEDERATION, domain configs.
IDENTITY_EXTENSIONS = ("OS-EC2", "OS-TRUST")
# What stratus-object's GET /info lists (docs/object-storage.md)
OBJECT_APIS = ("account_quotas", "container_quotas", "slo", "bulk_delete", "tempurl")

# What the compute API and agent do (Tempest cannot discover these): server actions
# os-start/os-stop, pause/unpause, suspend/resume, reboot, rebuild, createImage, console
# output, interface hot-plug (os-interface: by port, network or fixed IP, and detach) and
# volume attach; resize with confirm and revert on the server's own host (Nova's
# allow_resize_to_same_host: Tempest's resize tests need no second host); instance
# actions (os-instance-actions, no option). No migration, shelve, rescue or password
# change.
COMPUTE_FEATURES: dict[str, bool] = {
    "console_output": True,
    "pause": True,
    "suspend": True,
    "snapshot": True,
    "interface_attach": True,
    "config_drive": True,
    "metadata_service": True,
    "resize": True,
    "cold_migration": False,
    "live_migration": False,
    "shelve": False,
    "shelve_migrate": False,
    "rescue": False,
    "change_password": False,
    "personality": False,
    "disk_config": True,  # OS-DCF:diskConfig AUTO/MANUAL kept and shown (migration 0010)
    "attach_encrypted_volume": False,
    "swap_volume": False,
    "volume_multiattach": False,
    "vnc_console": False,
    "spice_console": False,
    "serial_console": False,
    "ide_bus": False,
}

# The volume service: volumes, snapshots, clones, extend while detached, upload to image.
VOLUME_FEATURES: dict[str, bool] = {
    "snapshot": True,
    "clone": True,
    "backup": False,
    "multi_backend": False,
    "manage_snapshot": False,
    "manage_volume": False,
    "extend_attached_volume": False,
    "extend_attached_encrypted_volume": False,
    "replication": False,
}

# Catalog types of the volume API, newest first (Tempest's default is block-storage).
VOLUME_TYPES = ("block-storage", "volumev3")


class DiscoveryError(Exception):
    """The cloud cannot be described: names what is missing and where it was looked for."""


@dataclass(frozen=True)
class CloudFacts:
    """What a tempest.conf needs to know about one cloud."""

    auth_url: str  # the identity v3 URL, ending in /v3
    region: str
    admin_username: str
    admin_password: str
    admin_project: str
    admin_domain: str  # a domain name, as Tempest wants it
    services: frozenset[str]  # catalog types
    image_ref: str
    image_alt_ref: str
    flavor_ref: str
    flavor_alt_ref: str
    public_network_id: str
    public_network_name: str
    network_extensions: tuple[str, ...]
    compute_microversions: tuple[str, str] | None = None
    volume_catalog_type: str | None = None
    volume_microversions: tuple[str, str] | None = None
    compute_nodes: int = 1
    ssh_user: str | None = None  # None: validation over SSH off
    build_timeout: int = 300
    extra: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # stratus-dashboard's root URL (it is not in the catalog): Tempest's dashboard test runs
    dashboard_url: str | None = None
    # the CA bundle the cloud's https is verified with (clouds.yaml ``cacert``); None: the
    # system's trust store
    ca_file: str | None = None


def _flag(value: bool) -> str:
    return "true" if value else "false"


def render(facts: CloudFacts) -> str:
    """The tempest.conf text for ``facts`` (every section Tempest reads for the smoke set)."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str  # type: ignore[assignment,method-assign]  # keep the keys' case
    timeout = str(facts.build_timeout)
    conf["DEFAULT"] = {"log_file": "tempest.log", "debug": "false"}
    conf["auth"] = {
        "use_dynamic_credentials": "true",
        "create_isolated_networks": "true",
        "admin_username": facts.admin_username,
        "admin_password": facts.admin_password,
        "admin_project_name": facts.admin_project,
        "admin_domain_name": facts.admin_domain,
        "default_credentials_domain_name": facts.admin_domain,
    }
    conf["identity"] = {
        "uri_v3": facts.auth_url,
        "auth_version": "v3",
        "region": facts.region,
        "v3_endpoint_type": "public",
        "default_domain_id": "default",
        "disable_ssl_certificate_validation": "false",
    }
    if facts.ca_file:
        conf["identity"]["ca_certificates_file"] = facts.ca_file
    conf["identity-feature-enabled"] = {
        "api_v2": "false",
        "api_v3": "true",
        "api_extensions": ",".join(IDENTITY_EXTENSIONS),
        "trust": _flag("OS-TRUST" in IDENTITY_EXTENSIONS),
        "domain_specific_drivers": "false",
        "access_rules": "false",
        "security_compliance": "false",
    }
    has = facts.services
    conf["service_available"] = {
        "nova": _flag("compute" in has),
        "neutron": _flag("network" in has),
        "glance": _flag("image" in has),
        "cinder": _flag(facts.volume_catalog_type is not None),
        "swift": _flag("object-store" in has),
        "horizon": _flag(facts.dashboard_url is not None),
    }
    if facts.dashboard_url is not None:
        # the login form's action is read from the page (Tempest's HorizonHTMLParser)
        # Tempest's dashboard test verifies with the system's trust store (where the
        # common role puts the cloud's CA), never unverified.
        conf["dashboard"] = {"dashboard_url": facts.dashboard_url.rstrip("/") + "/",
                             "disable_ssl_certificate_validation": "false"}
    compute = {
        "region": facts.region,
        "endpoint_type": "publicURL",
        "image_ref": facts.image_ref,
        "image_ref_alt": facts.image_alt_ref,
        "flavor_ref": facts.flavor_ref,
        "flavor_ref_alt": facts.flavor_alt_ref,
        "build_timeout": timeout,
        "min_compute_nodes": str(facts.compute_nodes),
    }
    if facts.compute_microversions:
        compute["min_microversion"], compute["max_microversion"] = facts.compute_microversions
    conf["compute"] = compute
    conf["compute-feature-enabled"] = {k: _flag(v) for k, v in COMPUTE_FEATURES.items()}
    conf["network"] = {
        "region": facts.region,
        "endpoint_type": "publicURL",
        "public_network_id": facts.public_network_id,
        "floating_network_name": facts.public_network_name,
        "project_network_cidr": "10.100.0.0/16",
        "project_network_mask_bits": "28",
        "project_networks_reachable": "false",
        "build_timeout": timeout,
    }
    exts = facts.network_extensions
    conf["network-feature-enabled"] = {
        "api_extensions": ",".join(exts),
        "ipv6": "true",  # IPv6 subnets (network/subnets.py; docs/ipv6.md says what the
        # data plane does with them)
        "ipv6_subnet_attributes": "true",  # ipv6_ra_mode / ipv6_address_mode are core
        "port_security": _flag("port-security" in exts),
        "floating_ips": _flag("router" in exts),
    }
    conf["image"] = {
        "region": facts.region,
        "endpoint_type": "publicURL",
        "container_formats": "bare",
        "disk_formats": "qcow2,raw",
        "build_timeout": timeout,
    }
    conf["image-feature-enabled"] = {"api_v2": "true", "import_image": "false"}
    if "object-store" in has:
        # members write their account (Tempest's operator role); /info's middlewares are
        # the discoverable APIs, so the tests of the others (staticweb, formpost,
        # container_sync, versioning, extract archive...) skip themselves
        conf["object-storage"] = {"region": facts.region, "endpoint_type": "publicURL",
                                  "operator_role": "member",
                                  "reseller_admin_role": "admin"}
        conf["object-storage-feature-enabled"] = {
            "discoverable_apis": ",".join(OBJECT_APIS), "container_sync": "false",
            "object_versioning": "false"}
    if facts.volume_catalog_type is not None:
        volume = {"region": facts.region, "endpoint_type": "publicURL",
                  "catalog_type": facts.volume_catalog_type, "build_timeout": timeout,
                  "volume_size": "1", "storage_protocol": "iSCSI"}
        if facts.volume_microversions:
            volume["min_microversion"], volume["max_microversion"] = facts.volume_microversions
        conf["volume"] = volume
        conf["volume-feature-enabled"] = {k: _flag(v) for k, v in VOLUME_FEATURES.items()}
    ssh = facts.ssh_user is not None
    conf["validation"] = {
        "run_validation": _flag(ssh),
        "connect_method": "floating",
        "auth_method": "keypair",
        "image_ssh_user": facts.ssh_user or "root",
        "image_alt_ssh_user": facts.ssh_user or "root",
        "ssh_timeout": timeout,
        "ping_timeout": timeout,
        "network_for_ssh": facts.public_network_name,
    }
    conf["scenario"] = {"dhcp_client": "udhcpc"}
    for section, values in facts.extra.items():
        if section not in conf:
            conf[section] = {}
        conf[section].update(values)
    out = io.StringIO()
    out.write("# Generated by stratus.tools.tempest_conf from the cloud at "
              f"{facts.auth_url}; do not edit (docs/tempest.md).\n")
    conf.write(out)
    return out.getvalue()


# ---- discovery ----------------------------------------------------------------------------

def load_cloud(clouds_yaml: Path, cloud: str) -> dict[str, Any]:
    """The ``cloud`` entry of a clouds.yaml (its ``auth`` and ``region_name``)."""
    import yaml  # the test extra has it (Tempest and Ansible do)

    try:
        data = yaml.safe_load(clouds_yaml.read_text())
    except OSError as exc:
        raise DiscoveryError(f"{clouds_yaml}: {exc.strerror}") from exc
    entry = (data or {}).get("clouds", {}).get(cloud)
    if not isinstance(entry, dict) or not isinstance(entry.get("auth"), dict):
        raise DiscoveryError(f"{clouds_yaml}: no cloud {cloud!r} with an auth section")
    return entry


def _root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def _range(versions_doc: dict[str, Any], endpoint: str) -> tuple[str, str] | None:
    """The (min, max) microversion of the version an endpoint URL points into."""
    path = urlsplit(endpoint).path.strip("/").split("/")
    wanted = path[0] if path and path[0] else None
    for version in versions_doc.get("versions", []):
        if version.get("version") and (wanted is None or version.get("id") == wanted
                                       or version.get("id", "").startswith(f"{wanted}.")):
            return str(version.get("min_version") or "1.0"), str(version["version"])
    return None


class Discovery:
    """Asks the cloud what it is, as its admin (``http`` is an httpx.Client or a fake)."""

    def __init__(self, entry: dict[str, Any], http: httpx.Client) -> None:
        self.auth = entry["auth"]
        self.region = str(entry.get("region_name") or "RegionOne")
        self.interface = str(entry.get("interface") or "public")
        self.http = http
        self.token = ""
        self.catalog: dict[str, str] = {}

    def _get(self, url: str, **params: Any) -> dict[str, Any]:
        resp = self.http.get(url, headers={"X-Auth-Token": self.token}, params=params or None)
        if resp.status_code >= 300 and resp.status_code != 300:  # 300: a version list
            raise DiscoveryError(f"GET {url}: {resp.status_code} {resp.text[:200]}")
        body = resp.json()
        return body if isinstance(body, dict) else {}

    def login(self) -> None:
        """A project-scoped admin token and the catalog's endpoints of this region."""
        auth = self.auth
        user_domain = ({"id": auth["user_domain_id"]} if auth.get("user_domain_id")
                       else {"name": auth.get("user_domain_name", "Default")})
        project_domain = ({"id": auth["project_domain_id"]} if auth.get("project_domain_id")
                          else {"name": auth.get("project_domain_name", "Default")})
        url = str(auth["auth_url"]).rstrip("/") + "/auth/tokens"
        resp = self.http.post(url, json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": auth["username"], "domain": user_domain,
                "password": auth["password"]}}},
            "scope": {"project": {"name": auth["project_name"], "domain": project_domain}},
        }})
        if resp.status_code != 201:
            raise DiscoveryError(f"POST {url}: {resp.status_code} {resp.text[:200]}")
        self.token = resp.headers["X-Subject-Token"]
        for service in resp.json()["token"].get("catalog", []):
            for endpoint in service.get("endpoints", []):
                if (endpoint.get("interface") == self.interface
                        and endpoint.get("region", self.region) == self.region):
                    self.catalog[service["type"]] = str(endpoint["url"]).rstrip("/")

    def endpoint(self, kind: str) -> str:
        if kind not in self.catalog:
            raise DiscoveryError(f"the catalog has no {self.interface} {kind} endpoint "
                                 f"in region {self.region} (it has: {sorted(self.catalog)})")
        return self.catalog[kind]

    def flavors(self, wanted: Sequence[str | None] = (None, None)) -> tuple[str, str]:
        """The ids of the flavors named (or with the ids) ``wanted``; for each not given,
        the smallest flavors (RAM, disk, vCPUs): the first and the second."""
        found = self._get(self.endpoint("compute") + "/flavors/detail")["flavors"]
        if not found:
            raise DiscoveryError("the cloud has no flavor")
        ordered = sorted(found, key=lambda f: (f.get("ram", 0), f.get("disk", 0),
                                               f.get("vcpus", 0), f["id"]))
        picked: list[str] = []
        for i, want in enumerate(wanted):
            if want is None:
                picked.append(str(ordered[min(i, len(ordered) - 1)]["id"]))
                continue
            match = [f for f in ordered if want in (f["id"], f.get("name"))]
            if not match:
                raise DiscoveryError(f"no flavor named {want!r} (the cloud has: "
                                     f"{sorted(str(f.get('name')) for f in ordered)})")
            picked.append(str(match[0]["id"]))
        return picked[0], picked[1]

    def image(self, name: str | None) -> str:
        base = self.endpoint("image").removesuffix("/v2") + "/v2/images"
        params: dict[str, Any] = {"status": "active"}
        if name:
            params["name"] = name
        found = self._get(base, **params)["images"]
        if not found:
            raise DiscoveryError(f"no active image{f' named {name!r}' if name else ''}")
        # Tempest's tests run in projects of their own: only a public image is theirs too.
        usable = [i for i in found if i.get("visibility") in ("public", "community")]
        if not usable:
            raise DiscoveryError(f"the image {found[0]['name']!r} is {found[0].get('visibility')}"
                                 ": Tempest's projects cannot boot it (make it public)")
        return str(sorted(usable, key=lambda i: (i.get("size") or 0, i["id"]))[0]["id"])

    def public_network(self, name: str | None) -> tuple[str, str]:
        base = self.endpoint("network").removesuffix("/v2.0") + "/v2.0"
        params: dict[str, Any] = {"router:external": "true"}
        if name:
            params["name"] = name
        found = self._get(base + "/networks", **params)["networks"]
        if not found:
            raise DiscoveryError(f"no external network{f' named {name!r}' if name else ''}")
        net = sorted(found, key=lambda n: n["id"])[0]
        return str(net["id"]), str(net["name"])

    def network_extensions(self) -> tuple[str, ...]:
        base = self.endpoint("network").removesuffix("/v2.0") + "/v2.0"
        return tuple(sorted(e["alias"] for e in self._get(base + "/extensions")["extensions"]))

    def microversions(self, kind: str) -> tuple[str, str] | None:
        endpoint = self.endpoint(kind)
        return _range(self._get(_root(endpoint)), endpoint)

    def compute_nodes(self) -> int:
        found = self._get(self.endpoint("compute") + "/os-hypervisors")["hypervisors"]
        return max(1, len(found))


def discover(entry: dict[str, Any], http: httpx.Client, *, image: str | None = None,
             public_network: str | None = None, ssh_user: str | None = None,
             flavors: Sequence[str | None] = (None, None),
             build_timeout: int = 300, dashboard_url: str | None = None) -> CloudFacts:
    """The facts of the cloud ``entry`` (a clouds.yaml entry) describes."""
    d = Discovery(entry, http)
    d.login()
    volume_type = next((t for t in VOLUME_TYPES if t in d.catalog), None)
    flavor, flavor_alt = d.flavors(flavors)
    image_id = d.image(image)
    net_id, net_name = d.public_network(public_network)
    auth = d.auth
    return CloudFacts(
        auth_url=str(auth["auth_url"]).rstrip("/"),
        region=d.region,
        admin_username=str(auth["username"]),
        admin_password=str(auth["password"]),
        admin_project=str(auth["project_name"]),
        admin_domain=str(auth.get("user_domain_name") or "Default"),
        services=frozenset(d.catalog),
        image_ref=image_id,
        image_alt_ref=image_id,
        flavor_ref=flavor,
        flavor_alt_ref=flavor_alt,
        public_network_id=net_id,
        public_network_name=net_name,
        network_extensions=d.network_extensions(),
        compute_microversions=d.microversions("compute"),
        volume_catalog_type=volume_type,
        volume_microversions=d.microversions(volume_type) if volume_type else None,
        compute_nodes=d.compute_nodes(),
        ssh_user=ssh_user,
        build_timeout=build_timeout,
        dashboard_url=dashboard_url,
        ca_file=str(entry["cacert"]) if entry.get("cacert") else None,
    )


def verify_for(entry: dict[str, Any]) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a clouds.yaml entry: its ``cacert`` when it names one (a TLS
    cloud with its own CA), ``verify: false`` as written, else the default trust."""
    if entry.get("cacert"):
        return ssl.create_default_context(cafile=str(entry["cacert"]))
    return bool(entry.get("verify", True))


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: writes the conf, or says on one line why it cannot."""
    parser = argparse.ArgumentParser(prog="python -m stratus.tools.tempest_conf",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clouds-yaml", type=Path, default=Path("/etc/stratus/clouds.yaml"))
    parser.add_argument("--cloud", default="stratus")
    parser.add_argument("--image", help="the image's name (default: the smallest active one)")
    parser.add_argument("--public-network", help="the external network's name (default: the "
                        "first external network)")
    parser.add_argument("--flavor", help="the servers' flavor, by name or id (default: the "
                        "smallest)")
    parser.add_argument("--flavor-alt", help="the resize flavor (default: the second "
                        "smallest)")
    parser.add_argument("--ssh-user", help="validate guests over SSH as this user (default: "
                        "validation off)")
    parser.add_argument("--build-timeout", type=int, default=300)
    parser.add_argument("--dashboard-url", help="stratus-dashboard's root URL: turns on "
                        "Tempest's dashboard test (default: off; the catalog does not list it)")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        entry = load_cloud(args.clouds_yaml, args.cloud)
        with httpx.Client(timeout=60, verify=verify_for(entry)) as http:
            facts = discover(entry, http, image=args.image, public_network=args.public_network,
                             ssh_user=args.ssh_user, flavors=(args.flavor, args.flavor_alt),
                             build_timeout=args.build_timeout,
                             dashboard_url=args.dashboard_url)
    except (DiscoveryError, httpx.HTTPError) as exc:
        print(f"tempest_conf: {exc}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(facts))
    args.output.chmod(0o600)  # it holds the admin password
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
