"""What each dashboard page reads and does, as the signed-in user (the service layer).

Every method takes the request's :class:`~stratus.dashboard.cloud.UserApi` and makes at
most one call per resource kind for a page (names of images, networks and flavors are
joined here from one list each, never fetched per row). Writes that need more than one
call undo what they made when a later call fails, so nothing is left half-made.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from stratus.dashboard.admin_writes import AdminWritesCore
from stratus.dashboard.cloud import ApiFailure, Cloud, UserApi
from stratus.dashboard.storage import ObjectStoreCore

PAGE_SIZE = 50  # servers per instances page (Nova's marker paging): a page's cost is flat
POWER_ACTIONS = {"start": {"os-start": None}, "stop": {"os-stop": None},
                 "reboot": {"reboot": {"type": "SOFT"}},
                 "hard-reboot": {"reboot": {"type": "HARD"}}}


@dataclass
class Chart:
    """One quota bar of the overview."""

    label: str
    used: float
    limit: float  # -1: unlimited
    unit: str = ""

    @property
    def percent(self) -> int:
        if self.limit is None or self.limit < 0:
            return 0
        if self.limit == 0:
            return 100 if self.used else 0
        return min(100, round(100 * self.used / self.limit))


class DashboardCore(ObjectStoreCore, AdminWritesCore):
    """The pages' reads and writes (one object per process, stateless); containers and
    objects are in :mod:`stratus.dashboard.storage`, the admins' writes in
    :mod:`stratus.dashboard.admin_writes`."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud

    # -- overview ---------------------------------------------------------------------
    def overview(self, api: UserApi) -> list[Chart]:
        absolute = api.get("compute", "limits").get("limits", {}).get("absolute", {})
        charts = [
            Chart("Instances", absolute.get("totalInstancesUsed", 0),
                  absolute.get("maxTotalInstances", -1)),
            Chart("VCPUs", absolute.get("totalCoresUsed", 0), absolute.get("maxTotalCores", -1)),
            Chart("RAM", absolute.get("totalRAMUsed", 0), absolute.get("maxTotalRAMSize", -1),
                  "MiB"),
        ]
        if api.has("volume"):
            vol = api.get("volume", "limits").get("limits", {}).get("absolute", {})
            charts += [
                Chart("Volumes", vol.get("totalVolumesUsed", 0), vol.get("maxTotalVolumes", -1)),
                Chart("Volume storage", vol.get("totalGigabytesUsed", 0),
                      vol.get("maxTotalVolumeGigabytes", -1), "GiB"),
            ]
        if api.has("network"):
            fips = api.get("network", "v2.0/floatingips",
                           params={"fields": "id"}).get("floatingips", [])
            groups = api.get("network", "v2.0/security-groups",
                             params={"fields": "id"}).get("security_groups", [])
            charts += [Chart("Floating IPs", len(fips), -1),
                       Chart("Security groups", len(groups), -1)]
        return charts

    # -- instances --------------------------------------------------------------------
    def servers(self, api: UserApi, marker: str = "", limit: int = PAGE_SIZE
                ) -> list[dict[str, Any]]:
        """One page of the project's servers (newest first, after ``marker``), with
        their image name joined from one image list."""
        servers = self._server_page(api, marker, limit)
        images = {i["id"]: i.get("name") or i["id"] for i in self.images(api)} \
            if api.has("image") else {}
        rows = []
        for s in servers:
            image = s.get("image") or {}
            rows.append({**status_row(s), "image_name": images.get(image.get("id"), "")
                         if isinstance(image, dict) and image else "(volume)",
                         "flavor_name": (s.get("flavor") or {}).get("original_name", ""),
                         "created": s.get("created", "")})
        return rows

    def statuses(self, api: UserApi, marker: str = "", limit: int = PAGE_SIZE
                 ) -> list[dict[str, Any]]:
        """What the instances page refreshes without a reload (one call, the same page)."""
        return [status_row(s) for s in self._server_page(api, marker, limit)]

    @staticmethod
    def _server_page(api: UserApi, marker: str, limit: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if marker:
            params["marker"] = marker
        return list(api.get("compute", "servers/detail", params=params).get("servers", []))

    def server(self, api: UserApi, server_id: str) -> dict[str, Any]:
        return dict(api.get("compute", f"servers/{server_id}")["server"])

    def console_log(self, api: UserApi, server_id: str, lines: int = 200) -> str:
        body = api.call("compute", "POST", f"servers/{server_id}/action",
                        json={"os-getConsoleOutput": {"length": lines}})
        return str((body or {}).get("output", ""))

    def console_url(self, api: UserApi, server_id: str) -> str:
        """A VNC console of the server (a one-time token in the URL of the novncproxy)."""
        body = api.call("compute", "POST", f"servers/{server_id}/remote-consoles",
                        json={"remote_console": {"protocol": "vnc", "type": "novnc"}})
        return str(((body or {}).get("remote_console") or {}).get("url", ""))

    def launch_choices(self, api: UserApi) -> dict[str, Any]:
        """Everything the launch form offers (one call per kind)."""
        choices: dict[str, Any] = {
            "images": [i for i in self.images(api) if i.get("status") == "active"],
            "flavors": sorted(api.get("compute", "flavors/detail").get("flavors", []),
                              key=lambda f: (f.get("ram", 0), f.get("name", ""))),
            "keypairs": [k["keypair"] for k in api.get("compute", "os-keypairs")
                         .get("keypairs", [])],
            "zones": [z.get("zoneName") for z in api.get("compute", "os-availability-zone")
                      .get("availabilityZoneInfo", [])],
            "networks": [], "security_groups": [], "volumes": [],
        }
        if api.has("network"):
            choices["networks"] = api.get("network", "v2.0/networks").get("networks", [])
            choices["security_groups"] = api.get(
                "network", "v2.0/security-groups").get("security_groups", [])
        if api.has("volume"):
            choices["volumes"] = [v for v in api.get("volume", "volumes/detail")
                                  .get("volumes", []) if v.get("status") == "available"]
        return choices

    def launch(self, api: UserApi, spec: dict[str, Any]) -> Any:
        """Create ``spec['count']`` servers in one request (Nova's min/max count)."""
        server: dict[str, Any] = {"name": spec["name"], "flavorRef": spec["flavor"],
                                  "min_count": spec["count"], "max_count": spec["count"]}
        if spec.get("volume"):
            server["block_device_mapping_v2"] = [{
                "boot_index": 0, "uuid": spec["volume"], "source_type": "volume",
                "destination_type": "volume", "delete_on_termination": False}]
        else:
            server["imageRef"] = spec["image"]
        server["networks"] = [{"uuid": n} for n in spec.get("networks", [])] or "auto"
        if spec.get("key_name"):
            server["key_name"] = spec["key_name"]
        if spec.get("security_groups"):
            server["security_groups"] = [{"name": g} for g in spec["security_groups"]]
        if spec.get("user_data"):
            server["user_data"] = spec["user_data"]
        if spec.get("zone"):
            server["availability_zone"] = spec["zone"]
        return api.call("compute", "POST", "servers", json={"server": server})

    def server_action(self, api: UserApi, server_id: str, action: str,
                      arg: str = "") -> None:
        if action == "delete":
            api.call("compute", "DELETE", f"servers/{server_id}")
        elif action == "snapshot":
            api.call("compute", "POST", f"servers/{server_id}/action",
                     json={"createImage": {"name": arg or f"{server_id}-snapshot"}})
        elif action in POWER_ACTIONS:
            api.call("compute", "POST", f"servers/{server_id}/action",
                     json=POWER_ACTIONS[action])
        else:
            raise ApiFailure(f"Unknown action {action!r}.", 400)

    def server_extras(self, api: UserApi, server: dict[str, Any]) -> dict[str, Any]:
        """For an instance's page: its floating IPs and the volumes it could attach
        (one call each, when those APIs exist)."""
        fixed = {a.get("addr") for addrs in (server.get("addresses") or {}).values()
                 for a in addrs}
        extras: dict[str, Any] = {"floatingips": [], "free_floatingips": [],
                                  "volumes": []}
        if api.has("network"):
            fips = api.get("network", "v2.0/floatingips").get("floatingips", [])
            extras["floatingips"] = [f for f in fips if f.get("port_id")
                                     and f.get("fixed_ip_address") in fixed]
            extras["free_floatingips"] = [f for f in fips if not f.get("port_id")]
        if api.has("volume"):
            extras["volumes"] = [v for v in api.get("volume", "volumes/detail")
                                 .get("volumes", []) if v.get("status") == "available"]
        return extras

    def attach_volume(self, api: UserApi, server_id: str, volume_id: str) -> None:
        api.call("compute", "POST", f"servers/{server_id}/os-volume_attachments",
                 json={"volumeAttachment": {"volumeId": volume_id}})

    def detach_volume(self, api: UserApi, server_id: str, volume_id: str) -> None:
        api.call("compute", "DELETE", f"servers/{server_id}/os-volume_attachments/{volume_id}")

    # -- admin ------------------------------------------------------------------------
    def admin_state(self, api: UserApi) -> dict[str, Any]:
        """For admins: projects, users, role assignments, flavors, hypervisors with their
        usage, every project's servers (one call each)."""
        return {
            "projects": api.get("identity", "projects").get("projects", []),
            "users": api.get("identity", "users").get("users", []),
            "assignments": api.get("identity", "role_assignments",
                                   params={"include_names": "true"})
            .get("role_assignments", []),
            "flavors": api.get("compute", "flavors/detail",
                               params={"is_public": "None"}).get("flavors", []),
            "hypervisors": api.get("compute", "os-hypervisors/detail")
            .get("hypervisors", []),
            "servers": [status_row(s) | {"project_id": s.get("tenant_id", "")}
                        for s in api.get("compute", "servers/detail",
                                         params={"all_tenants": "1"}).get("servers", [])],
        }

    # -- images -----------------------------------------------------------------------
    def images(self, api: UserApi) -> list[dict[str, Any]]:
        return list(api.get("image", "v2/images", params={"limit": 1000}).get("images", []))

    def create_image(self, api: UserApi, name: str, disk_format: str,
                     visibility: str) -> dict[str, Any]:
        return dict(api.call("image", "POST", "v2/images", json={
            "name": name, "disk_format": disk_format, "container_format": "bare",
            "visibility": visibility}))

    async def upload_image(self, api: UserApi, image_id: str,
                           chunks: AsyncIterator[bytes], length: str | None) -> None:
        """Stream the browser's bytes to the image API as they arrive (no temp file)."""
        url = api.endpoint("image")
        if url is None:
            raise ApiFailure("The image API is not in this cloud's catalog.", 404)
        headers = {"X-Auth-Token": api.token, "Content-Type": "application/octet-stream"}
        if length:
            headers["Content-Length"] = length
        api.calls += 1
        async with httpx.AsyncClient(timeout=None) as client:
            resp = await client.put(f"{url}/v2/images/{image_id}/file", content=chunks,
                                    headers=headers)
        if not resp.is_success:
            raise ApiFailure(_error_text(resp), resp.status_code)

    def update_image(self, api: UserApi, image_id: str, name: str, visibility: str) -> None:
        """Rename and re-share an image (Glance's JSON patch)."""
        patch = [{"op": "replace", "path": "/name", "value": name},
                 {"op": "replace", "path": "/visibility", "value": visibility}]
        api.call("image", "PATCH", f"v2/images/{image_id}", content=json.dumps(patch),
                 headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})

    def delete_image(self, api: UserApi, image_id: str) -> None:
        api.call("image", "DELETE", f"v2/images/{image_id}")

    # -- volumes ----------------------------------------------------------------------
    def volumes(self, api: UserApi) -> dict[str, Any]:
        return {"volumes": api.get("volume", "volumes/detail").get("volumes", []),
                "snapshots": api.get("volume", "snapshots/detail").get("snapshots", [])}

    def create_volume(self, api: UserApi, name: str, size: int) -> None:
        api.call("volume", "POST", "volumes", json={"volume": {"name": name, "size": size}})

    def delete_volume(self, api: UserApi, volume_id: str) -> None:
        api.call("volume", "DELETE", f"volumes/{volume_id}")

    # -- network ----------------------------------------------------------------------
    def network_state(self, api: UserApi) -> dict[str, Any]:
        """Networks, subnets, routers, floating IPs and ports (one call each)."""
        return {
            "networks": api.get("network", "v2.0/networks").get("networks", []),
            "subnets": api.get("network", "v2.0/subnets").get("subnets", []),
            "routers": api.get("network", "v2.0/routers").get("routers", []),
            "floatingips": api.get("network", "v2.0/floatingips").get("floatingips", []),
            "ports": api.get("network", "v2.0/ports").get("ports", []),
        }

    def create_network(self, api: UserApi, name: str, cidr: str) -> None:
        """A network and, with ``cidr``, its subnet; the network goes again if the
        subnet is refused."""
        net = api.call("network", "POST", "v2.0/networks",
                       json={"network": {"name": name}})["network"]
        if not cidr:
            return
        try:
            api.call("network", "POST", "v2.0/subnets", json={"subnet": {
                "network_id": net["id"], "cidr": cidr, "ip_version": 6 if ":" in cidr else 4,
                "name": f"{name}-subnet"}})
        except ApiFailure:
            api.call("network", "DELETE", f"v2.0/networks/{net['id']}")
            raise

    def delete_network(self, api: UserApi, network_id: str) -> None:
        api.call("network", "DELETE", f"v2.0/networks/{network_id}")

    def create_router(self, api: UserApi, name: str, external: str, subnet: str) -> None:
        """A router with a gateway on ``external`` and an interface on ``subnet``; the
        router goes again if the interface is refused."""
        router: dict[str, Any] = {"name": name}
        if external:
            router["external_gateway_info"] = {"network_id": external}
        made = api.call("network", "POST", "v2.0/routers", json={"router": router})["router"]
        if not subnet:
            return
        try:
            api.call("network", "PUT", f"v2.0/routers/{made['id']}/add_router_interface",
                     json={"subnet_id": subnet})
        except ApiFailure:
            api.call("network", "DELETE", f"v2.0/routers/{made['id']}")
            raise

    def delete_router(self, api: UserApi, router_id: str) -> None:
        """Remove the router's interfaces (one port list), then the router."""
        ports = api.get("network", "v2.0/ports", params={
            "device_id": router_id, "device_owner": "network:router_interface"}).get("ports", [])
        for port in ports:
            api.call("network", "PUT", f"v2.0/routers/{router_id}/remove_router_interface",
                     json={"port_id": port["id"]})
        api.call("network", "DELETE", f"v2.0/routers/{router_id}")

    def allocate_floating_ip(self, api: UserApi, network_id: str) -> None:
        api.call("network", "POST", "v2.0/floatingips",
                 json={"floatingip": {"floating_network_id": network_id}})

    def associate_floating_ip(self, api: UserApi, fip_id: str, server_id: str) -> None:
        """Point the floating IP at the server's first port (one port list)."""
        ports = api.get("network", "v2.0/ports", params={"device_id": server_id}).get("ports", [])
        if not ports:
            raise ApiFailure("This instance has no port to associate the floating IP with.",
                             409)
        api.call("network", "PUT", f"v2.0/floatingips/{fip_id}",
                 json={"floatingip": {"port_id": ports[0]["id"]}})

    def disassociate_floating_ip(self, api: UserApi, fip_id: str) -> None:
        api.call("network", "PUT", f"v2.0/floatingips/{fip_id}",
                 json={"floatingip": {"port_id": None}})

    def release_floating_ip(self, api: UserApi, fip_id: str) -> None:
        api.call("network", "DELETE", f"v2.0/floatingips/{fip_id}")

    def security_groups(self, api: UserApi) -> list[dict[str, Any]]:
        return list(api.get("network", "v2.0/security-groups").get("security_groups", []))

    def create_security_group(self, api: UserApi, name: str, description: str) -> None:
        api.call("network", "POST", "v2.0/security-groups", json={"security_group": {
            "name": name, "description": description}})

    def delete_security_group(self, api: UserApi, group_id: str) -> None:
        api.call("network", "DELETE", f"v2.0/security-groups/{group_id}")

    def add_rule(self, api: UserApi, group_id: str, rule: dict[str, Any]) -> None:
        api.call("network", "POST", "v2.0/security-group-rules",
                 json={"security_group_rule": {"security_group_id": group_id, **rule}})

    def delete_rule(self, api: UserApi, rule_id: str) -> None:
        api.call("network", "DELETE", f"v2.0/security-group-rules/{rule_id}")

    # -- server groups ----------------------------------------------------------------
    def server_groups(self, api: UserApi) -> list[dict[str, Any]]:
        return list(api.get("compute", "os-server-groups").get("server_groups", []))

    def create_server_group(self, api: UserApi, name: str, policy: str) -> None:
        api.call("compute", "POST", "os-server-groups",
                 json={"server_group": {"name": name, "policies": [policy]}},
                 headers={"OpenStack-API-Version": "compute 2.1"})

    def delete_server_group(self, api: UserApi, group_id: str) -> None:
        api.call("compute", "DELETE", f"os-server-groups/{group_id}")

    # -- key pairs --------------------------------------------------------------------
    def keypairs(self, api: UserApi) -> list[dict[str, Any]]:
        return [k["keypair"] for k in api.get("compute", "os-keypairs").get("keypairs", [])]

    def create_keypair(self, api: UserApi, name: str, public_key: str) -> str:
        """Import ``public_key``, or (empty) have one made: its private key, shown once."""
        body: dict[str, Any] = {"name": name}
        if public_key:
            body["public_key"] = public_key
        made = api.call("compute", "POST", "os-keypairs", json={"keypair": body},
                        headers={"OpenStack-API-Version": "compute 2.1"})
        return str((made or {}).get("keypair", {}).get("private_key", ""))

    def delete_keypair(self, api: UserApi, name: str) -> None:
        api.call("compute", "DELETE", f"os-keypairs/{name}")


def status_row(server: dict[str, Any]) -> dict[str, Any]:
    """The live part of a server's row: status, task, power state, addresses, fault."""
    addresses = []
    for net, addrs in (server.get("addresses") or {}).items():
        for a in addrs:
            addresses.append(f"{net}: {a.get('addr')}")
    fault = server.get("fault") or {}
    return {"id": server.get("id", ""), "name": server.get("name", ""),
            "status": server.get("status", ""),
            "task_state": server.get("OS-EXT-STS:task_state") or "",
            "power_state": server.get("OS-EXT-STS:power_state", ""),
            "addresses": addresses, "fault": fault.get("message", "")}


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300] or f"The image API answered {resp.status_code}."
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])
        if body.get("message"):
            return str(body["message"])
    return str(body)[:300]
