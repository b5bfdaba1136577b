# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_server and cloud_server_info: a server's convergence, and the server lookup.

``ServerConvergence.plan()`` finds the server by name and decides, before
anything is written, what ``changed`` and the diff are: a new server (image,
flavor, networks, key, user data, metadata, groups, power state, floating IP),
an existing one's metadata, security groups, power state and floating IP
(what cannot change in place is only warned about), or its deletion. The
writes are the plan's steps; see ``stratus_plan`` for how check mode and a
real run share the plan. The power tables, waits and address helpers are in
``stratus_server_helpers``, the floating IP in ``stratus_server_fip``.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import base64

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_compute_api import (
    ComputeApi,
    spec_value,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_image_api import ImageApi
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_network_api import (
    NetworkApi,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_server_fip import (
    ServerFloatingIp,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_server_helpers import (
    AUTO_FIP_MARK,
    POWER_ACTIONS,
    POWER_STATUS,
    TRANSIENT,
    enrich,
    normalize_nics,
    resolve_image,
    servers_for_info,
    status_power,
    wait_gone,
    wait_status,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_server_volumes import (
    ServerVolumes,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_volume_api import VolumeApi


class ServerConvergence(Convergence):
    """The decision logic of cloud_server over the compute, image and network APIs.

    ``changed`` and the diff are decided here: ``plan_create``, ``plan_update``
    (metadata, security groups, power state, floating IP) and ``plan_absent``
    record them in ``self.diff`` before anything is written.
    """

    def __init__(self, compute, images, network, params, check_mode, volumes=None):
        super().__init__(params, check_mode)
        self.compute = compute
        self.images = images
        self.network = network
        self.fips = ServerFloatingIp(network, params, self.diff)
        self.vols = ServerVolumes(volumes, compute, params, self.diff)

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(ComputeApi(client), ImageApi(client), NetworkApi(client), params, check_mode,
                   VolumeApi(client))

    # ---- entry ---------------------------------------------------------------------------

    def plan(self):
        p = self.params
        found = self.compute.find_servers(p["name"])
        if len(found) > 1:
            ids = ", ".join(s["id"] for s in found)
            raise StratusError(f"{len(found)} servers are named {p['name']!r} ({ids}); remove "
                               "the extra ones or use the server ID as name.")
        server = found[0] if found else None
        if p["state"] == "absent":
            return self.plan_absent(server)
        if server is None:
            return self.plan_create()
        return self.plan_update(server)

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

    def plan_absent(self, server):
        plan = self.new_plan(None)
        if server is None:
            return plan
        self.diff.delete(self.summary(server))

        @plan.then
        def delete(_none):
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

        return plan

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

    def plan_create(self):
        p = self.params
        needed = ("flavor",) if p.get("boot_volume") else ("image", "flavor")
        for option in needed:
            if not p.get(option):
                raise StratusError(f"{option} is needed to create server {p['name']!r}.")
        image_id = resolve_image(self.images, p["image"]) if p.get("image") else None
        bdm, boot_disk = self.vols.block_device_mapping(image_id)
        volume_ids = self.vols.plan_new()
        flavor = self.resolve_flavor()
        networks, _net_ids = self.resolve_nics()
        if p.get("key_name") and self.compute.get_keypair(p["key_name"]) is None:
            raise StratusError(f"Key pair {p['key_name']!r} was not found.")
        groups = self.security_groups()
        meta = self.metadata()
        fip_network = self.fips.pool() if p.get("floating_ip") else None
        attrs = {"name": p["name"], "imageRef": image_id, "flavorRef": flavor["id"],
                 "networks": networks}
        if bdm:
            # Nova's shape: the boot disk is the mapping, the server's image is "".
            attrs["imageRef"] = ""
            attrs["block_device_mapping_v2"] = bdm
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
        if boot_disk:
            after["image"] = None
            after["boot_volume"] = boot_disk
        if volume_ids:
            after["volumes"] = volume_ids
        self.diff.create(after)
        plan = self.new_plan(None)
        plan.then(lambda _none: self.create(attrs, fip_network, volume_ids))
        return plan

    def create(self, attrs, fip_network, volume_ids=()):
        """Create the server, wait for it, then its power state and floating IP."""
        p = self.params
        server_id = self.compute.create_server(attrs)["id"]
        server = self.compute.get_server(server_id) or {"id": server_id, "name": p["name"]}
        if not p.get("wait"):
            later = [o for o in ("floating_ip", "power_state", "volumes")
                     if p.get(o) and p[o] != "started"]
            if later:
                self.warnings.append(
                    "{} apply once the server is ACTIVE: with wait: false they are not applied "
                    "now; run again (or with wait: true).".format(" and ".join(later)))
            return server
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
        self.vols.attach(server_id, volume_ids, self.timeout)
        server = self.converge_power(server)
        if fip_network is not None or p.get("floating_ip"):
            self.fips.attach(server, fip_network)
            server = self.compute.get_server(server_id) or server
        return server

    # ---- update --------------------------------------------------------------------------

    def plan_update(self, server):
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
            fip_plan = self.fips.plan(server)
        attach_ids = self.vols.plan_existing(server)
        plan = self.new_plan(server)

        @plan.then
        def update(current):
            sid = current["id"]
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
            self.vols.attach(sid, attach_ids, self.timeout)
            return self.compute.get_server(sid) or current

        return plan

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


class ServerInfo:
    """cloud_server_info: the servers matching a name or ID and the filters, enriched."""

    def __init__(self, compute, network, params):
        self.compute = compute
        self.network = network
        self.params = params

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(ComputeApi(client), NetworkApi(client), params)

    def run(self):
        servers = servers_for_info(self.compute, self.network, self.params["server"],
                                   self.params["filters"], self.params["all_projects"])
        return {"changed": False, "servers": servers}
