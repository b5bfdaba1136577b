"""The compute API in-process (starlette TestClient) with fake identity, image and network.

Tokens are the fixed strings of network_api (ADMIN, ALICE, BOB, READER). ``FakeDownstream``
plays the image and network APIs in memory and records what was asked of it.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from network_api import ADMIN, ALICE, BOB, CONTEXTS, READER
from stratus.common import db
from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.db import Database
from stratus.common.errors import Unauthorized
from stratus.common.timeutil import utcnow
from stratus.compute import models as m
from stratus.compute.app import build_app
from stratus.compute.core import ComputeCore, Settings
from stratus.compute.servers import CreateRequest, ServerFlow

__all__ = [
    "ADMIN",
    "ALICE",
    "BOB",
    "CONTEXTS",
    "READER",
    "ComputeApi",
    "FakeDownstream",
    "concurrent_creates",
    "concurrent_group_members",
    "in_process",
    "make_core",
]
IMAGE = "11111111-1111-4111-8111-111111111111"


def fake_validate(token: str) -> AuthContext:
    """The network tests' fixed tokens, with the token kept (the fakes look it up)."""
    ctx = CONTEXTS.get(token)
    if ctx is None:
        raise Unauthorized("The request you have made requires authentication.")
    return dataclasses.replace(ctx, token=token)


class FakeDownstream:
    """Image and network APIs in memory; ``fail_ports`` makes port creation fail."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.images: dict[str, dict[str, Any]] = {IMAGE: {
            "id": IMAGE, "name": "tiny", "status": "active", "disk_format": "qcow2",
            "checksum": "abc", "os_hash_algo": "sha512", "os_hash_value": "def", "size": 1024,
            "min_ram": 0, "min_disk": 0, "owner": "p-alice", "visibility": "public"}}
        self.networks: dict[str, dict[str, Any]] = {}
        self.subnets: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, dict[str, Any]] = {}
        self.ips = itertools.count(10)
        self.fail_ports: ServiceError | None = None
        self.floating: dict[str, str] = {}  # port id -> floating IP
        self.fips: dict[str, dict[str, Any]] = {}  # the floating-IP proxy's: id -> fip
        self.groups: dict[str, dict[str, Any]] = {}  # security groups but "default"
        self.fail_groups: ServiceError | None = None
        self.refuse_updates: dict[str, ServiceError] = {}  # port id -> update_port error
        self.image_url = "http://image.test:9292"

    def network(self, name: str = "net", project: str = "p-alice", shared: bool = False
                ) -> dict[str, Any]:
        nid, sid = str(uuid.uuid4()), str(uuid.uuid4())
        self.networks[nid] = {"id": nid, "name": name, "project_id": project, "shared": shared,
                              "mtu": 1450, "status": "ACTIVE", "router:external": False,
                              "subnets": [sid]}
        self.subnets[sid] = {"id": sid, "network_id": nid, "cidr": "192.168.10.0/24",
                             "gateway_ip": "192.168.10.1", "dns_nameservers": [],
                             "host_routes": [], "enable_dhcp": True, "ip_version": 4}
        return self.networks[nid]

    def _visible(self, token: str | None, project: str) -> bool:
        if token is None:
            return True
        ctx = CONTEXTS[token]
        return ctx.is_admin or ctx.project_id == project

    def get_image(self, token: str, image_id: str) -> dict[str, Any]:
        img = self.images.get(image_id)
        if img is None or not (img["visibility"] == "public"
                               or self._visible(token, img["owner"])):
            raise ServiceError("no image", status=404)
        return dict(img)

    def create_image(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        iid = str(uuid.uuid4())
        self.images[iid] = {**body, "id": iid, "status": "queued",
                            "owner": CONTEXTS[token].project_id}
        return dict(self.images[iid])

    def upload_image(self, token: str, image_id: str, data: bytes) -> None:
        """As the image API: empty data activates only an image of volume snapshots."""
        img = self.images.get(image_id)
        if img is None:
            raise ServiceError("no image", status=404)
        if not data and "block_device_mapping" not in img:
            raise ServiceError("The image data is empty (0 bytes)", status=400)
        img.update(status="active", size=len(data))

    def delete_image(self, token: str | None, image_id: str) -> None:
        self.images.pop(image_id, None)

    def list_images(self, token: str | None, **filters: Any) -> list[dict[str, Any]]:
        return [dict(i) for i in list(self.images.values())
                if all(i.get(k) == v for k, v in filters.items())]

    def get_network(self, token: str | None, network_id: str) -> dict[str, Any]:
        net = self.networks.get(network_id)
        if net is None or not (net["shared"] or self._visible(token, net["project_id"])):
            raise ServiceError("no network", status=404)
        return dict(net)

    def list_networks(self, token: str, **filters: Any) -> list[dict[str, Any]]:
        out = []
        for n in self.networks.values():
            if "project_id" in filters and n["project_id"] != filters["project_id"]:
                continue
            if "shared" in filters and not n["shared"]:
                continue
            if "router:external" in filters and \
                    bool(n["router:external"]) != bool(filters["router:external"]):
                continue
            out.append(dict(n))
        return out

    def get_subnet(self, token: str | None, subnet_id: str) -> dict[str, Any]:
        return dict(self.subnets[subnet_id])

    def get_port(self, token: str | None, port_id: str) -> dict[str, Any]:
        port = self.ports.get(port_id)
        if port is None:
            raise ServiceError("no port", status=404)
        return dict(port)

    def create_port(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.fail_ports is not None:
            raise self.fail_ports
        with self.lock:
            net = self.get_network(token, body["network_id"])
            sub = next(s for s in self.subnets.values() if s["network_id"] == net["id"])
            ip = body.get("fixed_ips", [{}])[0].get("ip_address") or \
                f"192.168.10.{next(self.ips)}"
            if any(ip == f["ip_address"] for p in self.ports.values()
                   if p["network_id"] == net["id"] for f in p["fixed_ips"]):
                raise ServiceError(f"IP address {ip} already allocated", status=409)
            pid = str(uuid.uuid4())
            self.ports[pid] = {"id": pid, "network_id": net["id"],
                               "mac_address": f"fa:16:3e:00:00:{len(self.ports):02x}",
                               "fixed_ips": [{"subnet_id": sub["id"], "ip_address": ip}],
                               "device_id": body.get("device_id", ""),
                               "device_owner": body.get("device_owner", ""),
                               "binding:host_id": "",
                               "security_groups": body.get("security_groups", [])}
            return dict(self.ports[pid])

    def update_port(self, token: str | None, port_id: str, body: dict[str, Any]
                    ) -> dict[str, Any]:
        port = self.ports.get(port_id)
        if port is None:
            raise ServiceError("no port", status=404)
        if port_id in self.refuse_updates:
            raise self.refuse_updates[port_id]
        if "fixed_ips" in body:  # a subnet without an address: the next free one
            body = {**body, "fixed_ips": [
                ip if ip.get("ip_address") else
                {"subnet_id": ip["subnet_id"], "ip_address": f"192.168.10.{next(self.ips)}"}
                for ip in body["fixed_ips"]]}
        port.update(body)
        return dict(port)

    def delete_port(self, token: str | None, port_id: str) -> None:
        self.ports.pop(port_id, None)

    def list_ports(self, token: str | None, **filters: Any) -> list[dict[str, Any]]:
        return [dict(p) for p in list(self.ports.values())
                if all(p.get(k) == v for k, v in filters.items())]

    def security_group(self, name: str, project: str = "p-alice",
                       rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        gid = str(uuid.uuid4())
        self.groups[gid] = {"id": gid, "name": name, "project_id": project,
                            "description": f"{name} group", "security_group_rules": [
                                {"id": str(uuid.uuid4()), "security_group_id": gid, **r}
                                for r in rules or []]}
        return self.groups[gid]

    def _group(self, gid: str) -> dict[str, Any] | None:
        if gid.startswith("sg-default-"):
            project = gid[len("sg-default-"):]
            return {"id": gid, "name": "default", "project_id": project,
                    "description": "Default security group", "security_group_rules": []}
        return self.groups.get(gid)

    def security_groups(self, token: str, name: str, project_id: str) -> list[dict[str, Any]]:
        if self.fail_groups is not None:
            raise self.fail_groups
        if name == "default":
            return [{"id": f"sg-default-{project_id}", "name": "default",
                     "project_id": project_id}]
        return [dict(g) for g in self.groups.values()
                if g["name"] == name and g["project_id"] == project_id
                and self._visible(token, g["project_id"])]

    def get_security_group(self, token: str, group_id: str) -> dict[str, Any]:
        group = self._group(group_id)
        if group is None or not self._visible(token, group["project_id"]):
            raise ServiceError(f"Security group {group_id} does not exist", status=404)
        return dict(group)

    # The security-group proxy's calls (Neutron's rules, simplified).
    def list_security_groups(self, token: str, **filters: Any) -> list[dict[str, Any]]:
        project = filters.get("project_id")
        found = [self._group(f"sg-default-{project}")] if project else []
        found += [g for g in self.groups.values() if project in (None, g["project_id"])]
        return [dict(g) for g in found if g and self._visible(token, g["project_id"])]

    def create_security_group(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        group = self.security_group(body["name"], CONTEXTS[token].project_id or "")
        group["description"] = body.get("description", "")
        return dict(group)

    def update_security_group(self, token: str, group_id: str, body: dict[str, Any]
                              ) -> dict[str, Any]:
        group = self.get_security_group(token, group_id)
        self.groups[group_id].update(body)
        return {**group, **body}

    def delete_security_group(self, token: str, group_id: str) -> None:
        self.get_security_group(token, group_id)
        if any(group_id in (p.get("security_groups") or []) for p in self.ports.values()):
            raise ServiceError(f"Security group {group_id} is in use", status=409)
        del self.groups[group_id]

    def create_security_group_rule(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        group = self.groups[body["security_group_id"]]
        rule = {"remote_group_id": None, "remote_ip_prefix": None, **body}
        same = [r for r in group["security_group_rules"]
                if {k: v for k, v in r.items() if k != "id"} == rule]
        if same:
            raise ServiceError("Security group rule already exists.", status=409)
        rule["id"] = str(uuid.uuid4())
        group["security_group_rules"].append(rule)
        return dict(rule)

    def get_security_group_rule(self, token: str, rule_id: str) -> dict[str, Any]:
        for g in self.groups.values():
            for r in g["security_group_rules"]:
                if r["id"] == rule_id and self._visible(token, g["project_id"]):
                    return dict(r)
        raise ServiceError(f"Security group rule {rule_id} does not exist", status=404)

    def delete_security_group_rule(self, token: str, rule_id: str) -> None:
        self.get_security_group_rule(token, rule_id)
        for g in self.groups.values():
            g["security_group_rules"] = [r for r in g["security_group_rules"]
                                         if r["id"] != rule_id]

    def floating_ips(self, port_id: str) -> list[dict[str, Any]]:
        fip = self.floating.get(port_id)
        return [{"floating_ip_address": fip, "port_id": port_id}] if fip else []

    def floating_map(self, port_ids: list[str]) -> dict[str, list[str]]:
        return {p: [self.floating[p]] for p in port_ids if p in self.floating}

    # The floating-IP proxy (compute/network_proxy.py), as the caller.
    def list_floatingips(self, token: str, **filters: Any) -> list[dict[str, Any]]:
        return [dict(f) for f in list(self.fips.values())
                if self._visible(token, f["project_id"])
                and all(f.get(k) == v for k, v in filters.items())]

    def get_floatingip(self, token: str, fip_id: str) -> dict[str, Any]:
        fip = self.fips.get(fip_id)
        if fip is None or not self._visible(token, fip["project_id"]):
            raise ServiceError("no floating IP", status=404)
        return dict(fip)

    def create_floatingip(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        net = self.get_network(token, body["floating_network_id"])
        if not net["router:external"]:
            raise ServiceError("not an external network", status=400)
        fid = str(uuid.uuid4())
        self.fips[fid] = {"id": fid, "floating_ip_address": f"203.0.113.{next(self.ips)}",
                          "fixed_ip_address": None, "port_id": None,
                          "floating_network_id": net["id"],
                          "project_id": CONTEXTS[token].project_id}
        return dict(self.fips[fid])

    def delete_floatingip(self, token: str, fip_id: str) -> None:
        self.get_floatingip(token, fip_id)
        del self.fips[fip_id]


class ComputeApi:
    def __init__(self, client: Any, core: ComputeCore, fake: FakeDownstream) -> None:
        self.client, self.core, self.fake = client, core, fake

    def call(self, method: str, path: str, token: str = ADMIN, version: str | None = "2.47",
             **kw: Any) -> httpx.Response:
        headers = {"X-Auth-Token": token, **kw.pop("headers", {})}
        if version:
            headers["OpenStack-API-Version"] = f"compute {version}"
        return self.client.request(method, path, headers=headers, **kw)

    def ok(self, method: str, path: str, token: str = ADMIN, status: int | None = None,
           **kw: Any) -> Any:
        resp = self.call(method, path, token, **kw)
        expected = status or {"POST": 200, "DELETE": 204}.get(method, 200)
        assert resp.status_code == expected, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def host(self, name: str = "cmp1", vcpus: int = 4, memory_mb: int = 8704,
             local_gb: int = 100, **extra: Any) -> dict[str, Any]:
        body = {"host": {"vcpus": vcpus, "memory_mb": memory_mb, "local_gb": local_gb,
                         "virt_type": "qemu", "hypervisor_hostname": name, **extra}}
        return self.ok("PUT", f"/v2.1/stratus/compute-hosts/{name}", json=body)["host"]

    def flavor(self, name: str = "m1.tiny", vcpus: int = 1, ram: int = 512, disk: int = 1,
               **extra: Any) -> dict[str, Any]:
        body = {"flavor": {"name": name, "vcpus": vcpus, "ram": ram, "disk": disk, **extra}}
        return self.ok("POST", "/v2.1/flavors", json=body)["flavor"]

    def boot(self, token: str = ALICE, status: int = 202, **attrs: Any) -> Any:
        body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1",
                           "networks": "none", **attrs}}
        hints = body["server"].pop("hints", None)
        if hints:
            body["os:scheduler_hints"] = hints
        return self.ok("POST", "/v2.1/servers", token, status=status, json=body)

    def server(self, sid: str, token: str = ADMIN) -> dict[str, Any]:
        return self.ok("GET", f"/v2.1/servers/{sid}", token)["server"]

    def report(self, host: str, sid: str, status: int = 200, **body: Any) -> Any:
        return self.ok("POST", f"/v2.1/stratus/compute-hosts/{host}/servers/{sid}/report",
                       status=status, json=body)


def make_core(url: str, settings: Settings | None = None,
              fake: FakeDownstream | None = None) -> ComputeCore:
    db.sync("stratus.compute", url)
    return ComputeCore(Database(url, "compute"), settings or Settings(),
                       fake or FakeDownstream())


@contextmanager
def in_process(tmp_path: Path, settings: Settings | None = None, url: str | None = None,
               raise_server_exceptions: bool = True) -> Iterator[ComputeApi]:
    fake = FakeDownstream()
    core = make_core(url or f"sqlite:///{tmp_path}/compute.sqlite", settings, fake)
    app = build_app(core, fake_validate, public_url="http://compute.test:8774")
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        yield ComputeApi(client, core, fake)
    core.db.dispose()


def concurrent_creates(url: str, n: int, room: int) -> None:
    """n concurrent creates against a host with room for ``room`` servers."""
    fake = FakeDownstream()
    core = make_core(url, Settings(reserved_host_memory_mb=0, quotas={
        "instances": -1, "cores": -1, "ram": -1, "key_pairs": -1, "server_groups": -1,
        "server_group_members": -1, "metadata_items": 128}), fake)
    now = utcnow()
    with core.db.session() as s:
        s.add(m.Flavor(id="1", name="m1", vcpus=1, ram=512, disk=1, ephemeral=0, swap=0,
                       rxtx_factor=1.0, is_public=True, extra_specs={}, created_at=now))
        s.add(m.ComputeHost(host="only", hypervisor_hostname="only", availability_zone="nova",
                            vcpus=64, memory_mb=512 * room, local_gb=1000, heartbeat_at=now,
                            created_at=now))
    flow = ServerFlow(core)
    ctx = dataclasses.replace(CONTEXTS[ALICE], token=ALICE)
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def boot(i: int) -> None:
        try:
            barrier.wait()
            flow.create(ctx, CreateRequest(name=f"vm{i}", image_id=IMAGE, flavor_id="1",
                                           networks="none"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=boot, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with core.db.session() as s:
        servers = list(s.query(m.Server))
        placed = [x for x in servers if x.host == "only"]
        failed = [x for x in servers if x.vm_state == "error"]
        hrow = s.query(m.ComputeHost).one()
        assert len(servers) == n
        assert len(placed) == room and hrow.claimed_ram == 512 * room
        assert len(failed) == n - room
        assert all(x.fault and x.fault["message"].startswith("No valid host was found.")
                   for x in failed)
    core.db.dispose()


def concurrent_group_members(url: str) -> None:
    """Four concurrent boots into one anti-affinity group land on four hosts."""
    core = make_core(url, Settings(), FakeDownstream())
    now = utcnow()
    with core.db.session() as s:
        s.add(m.Flavor(id="1", name="m1", vcpus=1, ram=512, disk=1, ephemeral=0, swap=0,
                       rxtx_factor=1.0, is_public=True, extra_specs={}, created_at=now))
        for i in range(4):
            s.add(m.ComputeHost(host=f"h{i}", hypervisor_hostname=f"h{i}",
                                availability_zone="nova", vcpus=8, memory_mb=16384,
                                local_gb=100, heartbeat_at=now, created_at=now))
        s.add(m.ServerGroup(id="g", name="g", project_id="p-alice", user_id="u-alice",
                            policy="anti-affinity", members=[], created_at=now))
    flow = ServerFlow(core)
    ctx = dataclasses.replace(CONTEXTS[ALICE], token=ALICE)
    barrier = threading.Barrier(4)

    def boot(i: int) -> None:
        barrier.wait()
        flow.create(ctx, CreateRequest(name=f"vm{i}", image_id=IMAGE, flavor_id="1",
                                       networks="none", group_id="g"))

    threads = [threading.Thread(target=boot, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with core.db.session() as s:
        hosts = [x.host for x in s.query(m.Server)]
    assert len(hosts) == 4 and None not in hosts and len(set(hosts)) == 4
    core.db.dispose()
