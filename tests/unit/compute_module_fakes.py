"""Fakes of the compute, image and network APIs the compute modules' logic runs against.

Each keeps its state in dicts and records every call that writes in ``writes``
(one list shared by the three, so a test sees the order of everything done).
"""

from __future__ import annotations

import copy
import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT = "0123456789abcdef0123456789abcdef"


class StratusError(Exception):
    """Stands in for the client's error where a fake must answer like the API."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def matches(item: dict[str, Any], query: dict[str, Any] | None) -> bool:
    return all(item.get(k) == v for k, v in (query or {}).items())


class FakeNetwork:
    project_id = PROJECT

    def __init__(self, writes: list[tuple[str, Any]]) -> None:
        self.writes = writes
        self.items: dict[str, dict[str, dict[str, Any]]] = {
            "networks": {}, "ports": {}, "floatingips": {}, "subnets": {},
            "security-groups": {}}

    def add(self, collection: str, **item: Any) -> dict[str, Any]:
        item.setdefault("id", str(uuid.uuid4()))
        self.items[collection][item["id"]] = item
        return item

    def list(self, collection: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(i) for i in self.items[collection].values() if matches(i, query)]

    def get(self, collection: str, item_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.items[collection].get(item_id))

    def find(self, collection: str, name_or_id: str, project_id: str | None = None) -> Any:
        if name_or_id in self.items[collection]:
            return self.get(collection, name_or_id)
        found = self.list(collection, {"name": name_or_id})
        return found[0] if found else None

    def create(self, collection: str, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append((f"network.create.{collection}", attrs))
        item = {"project_id": PROJECT, **attrs}
        if collection == "floatingips":
            n = len(self.items["floatingips"]) + 10
            item.setdefault("floating_ip_address", f"172.24.4.{n}")
        return copy.deepcopy(self.add(collection, **item))

    def update(self, collection: str, item_id: str, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append((f"network.update.{collection}", attrs))
        self.items[collection][item_id].update(attrs)
        return copy.deepcopy(self.items[collection][item_id])

    def delete(self, collection: str, item_id: str) -> None:
        self.writes.append((f"network.delete.{collection}", item_id))
        self.items[collection].pop(item_id, None)


class FakeImages:
    project_id = PROJECT

    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []

    def add(self, **image: Any) -> dict[str, Any]:
        image.setdefault("id", str(uuid.uuid4()))
        image.setdefault("status", "active")
        image.setdefault("owner", PROJECT)
        self.images.append(image)
        return image

    def find(self, name_or_id: str, owner: str | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(i) for i in self.images
                if name_or_id in (i["id"], i["name"])]


class FakeCompute:
    """Servers, flavors and key pairs; server actions take effect at once.

    ``boot_result`` is the status a new server reaches at its first look
    after creation (``ACTIVE``, ``ERROR`` with ``fault``, or ``BUILD`` forever).
    """

    project_id = PROJECT

    def __init__(self, writes: list[tuple[str, Any]], network: FakeNetwork) -> None:
        self.writes = writes
        self.network = network
        self.servers_by_id: dict[str, dict[str, Any]] = {}
        self.flavor_list: dict[str, dict[str, Any]] = {}
        self.specs: dict[str, dict[str, str]] = {}
        self.access: dict[str, list[str]] = {}
        self.keypairs: dict[str, dict[str, Any]] = {}
        self.boot_result = "ACTIVE"
        self.fault: dict[str, Any] | None = None
        # Set to the module_utils' StratusError class to answer the security-group actions
        # with a 400 "no such action" (as stratus-compute does).
        self.no_group_actions: type[Exception] | None = None

    def group_ids(self, names: list[str]) -> list[str]:
        groups = self.network.items["security-groups"].values()
        return sorted(g["id"] for g in groups if g["name"] in names)

    # flavors
    def add_flavor(self, **flavor: Any) -> dict[str, Any]:
        flavor = {"disk": 0, "swap": "", "OS-FLV-EXT-DATA:ephemeral": 0,
                  "os-flavor-access:is_public": True, **flavor}
        self.flavor_list[flavor["id"]] = flavor
        self.specs.setdefault(flavor["id"], {})
        self.access.setdefault(flavor["id"], [])
        return flavor

    def flavors(self) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self.flavor_list.values()))

    def get_or_none(self, path: str, key: str) -> Any:
        assert key == "flavor" and path.startswith("/flavors/")
        return copy.deepcopy(self.flavor_list.get(path[len("/flavors/"):]))

    def find_flavor(self, name_or_id: str) -> dict[str, Any] | None:
        if name_or_id in self.flavor_list:
            return copy.deepcopy(self.flavor_list[name_or_id])
        found = [f for f in self.flavors() if f["name"] == name_or_id]
        return found[0] if found else None

    def create_flavor(self, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("compute.create_flavor", attrs))
        attrs = dict(attrs)
        attrs.setdefault("id", str(uuid.uuid4()))
        if attrs["id"] in self.flavor_list:
            raise StratusError("Flavor with ID exists", 409)
        return copy.deepcopy(self.add_flavor(**attrs))

    def delete_flavor(self, flavor_id: str) -> None:
        self.writes.append(("compute.delete_flavor", flavor_id))
        del self.flavor_list[flavor_id]

    def extra_specs(self, flavor_id: str) -> dict[str, str]:
        return dict(self.specs[flavor_id])

    def set_extra_specs(self, flavor_id: str, specs: dict[str, str]) -> None:
        self.writes.append(("compute.set_extra_specs", specs))
        self.specs[flavor_id].update(specs)

    def unset_extra_spec(self, flavor_id: str, key: str) -> None:
        self.writes.append(("compute.unset_extra_spec", key))
        del self.specs[flavor_id][key]

    def flavor_access(self, flavor_id: str) -> list[str]:
        return sorted(self.access[flavor_id])

    def flavor_access_action(self, flavor_id: str, action: str, project_id: str) -> None:
        self.writes.append((f"compute.{action}", project_id))
        if action == "addTenantAccess":
            self.access[flavor_id].append(project_id)
        else:
            self.access[flavor_id].remove(project_id)

    # key pairs
    def get_keypair(self, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.keypairs.get(name))

    def create_keypair(self, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("compute.create_keypair", attrs))
        keypair = {"name": attrs["name"], "type": attrs.get("type", "ssh"),
                   "public_key": attrs.get("public_key") or "ssh-ed25519 GENERATED gen",
                   "fingerprint": "aa:bb", "user_id": "u1"}
        self.keypairs[attrs["name"]] = keypair
        out = copy.deepcopy(keypair)
        if not attrs.get("public_key"):
            out["private_key"] = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n"
        return out

    def delete_keypair(self, name: str) -> None:
        self.writes.append(("compute.delete_keypair", name))
        del self.keypairs[name]

    # servers
    def add_server(self, **server: Any) -> dict[str, Any]:
        server = {"id": str(uuid.uuid4()), "status": "ACTIVE", "metadata": {},
                  "security_groups": [{"name": "default"}], "key_name": None,
                  "image": {"id": "img"}, "flavor": {"original_name": "m1.tiny"},
                  "addresses": {}, **server}
        self.servers_by_id[server["id"]] = server
        return server

    def find_servers(self, name_or_id: str, query: Any = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(s) for s in self.servers_by_id.values()
                if name_or_id in (s["id"], s["name"])]

    def servers(self, query: Any = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(s) for s in self.servers_by_id.values()]

    def get_server(self, server_id: str) -> dict[str, Any] | None:
        server = self.servers_by_id.get(server_id)
        if server is None:
            return None
        if server["status"] == "BUILD" and self.boot_result != "BUILD":
            server["status"] = self.boot_result
            if self.boot_result == "ERROR":
                server["fault"] = self.fault
        return copy.deepcopy(server)

    def create_server(self, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("compute.create_server", attrs))
        server = self.add_server(
            name=attrs["name"], status="BUILD", key_name=attrs.get("key_name"),
            metadata=dict(attrs.get("metadata") or {}),
            security_groups=attrs.get("security_groups") or [{"name": "default"}],
            image={"id": attrs["imageRef"]},
            flavor={"original_name": self.flavor_list[attrs["flavorRef"]]["name"]})
        sg_ids = self.group_ids([g["name"] for g in server["security_groups"]])
        for nic in attrs["networks"] if isinstance(attrs["networks"], list) else []:
            if "port" in nic:
                self.network.items["ports"][nic["port"]]["device_id"] = server["id"]
            else:
                self.network.add("ports", network_id=nic["uuid"], device_id=server["id"],
                                 fixed_ips=[{"ip_address": nic.get("fixed_ip", "10.0.0.5")}],
                                 security_groups=sg_ids)
        return {"id": server["id"]}

    def delete_server(self, server_id: str) -> None:
        self.writes.append(("compute.delete_server", server_id))
        del self.servers_by_id[server_id]
        for port in self.network.list("ports", {"device_id": server_id}):
            del self.network.items["ports"][port["id"]]

    def action(self, server_id: str, name: str, value: Any = None) -> None:
        self.writes.append((f"compute.action.{name}", value))
        server = self.servers_by_id[server_id]
        status = {"os-start": "ACTIVE", "os-stop": "SHUTOFF", "pause": "PAUSED",
                  "unpause": "ACTIVE", "suspend": "SUSPENDED", "resume": "ACTIVE"}
        if name in status:
            server["status"] = status[name]
        elif name in ("addSecurityGroup", "removeSecurityGroup"):
            if self.no_group_actions is not None:
                raise self.no_group_actions("There is no such action: " + name, 400)
            if name == "addSecurityGroup":
                server["security_groups"].append(value)
            else:
                server["security_groups"] = [g for g in server["security_groups"] if g != value]
            ids = self.group_ids([g["name"] for g in server["security_groups"]])
            for port in self.network.items["ports"].values():
                if port.get("device_id") == server_id:
                    port["security_groups"] = ids

    def set_metadata(self, server_id: str, metadata: dict[str, str]) -> None:
        self.writes.append(("compute.set_metadata", metadata))
        self.servers_by_id[server_id]["metadata"].update(metadata)

    def delete_metadata(self, server_id: str, key: str) -> None:
        self.writes.append(("compute.delete_metadata", key))
        del self.servers_by_id[server_id]["metadata"][key]


class FakeCloud:
    """The three fakes with a small world: an image, flavors, a network, an external one."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, Any]] = []
        self.network = FakeNetwork(self.writes)
        self.images = FakeImages()
        self.compute = FakeCompute(self.writes, self.network)
        self.image = self.images.add(name="tiny")
        self.compute.add_flavor(id="1", name="m1.tiny", ram=512, vcpus=1, disk=1)
        self.net = self.network.add("networks", name="app-net", **{"router:external": False})
        self.public = self.network.add("networks", name="public", **{"router:external": True})
        for name in ("default", "web"):
            self.network.add("security-groups", id=f"sg-{name}", name=name, project_id=PROJECT)


REPO = Path(__file__).resolve().parents[2]


def collections_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """For a module-scoped fixture: ansible_collections/stratus/cloud -> this repo, on sys.path."""
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "stratus").mkdir(parents=True)
    (root / "ansible_collections" / "stratus" / "cloud").symlink_to(REPO)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for name in [n for n in sys.modules if n.startswith("ansible_collections.stratus")]:
        del sys.modules[name]


def compute_utils(name: str) -> Any:
    """plugins/module_utils/<name> (stratus_server, stratus_flavor, stratus_keypair), imported
    as the modules import it."""
    return importlib.import_module(f"ansible_collections.stratus.cloud.plugins.module_utils.{name}")
