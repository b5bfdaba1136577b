# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""The network API (Neutron v2.0) as the modules use it.

``NetworkApi`` wraps a ``StratusClient`` with the few calls the modules need
(list with filters following ``*_links``, find by name or ID,
create/update/delete, router interfaces); the convergences (network, router,
security group, floating IP, server) take it as a parameter, so a test can
give them a fake.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError

# collection path -> JSON key of one item / of the list
RESOURCES = {
    "networks": ("network", "networks"),
    "subnets": ("subnet", "subnets"),
    "ports": ("port", "ports"),
    "routers": ("router", "routers"),
    "floatingips": ("floatingip", "floatingips"),
    "security-groups": ("security_group", "security_groups"),
    "security-group-rules": ("security_group_rule", "security_group_rules"),
}


class NetworkApi:
    """CRUD on /v2.0/<collection> for the modules."""

    service = "network"

    def __init__(self, client):
        self.client = client

    @property
    def project_id(self):
        return self.client.project_id

    def list(self, collection, query=None):
        """Every item matching ``query`` (following ``next`` links)."""
        _one, many = RESOURCES[collection]
        items = []
        body = self.client.get(self.service, f"/v2.0/{collection}", query=query)
        while True:
            items.extend(body.get(many) or [])
            nxt = [link["href"] for link in body.get(f"{many}_links") or []
                   if link.get("rel") == "next"]
            if not nxt:
                return items
            body = self.client.get(self.service, nxt[0])

    def get(self, collection, item_id):
        """The item, or None when it does not exist (or is not visible)."""
        one, _many = RESOURCES[collection]
        try:
            return self.client.get(self.service, f"/v2.0/{collection}/{item_id}")[one]
        except StratusError as exc:
            if exc.status == 404:
                return None
            raise

    def find(self, collection, name_or_id, project_id=None, required_kind=None):
        """The one item whose ID or name is ``name_or_id`` (None when there is none).

        A name that matches several items is an error; ``project_id`` narrows
        a name lookup to one project.
        """
        item = self.get(collection, name_or_id)
        if item is not None:
            return item
        query = {"name": name_or_id}
        if project_id:
            query["project_id"] = project_id
        found = self.list(collection, query)
        if len(found) > 1:
            kind = required_kind or RESOURCES[collection][0]
            raise StratusError(
                f"{len(found)} {kind}s are named {name_or_id!r}; use the ID instead."
            )
        return found[0] if found else None

    def require(self, collection, name_or_id, project_id=None):
        item = self.find(collection, name_or_id, project_id)
        if item is None:
            kind = RESOURCES[collection][0].replace("_", " ")
            raise StratusError(f"{kind} {name_or_id!r} was not found.")
        return item

    def create(self, collection, attrs):
        one, _many = RESOURCES[collection]
        return self.client.request(
            "POST", self.service, f"/v2.0/{collection}", body={one: attrs}, expect=(201,)
        ).body[one]

    def update(self, collection, item_id, attrs):
        one, _many = RESOURCES[collection]
        return self.client.request(
            "PUT", self.service, f"/v2.0/{collection}/{item_id}", body={one: attrs},
            expect=(200,),
        ).body[one]

    def delete(self, collection, item_id):
        try:
            self.client.request(
                "DELETE", self.service, f"/v2.0/{collection}/{item_id}", expect=(204,)
            )
        except StratusError as exc:
            if exc.status != 404:
                raise

    def router_interface(self, router_id, action, subnet_id=None, port_id=None):
        body = {"subnet_id": subnet_id} if subnet_id else {"port_id": port_id}
        return self.client.request(
            "PUT", self.service, f"/v2.0/routers/{router_id}/{action}_router_interface",
            body=body, expect=(200,),
        ).body

    def router_interfaces(self, router_id):
        """[{port_id, subnet_id, ip_address}] of the router's interfaces."""
        out = []
        ports = self.list("ports", {"device_id": router_id,
                                    "device_owner": "network:router_interface"})
        for port in ports:
            for ip in port.get("fixed_ips") or []:
                out.append({"port_id": port["id"], "subnet_id": ip["subnet_id"],
                            "ip_address": ip["ip_address"]})
        return out


def normalize_cidr(value):
    """A CIDR as the API stores it (host bits cleared), or the value unchanged."""
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except (TypeError, ValueError):
        return value
