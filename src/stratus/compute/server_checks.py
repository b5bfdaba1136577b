"""What a create request names, checked against the image and network APIs: the create
request itself, the image (active, fits the flavor), the networks or ports, the security
groups.

Calls to the image and network APIs happen outside database transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import ApiError, BadRequest, Conflict, ServiceUnavailable
from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore
    from stratus.compute.downstream import Downstream


@dataclass
class CreateRequest:
    name: str
    image_id: str
    flavor_id: str
    networks: list[dict[str, str]] | str | None = None
    key_name: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    security_groups: list[str] = field(default_factory=list)
    availability_zone: str | None = None
    force_host: str | None = None
    config_drive: bool = False
    min_count: int = 1
    max_count: int = 1
    group_id: str | None = None
    same_host: list[str] = field(default_factory=list)
    different_host: list[str] = field(default_factory=list)
    networks_required: bool = False
    block_devices: list[Any] = field(default_factory=list)  # boot_volumes.BootDevice
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    description: str | None = None  # from 2.19
    tags: list[str] = field(default_factory=list)  # from 2.52
    hostname: str | None = None  # from 2.90 (an FQDN from 2.94); else made from the name
    disk_config: str = "MANUAL"  # OS-DCF:diskConfig, kept and shown (migration 0010)

def downstream_error(exc: ServiceError, what: str) -> ApiError:
    if exc.temporary:
        return ServiceUnavailable(f"{what}: {exc}")
    return BadRequest(f"{what}: {exc}")


class ServerChecks:
    """Part of :class:`stratus.compute.servers.ServerFlow`: checks of what a request names."""

    core: ComputeCore
    ds: Downstream

    def check_image(self, ctx: AuthContext, image_id: str, flavor: m.Flavor) -> dict[str, Any]:
        try:
            image = self.ds.get_image(ctx.token, image_id)
        except ServiceError as exc:
            if exc.status == 404:
                raise BadRequest(f"Image {image_id} could not be found.") from None
            raise downstream_error(exc, f"Image {image_id} cannot be read") from None
        if image.get("status") != "active":
            raise BadRequest(f"Image {image_id} is not active (its status is "
                             f"{image.get('status')}).")
        if int(image.get("min_ram") or 0) > flavor.ram:
            raise BadRequest(f"Flavor's memory is too small for requested image: the image "
                             f"needs {image.get('min_ram')} MiB, flavor {flavor.name} has "
                             f"{flavor.ram} MiB.")
        if flavor.disk:
            if int(image.get("min_disk") or 0) > flavor.disk:
                raise BadRequest(f"Flavor's disk is too small for requested image: the image "
                                 f"needs {image.get('min_disk')} GiB, flavor {flavor.name} has "
                                 f"{flavor.disk} GiB.")
            if int(image.get("size") or 0) > flavor.disk * 1024**3:
                raise BadRequest(f"Flavor's disk is too small for requested image: the image "
                                 f"is {image.get('size')} bytes, flavor {flavor.name} has "
                                 f"{flavor.disk} GiB.")
        known = {"id", "name", "status", "visibility", "protected", "checksum", "os_hash_algo",
                 "os_hash_value", "size", "virtual_size", "min_ram", "min_disk", "disk_format",
                 "container_format", "owner", "created_at", "updated_at", "tags", "self",
                 "file", "schema", "os_hidden", "locations", "direct_url"}
        return {
            "id": image_id, "name": image.get("name"),
            "disk_format": image.get("disk_format"), "checksum": image.get("checksum"),
            "os_hash_algo": image.get("os_hash_algo"), "os_hash_value": image.get("os_hash_value"),
            "size": image.get("size"), "min_disk": image.get("min_disk") or 0,
            "min_ram": image.get("min_ram") or 0,
            "properties": {k: v for k, v in image.items() if k not in known},
        }

    def resolve_networks(self, ctx: AuthContext, req: CreateRequest) -> list[dict[str, str]]:
        """The ports to make or take: [{"network_id", "fixed_ip"?} | {"port_id"}]."""
        nets = req.networks
        if nets == "none":
            return []
        if nets is None or nets == "auto":
            if nets is None and req.networks_required:
                raise BadRequest("Invalid input: 'networks' is a required property from "
                                 "microversion 2.37 (a list, 'auto' or 'none').")
            try:
                own = self.ds.list_networks(ctx.token, project_id=ctx.project_id)
                shared = self.ds.list_networks(ctx.token, shared="true")
            except ServiceError as exc:
                raise downstream_error(exc, "The networks cannot be listed") from None
            usable = {n["id"]: n for n in [*own, *shared]
                      if not n.get("router:external") and n.get("status", "ACTIVE") == "ACTIVE"}
            if len(usable) > 1:
                raise Conflict("Multiple possible networks found, use a Network ID to be more "
                               "specific.")
            if not usable:
                if nets == "auto":
                    raise BadRequest("Unable to automatically allocate a network for project "
                                     f"{ctx.project_id}: it has no network and none is shared.")
                return []
            return [{"network_id": next(iter(usable))}]
        out: list[dict[str, str]] = []
        assert isinstance(nets, list)
        for item in nets:
            if "port" in item:
                try:
                    port = self.ds.get_port(ctx.token, item["port"])
                except ServiceError as exc:
                    if exc.status == 404:
                        raise BadRequest(f"Port {item['port']} could not be found.") from None
                    raise downstream_error(exc, f"Port {item['port']}") from None
                if port.get("device_id"):
                    raise Conflict(f"Port {item['port']} is still in use.")
                if req.max_count > 1:
                    raise BadRequest("Unable to launch multiple instances with a single "
                                     "configured port ID.")
                out.append({"port_id": port["id"], "network_id": port["network_id"]})
                continue
            try:
                self.ds.get_network(ctx.token, item["uuid"])
            except ServiceError as exc:
                if exc.status == 404:
                    raise BadRequest(f"Network {item['uuid']} could not be found.") from None
                raise downstream_error(exc, f"Network {item['uuid']}") from None
            spec = {"network_id": item["uuid"]}
            if item.get("fixed_ip"):
                if req.max_count > 1:
                    raise BadRequest("Unable to launch multiple instances with a fixed IP "
                                     "address.")
                spec["fixed_ip"] = item["fixed_ip"]
            out.append(spec)
        return out

    def lookup_groups(self, token: str, ref: str, project_id: str) -> list[dict[str, Any]]:
        """The security groups ``ref`` names in the project, or the one whose id it is."""
        found = self.ds.security_groups(token, ref, project_id)
        if found:
            return found
        try:
            return [self.ds.get_security_group(token, ref)]
        except ServiceError as exc:
            if exc.status == 404:
                return []
            raise

    def resolve_groups(self, ctx: AuthContext, names: list[str]) -> list[str]:
        ids = []
        for name in dict.fromkeys(names):
            try:
                found = self.lookup_groups(ctx.token, name, ctx.project_id or "")
            except ServiceError as exc:
                raise downstream_error(exc, "Security groups cannot be read") from None
            if not found:
                raise BadRequest(f"Security group {name} not found for project "
                                 f"{ctx.project_id}.")
            if len(found) > 1:
                raise Conflict(f"Multiple security groups named {name} exist; use its ID.")
            ids.append(found[0]["id"])
        return ids

