# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""The compute API (Nova v2.1) as the compute modules use it, and their decision logic.

``ComputeApi`` wraps a ``StratusClient`` with the few compute calls the modules
need and negotiates the microversion once: ``2.47`` (flavor embedded in the
server, networks required on create), or the service's maximum when that is
lower. The convergence classes (``FlavorConvergence``, ``KeypairConvergence``,
``ServerConvergence``) take the compute, image and network APIs as parameters,
so tests give them fakes with the same methods. Each computes one
``Difference`` first and applies it only when not in check mode.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import base64
import re
import time

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import Difference

WANTED_MICROVERSION = (2, 47)
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
HEX_ID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
# Description of a floating IP that cloud_server allocated (it releases it on delete).
AUTO_FIP_MARK = "stratus.cloud.cloud_server auto floating IP of server "
# power_state option -> the server status it means
POWER_STATUS = {
    "started": "ACTIVE",
    "stopped": "SHUTOFF",
    "paused": "PAUSED",
    "suspended": "SUSPENDED",
}
# (current status, wanted power_state) -> actions, in order, each with the status it leads to
POWER_ACTIONS = {
    ("SHUTOFF", "started"): [("os-start", "ACTIVE")],
    ("PAUSED", "started"): [("unpause", "ACTIVE")],
    ("SUSPENDED", "started"): [("resume", "ACTIVE")],
    ("ACTIVE", "stopped"): [("os-stop", "SHUTOFF")],
    ("PAUSED", "stopped"): [("unpause", "ACTIVE"), ("os-stop", "SHUTOFF")],
    ("SUSPENDED", "stopped"): [("resume", "ACTIVE"), ("os-stop", "SHUTOFF")],
    ("ACTIVE", "paused"): [("pause", "PAUSED")],
    ("SHUTOFF", "paused"): [("os-start", "ACTIVE"), ("pause", "PAUSED")],
    ("SUSPENDED", "paused"): [("resume", "ACTIVE"), ("pause", "PAUSED")],
    ("ACTIVE", "suspended"): [("suspend", "SUSPENDED")],
    ("SHUTOFF", "suspended"): [("os-start", "ACTIVE"), ("suspend", "SUSPENDED")],
    ("PAUSED", "suspended"): [("unpause", "ACTIVE"), ("suspend", "SUSPENDED")],
}
# Statuses a server passes through on its way to a stable one.
TRANSIENT = ("BUILD", "REBOOT", "HARD_REBOOT", "MIGRATING", "RESIZE", "REBUILD")


def parse_version(text):
    """(major, minor) of a microversion string such as "2.47"; None when empty or bad."""
    try:
        major, minor = str(text).split(".")
        return int(major), int(minor)
    except (TypeError, ValueError):
        return None


class ComputeApi:
    """Calls on the compute API (catalog type ``compute``) at a negotiated microversion."""

    service = "compute"

    def __init__(self, client):
        self.client = client
        self._microversion = None

    @property
    def project_id(self):
        return self.client.project_id

    @property
    def microversion(self):
        """``2.47``, or the service's maximum when lower (read from its version document)."""
        if self._microversion is None:
            body = self.client.get(self.service, self.client.endpoint(self.service))
            version = (body or {}).get("version") or {}
            if not version and isinstance((body or {}).get("versions"), list):
                version = next((v for v in body["versions"] if v.get("id") == "v2.1"), {})
            top = parse_version(version.get("version"))
            wanted = WANTED_MICROVERSION if top is None else min(top, WANTED_MICROVERSION)
            self._microversion = "{}.{}".format(*wanted) if top else "2.1"
        return self._microversion

    def call(self, method, path, body=None, query=None, expect=(200, 201, 202, 204)):
        version = self.microversion
        headers = {
            "OpenStack-API-Version": f"compute {version}",
            "X-OpenStack-Nova-API-Version": version,
        }
        return self.client.request(
            method, self.service, path, body=body, query=query, headers=headers, expect=expect
        ).body

    def get_or_none(self, path, key):
        try:
            return self.call("GET", path, expect=(200,))[key]
        except StratusError as exc:
            if exc.status == 404:
                return None
            raise

    # ---- flavors -------------------------------------------------------------------------

    def flavors(self):
        """Every flavor the caller may see (private ones too, for admins)."""
        return self.call("GET", "/flavors/detail", query={"is_public": "None"})["flavors"]

    def find_flavor(self, name_or_id):
        flavor = self.get_or_none(f"/flavors/{name_or_id}", "flavor")
        if flavor is not None:
            return flavor
        found = [f for f in self.flavors() if f.get("name") == name_or_id]
        if len(found) > 1:
            raise StratusError(f"{len(found)} flavors are named {name_or_id!r}; use the ID.")
        return found[0] if found else None

    def create_flavor(self, attrs):
        return self.call("POST", "/flavors", body={"flavor": attrs})["flavor"]

    def delete_flavor(self, flavor_id):
        self.call("DELETE", f"/flavors/{flavor_id}")

    def extra_specs(self, flavor_id):
        return self.call("GET", f"/flavors/{flavor_id}/os-extra_specs")["extra_specs"]

    def set_extra_specs(self, flavor_id, specs):
        self.call("POST", f"/flavors/{flavor_id}/os-extra_specs", body={"extra_specs": specs})

    def unset_extra_spec(self, flavor_id, key):
        self.call("DELETE", f"/flavors/{flavor_id}/os-extra_specs/{key}")

    def flavor_access(self, flavor_id):
        body = self.call("GET", f"/flavors/{flavor_id}/os-flavor-access")
        return sorted(a["tenant_id"] for a in body["flavor_access"])

    def flavor_access_action(self, flavor_id, action, project_id):
        self.call("POST", f"/flavors/{flavor_id}/action", body={action: {"tenant": project_id}})

    # ---- key pairs -----------------------------------------------------------------------

    def get_keypair(self, name):
        return self.get_or_none(f"/os-keypairs/{name}", "keypair")

    def create_keypair(self, attrs):
        return self.call("POST", "/os-keypairs", body={"keypair": attrs})["keypair"]

    def delete_keypair(self, name):
        self.call("DELETE", f"/os-keypairs/{name}")

    # ---- servers -------------------------------------------------------------------------

    def servers(self, query=None):
        """Servers (detailed) matching ``query``, following the ``next`` links."""
        out: list = []
        body = self.call("GET", "/servers/detail", query=query)
        while True:
            out.extend(body.get("servers") or [])
            nxt = [link["href"] for link in body.get("servers_links") or []
                   if link.get("rel") == "next"]
            if not nxt:
                return out
            body = self.call("GET", nxt[0])

    def get_server(self, server_id):
        return self.get_or_none(f"/servers/{server_id}", "server")

    def find_servers(self, name_or_id, query=None):
        """Servers whose ID is ``name_or_id``, else those whose name is exactly it."""
        if UUID_RE.match(name_or_id):
            server = self.get_server(name_or_id)
            if server is not None:
                return [server]
        # The name filter is a regular expression in the compute API: anchored and escaped.
        pattern = "^" + re.escape(name_or_id) + "$"
        found = self.servers(dict(query or {}, name=pattern))
        return [s for s in found if s.get("name") == name_or_id]

    def create_server(self, attrs):
        return self.call("POST", "/servers", body={"server": attrs}, expect=(202,))["server"]

    def delete_server(self, server_id):
        try:
            self.call("DELETE", f"/servers/{server_id}", expect=(204,))
        except StratusError as exc:
            if exc.status != 404:
                raise

    def action(self, server_id, name, value=None):
        self.call("POST", f"/servers/{server_id}/action", body={name: value},
                  expect=(200, 202, 204))

    def set_metadata(self, server_id, metadata):
        self.call("POST", f"/servers/{server_id}/metadata", body={"metadata": metadata})

    def delete_metadata(self, server_id, key):
        self.call("DELETE", f"/servers/{server_id}/metadata/{key}", expect=(204,))


# ---- helpers shared by the modules ---------------------------------------------------------


def key_fingerprint(public_key):
    """The type and base64 body of an OpenSSH public key (the comment does not count)."""
    return " ".join((public_key or "").split()[:2])


def server_addresses(server):
    """(fixed, floating) addresses of a server, in the order of its ``addresses``."""
    fixed: list = []
    floating: list = []
    for entries in (server.get("addresses") or {}).values():
        for entry in entries:
            kind = entry.get("OS-EXT-IPS:type", "fixed")
            (floating if kind == "floating" else fixed).append(entry.get("addr"))
    return fixed, floating


def enrich(server, network=None):
    """The server dict plus ``floating_ip`` and ``access_ipv4`` (the floating, else fixed IP).

    When the server's ``addresses`` list no floating IP and a network API is
    given, the floating IPs of its ports are looked up there.
    """
    fixed, floating = server_addresses(server)
    if not floating and network is not None and server.get("id"):
        for port in network.list("ports", {"device_id": server["id"]}):
            for fip in network.list("floatingips", {"port_id": port["id"]}):
                floating.append(fip["floating_ip_address"])
    server = dict(server)
    server["floating_ip"] = floating[0] if floating else None
    first_fixed = next((a for a in fixed if a and ":" not in a), fixed[0] if fixed else None)
    server["access_ipv4"] = server["floating_ip"] or server.get("accessIPv4") or first_fixed
    return server


def wait_status(compute, server_id, wanted, timeout, what="server"):
    """Poll the server until its status is ``wanted``; ERROR fails with its fault message."""
    deadline = time.monotonic() + timeout
    interval = 0.5
    while True:
        server = compute.get_server(server_id)
        if server is None:
            raise StratusError(f"Server {server_id} disappeared while waiting for {wanted}.")
        status = server.get("status")
        if status == wanted:
            return server
        if status == "ERROR":
            fault = server.get("fault") or {}
            raise StratusError(
                "Server {} ({}) went to ERROR: {}".format(
                    server.get("name"), server_id, fault.get("message") or "no fault message"
                )
            )
        if time.monotonic() >= deadline:
            raise StratusError(
                f"Timed out after {timeout} s waiting for {what} {server_id} to be {wanted} "
                f"(it is {status}, task state {server.get('OS-EXT-STS:task_state')})."
            )
        time.sleep(interval)
        interval = min(interval * 1.5, 3.0)


def wait_gone(compute, server_id, timeout):
    deadline = time.monotonic() + timeout
    interval = 0.5
    while True:
        server = compute.get_server(server_id)
        if server is None or server.get("status") == "DELETED":
            return
        if time.monotonic() >= deadline:
            raise StratusError(
                f"Timed out after {timeout} s waiting for server {server_id} to be deleted "
                f"(it is {server.get('status')})."
            )
        time.sleep(interval)
        interval = min(interval * 1.5, 3.0)


def resolve_image(images, name_or_id):
    """The image ID for a name or ID: one visible match (the project's own wins)."""
    found = [i for i in images.find(name_or_id) if i.get("status", "active") == "active"]
    if len(found) > 1:
        own = [i for i in found if i.get("owner") == images.project_id]
        if len(own) == 1:
            found = own
        else:
            ids = ", ".join(i["id"] for i in found)
            raise StratusError(f"{len(found)} active images are named {name_or_id!r} ({ids}); "
                               "give the image ID.")
    if not found:
        raise StratusError(f"Image {name_or_id!r} was not found (or is not active).")
    return found[0]["id"]


# ---- cloud_flavor --------------------------------------------------------------------------

FLAVOR_FIXED = ("ram", "vcpus", "disk", "ephemeral", "swap", "is_public")


def flavor_value(flavor, key):
    if key == "ephemeral":
        return flavor.get("OS-FLV-EXT-DATA:ephemeral", flavor.get("ephemeral", 0))
    if key == "is_public":
        return flavor.get("os-flavor-access:is_public", flavor.get("is_public", True))
    if key == "swap":
        return flavor.get("swap") or 0  # Nova shows "" for no swap
    return flavor.get(key)


class FlavorConvergence:
    """The decision logic of cloud_flavor over a ComputeApi (and, for project names, identity)."""

    def __init__(self, compute, params, check_mode, projects=None):
        self.compute = compute
        self.params = params
        self.check_mode = check_mode
        self.projects = projects  # callable: name or ID -> project ID
        self.diff = Difference()

    def run(self):
        p = self.params
        flavor = None
        if p.get("id"):
            flavor = self.compute.get_or_none(f"/flavors/{p['id']}", "flavor")
            if flavor is not None and flavor.get("name") != p["name"]:
                raise StratusError(
                    f"Flavor ID {p['id']} belongs to flavor {flavor.get('name')!r}, not "
                    f"{p['name']!r}; flavors cannot be renamed."
                )
        if flavor is None:
            found = [f for f in self.compute.flavors() if f.get("name") == p["name"]]
            flavor = found[0] if found else None
        if p["state"] == "absent":
            if flavor is not None:
                self.diff.delete(self.summary(flavor))
                if not self.check_mode:
                    self.compute.delete_flavor(flavor["id"])
            return self.result(None)
        for key in ("ram", "vcpus"):
            if flavor is None and p.get(key) is None:
                raise StratusError(f"{key} is needed to create flavor {p['name']!r}.")
        if flavor is None:
            return self.create()
        return self.update(flavor)

    def wanted_fixed(self):
        p = self.params
        out = {}
        for key in FLAVOR_FIXED:
            if p.get(key) is not None:
                out[key] = p[key]
        return out

    def project_ids(self):
        if self.params.get("projects") is None:
            return None
        if self.projects is None:
            return sorted(set(self.params["projects"]))
        return sorted(set(self.projects(p) for p in self.params["projects"]))

    def specs(self):
        specs = self.params.get("extra_specs")
        if specs is None:
            return None
        return dict((str(k), spec_value(v)) for k, v in specs.items())

    def create(self, old=None):
        p = self.params
        attrs = {"name": p["name"], "ram": p["ram"], "vcpus": p["vcpus"],
                 "disk": p.get("disk") or 0}
        if p.get("ephemeral") is not None:
            attrs["OS-FLV-EXT-DATA:ephemeral"] = p["ephemeral"]
        if p.get("swap") is not None:
            attrs["swap"] = p["swap"]
        if p.get("is_public") is not None:
            attrs["os-flavor-access:is_public"] = p["is_public"]
        flavor_id = p.get("id") or (old["id"] if old else None)
        if flavor_id:
            attrs["id"] = flavor_id
        specs = self.specs() or {}
        projects = self.project_ids() or []
        after = dict(self.wanted_fixed(), name=p["name"], disk=attrs["disk"])
        if flavor_id:
            after["id"] = flavor_id
        if specs:
            after["extra_specs"] = specs
        if projects:
            after["projects"] = projects
        self.diff.create(after)
        if old is not None:
            self.diff.before = self.summary(old)
        if self.check_mode:
            return self.result(None)
        if old is not None:
            self.compute.delete_flavor(old["id"])
        flavor = self.compute.create_flavor(attrs)
        if specs:
            self.compute.set_extra_specs(flavor["id"], specs)
        if projects and not flavor_value(flavor, "is_public"):
            for project in projects:
                self.compute.flavor_access_action(flavor["id"], "addTenantAccess", project)
        return self.result(self.show(flavor["id"]))

    def update(self, flavor):
        p = self.params
        fixed = dict((k, (v, flavor_value(flavor, k))) for k, v in self.wanted_fixed().items()
                     if v != flavor_value(flavor, k))
        if fixed:
            if not p.get("recreate"):
                what = ", ".join(f"{k} is {old} (wanted {new})"
                                 for k, (new, old) in sorted(fixed.items()))
                raise StratusError(
                    f"Flavor {p['name']!r} ({flavor['id']}) differs: {what}; flavors cannot "
                    "change. Set recreate: true to delete and recreate it with the same ID "
                    "(servers keep their copy of the old flavor), or use another name."
                )
            merged = dict(p)
            for key in FLAVOR_FIXED:
                if merged.get(key) is None:
                    merged[key] = flavor_value(flavor, key)
            if merged.get("extra_specs") is None:
                merged["extra_specs"] = self.compute.extra_specs(flavor["id"])
            self.params = merged
            return self.create(old=flavor)
        specs = self.specs()
        set_specs, unset = {}, []
        if specs is not None:
            current = self.compute.extra_specs(flavor["id"])
            set_specs = dict((k, v) for k, v in specs.items() if current.get(k) != v)
            unset = sorted(k for k in current if k not in specs)
            self.diff.add("extra_specs", current, specs)
        wanted_projects = self.project_ids()
        add, remove = [], []
        if wanted_projects is not None:
            if flavor_value(flavor, "is_public"):
                if wanted_projects:
                    raise StratusError(
                        f"Flavor {p['name']!r} is public; projects (flavor access) apply only "
                        "to private flavors (is_public: false)."
                    )
            else:
                current = self.compute.flavor_access(flavor["id"])
                add = [x for x in wanted_projects if x not in current]
                remove = [x for x in current if x not in wanted_projects]
                self.diff.add("projects", current, wanted_projects)
        if not self.check_mode:
            if set_specs:
                self.compute.set_extra_specs(flavor["id"], set_specs)
            for key in unset:
                self.compute.unset_extra_spec(flavor["id"], key)
            for project in add:
                self.compute.flavor_access_action(flavor["id"], "addTenantAccess", project)
            for project in remove:
                self.compute.flavor_access_action(flavor["id"], "removeTenantAccess", project)
        return self.result(self.show(flavor["id"], flavor))

    def show(self, flavor_id, flavor=None):
        flavor = dict(flavor or self.compute.get_or_none(f"/flavors/{flavor_id}", "flavor") or {})
        if flavor:
            flavor["extra_specs"] = self.compute.extra_specs(flavor_id)
        return flavor

    @staticmethod
    def summary(flavor):
        out = {"id": flavor["id"], "name": flavor.get("name")}
        for key in FLAVOR_FIXED:
            out[key] = flavor_value(flavor, key)
        return out

    def result(self, flavor):
        return {"changed": self.diff.changed, "diff": self.diff.diff, "flavor": flavor,
                "id": (flavor or {}).get("id")}


def spec_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---- cloud_keypair -------------------------------------------------------------------------


class KeypairConvergence:
    """The decision logic of cloud_keypair over a ComputeApi."""

    def __init__(self, compute, params, check_mode):
        self.compute = compute
        self.params = params
        self.check_mode = check_mode
        self.diff = Difference()

    def public_key(self):
        p = self.params
        if p.get("public_key_file"):
            try:
                with open(p["public_key_file"], encoding="utf-8") as fh:
                    return fh.read().strip()
            except OSError as exc:
                raise StratusError(
                    f"Cannot read public_key_file {p['public_key_file']}: "
                    f"{exc.strerror or exc}"
                ) from None
        return (p.get("public_key") or "").strip() or None

    def run(self):
        p = self.params
        keypair = self.compute.get_keypair(p["name"])
        if p["state"] == "absent":
            if keypair is not None:
                self.diff.delete(self.summary(keypair))
                if not self.check_mode:
                    self.compute.delete_keypair(p["name"])
            return self.result(None)
        public_key = self.public_key()
        if keypair is not None:
            if public_key and key_fingerprint(public_key) != key_fingerprint(
                keypair.get("public_key")
            ):
                raise StratusError(
                    f"Key pair {p['name']!r} exists with another public key "
                    f"(fingerprint {keypair.get('fingerprint')}); key pairs cannot change. "
                    "Delete it first (state: absent) or use another name."
                )
            if p.get("type") and keypair.get("type", "ssh") != p["type"]:
                raise StratusError(
                    f"Key pair {p['name']!r} is of type {keypair.get('type')}, not {p['type']}; "
                    "key pairs cannot change."
                )
            return self.result(keypair)
        attrs = {"name": p["name"]}
        if p.get("type"):
            attrs["type"] = p["type"]
        if public_key:
            attrs["public_key"] = public_key
        self.diff.create(dict(attrs, generated=not public_key))
        if self.check_mode:
            return self.result(None)
        return self.result(self.compute.create_keypair(attrs))

    @staticmethod
    def summary(keypair):
        return dict((k, keypair.get(k)) for k in ("name", "type", "fingerprint"))

    def result(self, keypair):
        out = {"changed": self.diff.changed, "diff": self.diff.diff, "keypair": None,
               "id": None}
        if keypair is not None:
            keypair = dict(keypair)
            private = keypair.pop("private_key", None)
            out["keypair"] = keypair
            out["id"] = keypair.get("name")
            if private:
                out["private_key"] = private
        return out


# ---- cloud_server --------------------------------------------------------------------------


def normalize_nics(value):
    """The networks option as ``"auto"``, ``"none"``, None or a list of dicts."""
    if value is None:
        return None
    if isinstance(value, str):
        if value in ("auto", "none"):
            return value
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise StratusError("networks must be a list, or the string auto or none.")
    out = []
    allowed = ("net-id", "net-name", "port-id", "port-name", "fixed_ip", "v4-fixed-ip")
    for item in value:
        if isinstance(item, str):
            if item in ("auto", "none"):
                raise StratusError(f"networks: {item!r} stands alone (networks: {item}), not "
                                   "in a list.")
            out.append({"net": item})
            continue
        if not isinstance(item, dict):
            raise StratusError(f"networks: {item!r} is neither a network name/ID nor a dict.")
        unknown = sorted(set(item) - set(allowed))
        if unknown:
            raise StratusError("networks: unknown keys {}; allowed: {}.".format(
                ", ".join(unknown), ", ".join(allowed)))
        nic = {}
        net = item.get("net-id") or item.get("net-name")
        port = item.get("port-id") or item.get("port-name")
        if bool(net) == bool(port):
            raise StratusError(f"networks: {item!r} needs exactly one of net-id, net-name, "
                               "port-id, port-name.")
        if net:
            nic["net"] = net
        else:
            nic["port"] = port
        fixed = item.get("fixed_ip") or item.get("v4-fixed-ip")
        if fixed:
            if port:
                raise StratusError(f"networks: {item!r}: fixed_ip goes with a network, not "
                                   "a port (the port has its addresses).")
            nic["fixed_ip"] = fixed
        out.append(nic)
    return out


class ServerConvergence:
    """The decision logic of cloud_server over the compute, image and network APIs."""

    def __init__(self, compute, images, network, params, check_mode):
        self.compute = compute
        self.images = images
        self.network = network
        self.params = params
        self.check_mode = check_mode
        self.diff = Difference()
        self.warnings = []

    # ---- entry ---------------------------------------------------------------------------

    def run(self):
        p = self.params
        found = self.compute.find_servers(p["name"])
        if len(found) > 1:
            ids = ", ".join(s["id"] for s in found)
            raise StratusError(f"{len(found)} servers are named {p['name']!r} ({ids}); remove "
                               "the extra ones or use the server ID as name.")
        server = found[0] if found else None
        if p["state"] == "absent":
            return self.absent(server)
        if server is None:
            return self.create()
        return self.update(server)

    def result(self, server):
        out = {"changed": self.diff.changed, "diff": self.diff.diff, "server": None, "id": None,
               "warnings": list(self.warnings)}
        if server is not None:
            out["server"] = enrich(server, self.network)
            out["id"] = server["id"]
        return out

    @property
    def timeout(self):
        timeout = self.params.get("timeout")
        return 600 if timeout is None else timeout

    # ---- absent --------------------------------------------------------------------------

    def absent(self, server):
        if server is None:
            return self.result(None)
        before = self.summary(server)
        self.diff.delete(before)
        if self.check_mode:
            return {**self.result(None)}
        auto_fips = []
        for port in self.network.list("ports", {"device_id": server["id"]}):
            for fip in self.network.list("floatingips", {"port_id": port["id"]}):
                if (fip.get("description") or "") == AUTO_FIP_MARK + server["id"]:
                    auto_fips.append(fip)
        for fip in auto_fips:
            self.network.delete("floatingips", fip["id"])
        self.compute.delete_server(server["id"])
        if self.params.get("wait"):
            wait_gone(self.compute, server["id"], self.timeout)
        return self.result(None)

    # ---- resolving what is wanted --------------------------------------------------------

    def resolve_flavor(self):
        flavor = self.compute.find_flavor(self.params["flavor"])
        if flavor is None:
            names = ", ".join(sorted(f.get("name", "") for f in self.compute.flavors()))
            raise StratusError(f"Flavor {self.params['flavor']!r} was not found (there are: "
                               f"{names or 'no flavors'}).")
        return flavor

    def resolve_nics(self):
        nics = normalize_nics(self.params.get("networks"))
        if nics is None:
            return "auto", []
        if isinstance(nics, str):
            return nics, []
        body, net_ids = [], []
        for nic in nics:
            if "port" in nic:
                port = self.network.find("ports", nic["port"])
                if port is None:
                    raise StratusError(f"Port {nic['port']!r} was not found.")
                body.append({"port": port["id"]})
                net_ids.append(port["network_id"])
                continue
            net = self.network.find("networks", nic["net"])
            if net is None:
                raise StratusError(f"Network {nic['net']!r} was not found.")
            entry = {"uuid": net["id"]}
            if nic.get("fixed_ip"):
                entry["fixed_ip"] = nic["fixed_ip"]
            body.append(entry)
            net_ids.append(net["id"])
        return body, net_ids

    def security_groups(self):
        groups = self.params.get("security_groups")
        if groups is None:
            return None
        if isinstance(groups, str):
            groups = [g.strip() for g in groups.split(",") if g.strip()]
        return sorted(set(groups))

    def metadata(self):
        meta = self.params.get("metadata")
        if meta is None:
            return None
        if not isinstance(meta, dict):
            raise StratusError("metadata must be a dict of strings.")
        return dict((str(k), spec_value(v)) for k, v in meta.items())

    # ---- create --------------------------------------------------------------------------

    def create(self):
        p = self.params
        for option in ("image", "flavor"):
            if not p.get(option):
                raise StratusError(f"{option} is needed to create server {p['name']!r}.")
        image_id = resolve_image(self.images, p["image"])
        flavor = self.resolve_flavor()
        networks, _net_ids = self.resolve_nics()
        if p.get("key_name") and self.compute.get_keypair(p["key_name"]) is None:
            raise StratusError(f"Key pair {p['key_name']!r} was not found.")
        groups = self.security_groups()
        meta = self.metadata()
        fip_network = self.fip_network() if p.get("floating_ip") else None
        attrs = {"name": p["name"], "imageRef": image_id, "flavorRef": flavor["id"],
                 "networks": networks}
        if p.get("key_name"):
            attrs["key_name"] = p["key_name"]
        if p.get("userdata") is not None:
            data = p["userdata"]
            if isinstance(data, str):
                data = data.encode("utf-8")
            attrs["user_data"] = base64.b64encode(data).decode("ascii")
        if meta:
            attrs["metadata"] = meta
        if groups:
            attrs["security_groups"] = [{"name": g} for g in groups]
        if p.get("availability_zone"):
            attrs["availability_zone"] = p["availability_zone"]
        if p.get("config_drive") is not None:
            attrs["config_drive"] = p["config_drive"]
        after = {"name": p["name"], "image": image_id, "flavor": flavor.get("name"),
                 "networks": networks, "key_name": p.get("key_name"),
                 "metadata": meta or {}, "security_groups": groups or ["default"],
                 "power_state": p.get("power_state") or "started"}
        if p.get("floating_ip"):
            after["floating_ip"] = p["floating_ip"]
        self.diff.create(after)
        if self.check_mode:
            return self.result(None)
        server_id = self.compute.create_server(attrs)["id"]
        server = self.compute.get_server(server_id) or {"id": server_id, "name": p["name"]}
        if not p.get("wait"):
            later = [o for o in ("floating_ip", "power_state")
                     if p.get(o) and p[o] != "started"]
            if later:
                self.warnings.append(
                    "{} apply once the server is ACTIVE: with wait: false they are not applied "
                    "now; run again (or with wait: true).".format(" and ".join(later)))
            return self.result(server)
        try:
            server = wait_status(self.compute, server_id, "ACTIVE", self.timeout)
        except StratusError as exc:
            failed = self.compute.get_server(server_id) or {}
            if failed.get("status") != "ERROR":
                raise
            # Nothing half-made: the server this run created goes again, so that the next
            # run (once the cause is fixed) creates it anew.
            self.compute.delete_server(server_id)
            reason = str(exc) if str(exc).endswith(".") else f"{exc}."
            try:
                wait_gone(self.compute, server_id, self.timeout)
            except StratusError as gone:
                raise StratusError(f"{reason} Deleting the server again failed: {gone}") from None
            raise StratusError(f"{reason} The server was deleted again.") from None
        server = self.converge_power(server)
        if fip_network is not None or p.get("floating_ip"):
            self.attach_floating_ip(server, fip_network)
            server = self.compute.get_server(server_id) or server
        return self.result(server)

    # ---- update --------------------------------------------------------------------------

    def update(self, server):
        p = self.params
        if server.get("status") == "ERROR":
            fault = (server.get("fault") or {}).get("message") or "no fault message"
            raise StratusError(f"Server {p['name']!r} ({server['id']}) is in ERROR: {fault}. "
                               "Delete it (state: absent) and create it again.")
        if server.get("status") in TRANSIENT and p.get("wait"):
            server = wait_status(self.compute, server["id"], "ACTIVE", self.timeout)
        self.report_immutable(server)
        meta = self.metadata()
        set_meta, unset_meta = {}, []
        if meta is not None:
            current = server.get("metadata") or {}
            set_meta = dict((k, v) for k, v in meta.items() if current.get(k) != v)
            unset_meta = sorted(k for k in current if k not in meta)
            self.diff.add("metadata", current, meta)
        groups = self.security_groups()
        add_groups: list = []
        remove_groups: list = []
        group_ports, group_ids = [], {}
        if groups is not None:
            current, group_ports, group_ids = self.current_groups(server, groups)
            add_groups = [g for g in groups if g not in current]
            remove_groups = [g for g in current if g not in groups]
            self.diff.add("security_groups", current, groups)
        power = p.get("power_state")
        actions: list = []
        if power is not None and server.get("status") != POWER_STATUS[power]:
            found = POWER_ACTIONS.get((server.get("status"), power))
            if found is None:
                raise StratusError(
                    f"Server {p['name']!r} is {server.get('status')}; it cannot be made "
                    f"{power} from there."
                )
            actions = found
            self.diff.add("power_state", status_power(server.get("status")), power)
        fip_plan = None
        if p.get("floating_ip"):
            fip_plan = self.plan_floating_ip(server)
        if self.check_mode:
            return self.result(server)
        sid = server["id"]
        if set_meta:
            self.compute.set_metadata(sid, set_meta)
        for key in unset_meta:
            self.compute.delete_metadata(sid, key)
        if add_groups or remove_groups:
            self.apply_groups(sid, add_groups, remove_groups, group_ports, group_ids, groups)
        for n, (action, status) in enumerate(actions):
            self.compute.action(sid, action, None)
            # The steps before the last are always waited for (the next needs their state).
            if p.get("wait") or n < len(actions) - 1:
                wait_status(self.compute, sid, status, self.timeout)
        if fip_plan is not None:
            fip_plan()
        return self.result(self.compute.get_server(sid) or server)

    def current_groups(self, server, wanted):
        """(names of the groups on the server's ports, the ports, name -> ID of the wanted).

        The ports in the network API are the truth; a server without ports shows
        the groups the compute API lists.
        """
        ports = self.network.list("ports", {"device_id": server["id"]})
        project = server.get("tenant_id") or self.network.project_id
        known = self.network.list("security-groups", {"project_id": project})
        ids = {}
        for name in wanted:
            found = [g["id"] for g in known if g.get("name") == name or g["id"] == name]
            if len(found) != 1:
                raise StratusError(
                    f"Security group {name!r} was {'not found' if not found else 'ambiguous'} "
                    f"in project {project}; it has: "
                    f"{', '.join(sorted(set(g.get('name') or g['id'] for g in known))) or 'none'}."
                )
            ids[name] = found[0]
        if not ports:
            names = set(g["name"] for g in server.get("security_groups") or [])
            return sorted(names), ports, ids
        by_id = dict((g["id"], g.get("name") or g["id"]) for g in known)
        names = set()
        for port in ports:
            for group_id in port.get("security_groups") or []:
                names.add(by_id.get(group_id, group_id))
        return sorted(names), ports, ids

    def apply_groups(self, sid, add, remove, ports, ids, wanted):
        """addSecurityGroup/removeSecurityGroup actions; where the compute API has no such
        actions, the server's ports get the groups in the network API directly."""
        try:
            for group in add:
                self.compute.action(sid, "addSecurityGroup", {"name": group})
            for group in remove:
                self.compute.action(sid, "removeSecurityGroup", {"name": group})
            return
        except StratusError as exc:
            if exc.status not in (400, 404, 501) or "action" not in str(exc).lower():
                raise
        group_ids = sorted(ids[name] for name in wanted)
        for port in ports:
            if sorted(port.get("security_groups") or []) != group_ids:
                self.network.update("ports", port["id"], {"security_groups": group_ids})

    def report_immutable(self, server):
        p = self.params
        differ = []
        if p.get("image"):
            current = (server.get("image") or {}).get("id") if isinstance(
                server.get("image"), dict) else server.get("image")
            wanted_ids = [i["id"] for i in self.images.find(p["image"])]
            if current and current not in wanted_ids and current != p["image"]:
                differ.append(f"image (it runs {current}, wanted {p['image']})")
        if p.get("flavor"):
            flavor = server.get("flavor") or {}
            names = (flavor.get("original_name"), flavor.get("id"))
            if p["flavor"] not in names:
                wanted = self.compute.find_flavor(p["flavor"])
                if wanted is None or (wanted.get("name") not in names
                                      and wanted.get("id") not in names):
                    differ.append("flavor (it has {}, wanted {})".format(
                        flavor.get("original_name") or flavor.get("id"), p["flavor"]))
        if p.get("key_name") and server.get("key_name") != p["key_name"]:
            differ.append(f"key_name (it has {server.get('key_name')}, wanted {p['key_name']})")
        nics = normalize_nics(p.get("networks"))
        if isinstance(nics, list) and nics:
            _body, wanted_nets = self.resolve_nics()
            ports = self.network.list("ports", {"device_id": server["id"]})
            current = sorted(set(port["network_id"] for port in ports))
            if current != sorted(set(wanted_nets)):
                differ.append(f"networks (it is on {current}, wanted {sorted(set(wanted_nets))})")
        zone = server.get("OS-EXT-AZ:availability_zone")
        if p.get("availability_zone") and zone and zone != p["availability_zone"]:
            differ.append(f"availability_zone (it is in {zone}, wanted "
                          f"{p['availability_zone']})")
        if differ:
            self.warnings.append(
                "Server {} exists and differs in what cannot change in place: {}. It is left as "
                "it is; delete it (state: absent) and run again to recreate it.".format(
                    p["name"], "; ".join(differ)))

    # ---- floating IPs --------------------------------------------------------------------

    def fip_network(self):
        pool = self.params.get("floating_ip_pool")
        if pool:
            net = self.network.find("networks", pool)
            if net is None:
                raise StratusError(f"floating_ip_pool network {pool!r} was not found.")
            return net
        externals = self.network.list("networks", {"router:external": True})
        if len(externals) != 1:
            names = ", ".join(n.get("name") or n["id"] for n in externals) or "none"
            raise StratusError(
                f"floating_ip: there are {len(externals)} external networks ({names}); name "
                "the one to use in floating_ip_pool."
            )
        return externals[0]

    def plan_floating_ip(self, server):
        """Record the floating IP change in the diff; return the function applying it."""
        wanted = self.params["floating_ip"]
        ports = self.network.list("ports", {"device_id": server["id"]})
        if not ports:
            raise StratusError(f"Server {server['id']} has no port yet; a floating IP needs one "
                               "(wait for the server to be ACTIVE).")
        attached = []
        for port in ports:
            attached.extend(self.network.list("floatingips", {"port_id": port["id"]}))
        current = [f["floating_ip_address"] for f in attached]
        if wanted == "auto":
            if attached:
                return None
        elif wanted in current:
            return None
        else:
            ids = [x["id"] for x in ports]
            for fip in self.network.list("floatingips", {"floating_ip_address": wanted}):
                if fip.get("port_id") and fip["port_id"] not in ids:
                    raise StratusError(f"Floating IP {wanted} is attached to another port "
                                       f"({fip['port_id']}); detach it first.")
        self.diff.add("floating_ip", current[0] if current else None, wanted)

        def apply():
            self.attach_floating_ip(server, None, ports=ports)

        return apply

    def attach_floating_ip(self, server, net, ports=None):
        wanted = self.params["floating_ip"]
        if ports is None:
            ports = self.network.list("ports", {"device_id": server["id"]})
        if not ports:
            raise StratusError(f"Server {server['id']} has no port; cannot attach a floating IP.")
        port = ports[0]
        if wanted != "auto":
            # Another floating IP of the server goes first (one per fixed IP); one the
            # module allocated is released, others are only detached.
            for p in ports:
                for other in self.network.list("floatingips", {"port_id": p["id"]}):
                    if other["floating_ip_address"] == wanted:
                        continue
                    if (other.get("description") or "") == AUTO_FIP_MARK + server["id"]:
                        self.network.delete("floatingips", other["id"])
                    else:
                        self.network.update("floatingips", other["id"], {"port_id": None})
            found = self.network.list("floatingips", {"floating_ip_address": wanted})
            if found:
                fip = found[0]
                if fip.get("port_id") and fip["port_id"] not in [x["id"] for x in ports]:
                    raise StratusError(f"Floating IP {wanted} is attached to another port "
                                       f"({fip['port_id']}).")
                if fip.get("port_id") != port["id"]:
                    self.network.update("floatingips", fip["id"], {"port_id": port["id"]})
                return
            net = net or self.fip_network()
            self.network.create("floatingips", {
                "floating_network_id": net["id"], "floating_ip_address": wanted,
                "port_id": port["id"], "description": AUTO_FIP_MARK + server["id"]})
            return
        for p in ports:
            if self.network.list("floatingips", {"port_id": p["id"]}):
                return
        net = net or self.fip_network()
        free = [f for f in self.network.list("floatingips", {
            "floating_network_id": net["id"], "project_id": self.network.project_id})
            if not f.get("port_id")]
        if free:
            self.network.update("floatingips", free[0]["id"], {
                "port_id": port["id"], "description": AUTO_FIP_MARK + server["id"]})
            return
        self.network.create("floatingips", {
            "floating_network_id": net["id"], "port_id": port["id"],
            "description": AUTO_FIP_MARK + server["id"]})

    # ---- power ---------------------------------------------------------------------------

    def converge_power(self, server):
        power = self.params.get("power_state") or "started"
        actions = POWER_ACTIONS.get((server.get("status"), power)) or []
        for action, status in actions:
            self.compute.action(server["id"], action, None)
            server = wait_status(self.compute, server["id"], status, self.timeout)
        return server

    @staticmethod
    def summary(server):
        flavor = server.get("flavor") or {}
        image = server.get("image")
        return {
            "id": server["id"], "name": server.get("name"), "status": server.get("status"),
            "image": image.get("id") if isinstance(image, dict) else image,
            "flavor": flavor.get("original_name") or flavor.get("id"),
            "key_name": server.get("key_name"), "metadata": server.get("metadata") or {},
        }


def status_power(status):
    for power, wanted in POWER_STATUS.items():
        if wanted == status:
            return power
    return status.lower() if isinstance(status, str) else status


def servers_for_info(compute, network, server=None, filters=None, all_projects=False):
    """The servers matching a name or ID and the filters, each enriched (see ``enrich``)."""
    query = dict((k, v) for k, v in (filters or {}).items() if v is not None)
    if all_projects:
        query["all_tenants"] = "1"
    found = compute.find_servers(server, query) if server else compute.servers(query)
    return [enrich(s, network) for s in found]


def project_resolver(client):
    """A function: project name or ID -> project ID, through the identity API."""

    def resolve(name_or_id):
        if HEX_ID_RE.match(name_or_id) or UUID_RE.match(name_or_id):
            return name_or_id
        # The URL the client authenticated at ends with /v3 (catalog entries may not).
        base = client.config.auth_url
        try:
            body = client.get("identity", base + "/projects", query={"name": name_or_id})
            projects = body.get("projects") or []
        except StratusError as exc:
            if exc.status != 403:
                raise
            # Not an admin: the projects of the caller are the ones it can name.
            body = client.get("identity", base + "/auth/projects")
            projects = [x for x in body.get("projects") or [] if x.get("name") == name_or_id]
        if len(projects) != 1:
            raise StratusError(f"Project {name_or_id!r} was not found (or the name is not "
                               "unique); give its ID.")
        return projects[0]["id"]

    return resolve
