"""The image and network APIs as the compute API uses them (injectable; tests use fakes).

Every method raises :class:`stratus.common.clients.ServiceError` on failure.
``token`` is the caller's token; calls without one use the service user.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from stratus.common.clients import ApiClient, Auth, ServiceError

IMAGE_PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


class Downstream(Protocol):
    def get_image(self, token: str, image_id: str) -> dict[str, Any]: ...
    def create_image(self, token: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def upload_image(self, token: str, image_id: str, data: bytes) -> None: ...
    def delete_image(self, token: str | None, image_id: str) -> None: ...
    def list_images(self, token: str | None, **filters: Any) -> list[dict[str, Any]]: ...
    def image_page(self, token: str, params: dict[str, str]) -> dict[str, Any]: ...
    def patch_image(self, token: str, image_id: str, ops: list[dict[str, Any]]
                    ) -> dict[str, Any]: ...
    def get_network(self, token: str | None, network_id: str) -> dict[str, Any]: ...
    def list_networks(self, token: str, **filters: Any) -> list[dict[str, Any]]: ...
    def get_subnet(self, token: str | None, subnet_id: str) -> dict[str, Any]: ...
    def get_port(self, token: str | None, port_id: str) -> dict[str, Any]: ...
    def create_port(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]: ...
    def update_port(self, token: str | None, port_id: str, body: dict[str, Any]
                    ) -> dict[str, Any]: ...
    def delete_port(self, token: str | None, port_id: str) -> None: ...
    def list_ports(self, token: str | None, **filters: Any) -> list[dict[str, Any]]: ...
    def security_groups(self, token: str, name: str, project_id: str) -> list[dict[str, Any]]: ...
    def get_security_group(self, token: str, group_id: str) -> dict[str, Any]: ...
    def list_security_groups(self, token: str, **filters: Any) -> list[dict[str, Any]]: ...
    def create_security_group(self, token: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def update_security_group(self, token: str, group_id: str, body: dict[str, Any]
                              ) -> dict[str, Any]: ...
    def delete_security_group(self, token: str, group_id: str) -> None: ...
    def create_security_group_rule(self, token: str, body: dict[str, Any]
                                   ) -> dict[str, Any]: ...
    def get_security_group_rule(self, token: str, rule_id: str) -> dict[str, Any]: ...
    def delete_security_group_rule(self, token: str, rule_id: str) -> None: ...
    def floating_ips(self, port_id: str) -> list[dict[str, Any]]: ...
    def floating_map(self, port_ids: list[str]) -> dict[str, list[str]]: ...


class _Caller:
    """One shared connection pool; every call carries the caller's token."""

    def __init__(self, client: ApiClient, token: str) -> None:
        self.client, self.hdrs = client, {"X-Auth-Token": token}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.hdrs, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=self.hdrs, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.put(path, json=json, headers=self.hdrs, **kw)

    def delete(self, path: str, **kw: Any) -> None:
        self.client.delete(path, headers=self.hdrs, **kw)


class HttpDownstream:
    """The real thing: the caller's token or the service user's, over pooled clients."""

    def __init__(self, image_url: str, network_url: str, service_auth: Auth | None,
                 volumes: VolumeApi | None = None) -> None:
        self.volumes = volumes  # the volume API (compute/volumes.py); None: not configured
        self.image_url = image_url.rstrip("/")
        self.network_url = network_url.rstrip("/")
        self.service_auth = service_auth
        self._service_net = ApiClient(self.network_url, service_auth, service="network")
        self._service_img = ApiClient(self.image_url, service_auth, service="image")
        self._caller_net = ApiClient(self.network_url, None, service="network")
        self._caller_img = ApiClient(self.image_url, None, service="image")

    def _net(self, token: str | None) -> ApiClient | _Caller:
        if token is None:
            return self._service_net
        return _Caller(self._caller_net, token)

    def _img(self, token: str | None) -> ApiClient | _Caller:
        if token is None:
            return self._service_img
        return _Caller(self._caller_img, token)

    def get_image(self, token: str, image_id: str) -> dict[str, Any]:
        return dict(self._img(token).get(f"/v2/images/{image_id}"))

    def create_image(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._img(token).post("/v2/images", json=body))

    def upload_image(self, token: str, image_id: str, data: bytes) -> None:
        """The image's data (a volume-backed server's snapshot uploads none: b"")."""
        self._caller_img.request(
            "PUT", f"/v2/images/{image_id}/file", content=data,
            headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"})

    def delete_image(self, token: str | None, image_id: str) -> None:
        self._img(token).delete(f"/v2/images/{image_id}", ok=(404,))

    def list_images(self, token: str | None, **filters: Any) -> list[dict[str, Any]]:
        """Images matching Glance's filters (a custom property matches exactly)."""
        return list(self._img(token).get("/v2/images", params=filters)["images"])

    # The image proxy (compute/images_proxy.py): always as the caller.
    def image_page(self, token: str, params: dict[str, str]) -> dict[str, Any]:
        """One page of the image API's listing, as it answers it (``images``,
        ``next``)."""
        return dict(self._img(token).get("/v2/images", params=params))

    def patch_image(self, token: str, image_id: str, ops: list[dict[str, Any]]
                    ) -> dict[str, Any]:
        """A JSON patch of the image (its custom properties); the image after it."""
        resp = self._caller_img.request(
            "PATCH", f"/v2/images/{image_id}", content=json.dumps(ops).encode(),
            headers={"X-Auth-Token": token, "Content-Type": IMAGE_PATCH_TYPE})
        return dict(resp.json())

    def get_network(self, token: str | None, network_id: str) -> dict[str, Any]:
        return dict(self._net(token).get(f"/v2.0/networks/{network_id}")["network"])

    def list_networks(self, token: str, **filters: Any) -> list[dict[str, Any]]:
        return list(self._net(token).get("/v2.0/networks", params=filters)["networks"])

    def get_subnet(self, token: str | None, subnet_id: str) -> dict[str, Any]:
        return dict(self._net(token).get(f"/v2.0/subnets/{subnet_id}")["subnet"])

    def get_port(self, token: str | None, port_id: str) -> dict[str, Any]:
        return dict(self._net(token).get(f"/v2.0/ports/{port_id}")["port"])

    def create_port(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._net(token).post("/v2.0/ports", json={"port": body})["port"])

    def update_port(self, token: str | None, port_id: str, body: dict[str, Any]
                    ) -> dict[str, Any]:
        return dict(self._net(token).put(f"/v2.0/ports/{port_id}", json={"port": body})["port"])

    def delete_port(self, token: str | None, port_id: str) -> None:
        self._net(token).delete(f"/v2.0/ports/{port_id}", ok=(404,))

    def list_ports(self, token: str | None, **filters: Any) -> list[dict[str, Any]]:
        """Ports matching Neutron's exact filters (``device_id=...``), every one there is
        without any (the service user is admin)."""
        return list(self._net(token).get("/v2.0/ports", params=filters)["ports"])

    def security_groups(self, token: str, name: str, project_id: str) -> list[dict[str, Any]]:
        found = self._net(token).get("/v2.0/security-groups",
                                     params={"name": name, "project_id": project_id})
        return list(found["security_groups"])

    def get_security_group(self, token: str, group_id: str) -> dict[str, Any]:
        return dict(self._net(token).get(f"/v2.0/security-groups/{group_id}")["security_group"])

    # The security-group proxy (compute/security_groups.py): always as the caller.
    def list_security_groups(self, token: str, **filters: Any) -> list[dict[str, Any]]:
        found = self._net(token).get("/v2.0/security-groups", params=filters)
        return list(found["security_groups"])

    def create_security_group(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._net(token).post("/v2.0/security-groups",
                                          json={"security_group": body})["security_group"])

    def update_security_group(self, token: str, group_id: str, body: dict[str, Any]
                              ) -> dict[str, Any]:
        return dict(self._net(token).put(f"/v2.0/security-groups/{group_id}",
                                         json={"security_group": body})["security_group"])

    def delete_security_group(self, token: str, group_id: str) -> None:
        self._net(token).delete(f"/v2.0/security-groups/{group_id}")

    def create_security_group_rule(self, token: str, body: dict[str, Any]
                                   ) -> dict[str, Any]:
        return dict(self._net(token).post(
            "/v2.0/security-group-rules",
            json={"security_group_rule": body})["security_group_rule"])

    def get_security_group_rule(self, token: str, rule_id: str) -> dict[str, Any]:
        return dict(self._net(token).get(
            f"/v2.0/security-group-rules/{rule_id}")["security_group_rule"])

    def delete_security_group_rule(self, token: str, rule_id: str) -> None:
        self._net(token).delete(f"/v2.0/security-group-rules/{rule_id}")

    def update_floatingip(self, token: str, fip_id: str, body: dict[str, Any]
                          ) -> dict[str, Any]:
        """Associate (``port_id``, ``fixed_ip_address``) or disassociate (``port_id``
        None) a floating IP as the caller (compute/server_floating_ips.py)."""
        return dict(self._net(token).put(f"/v2.0/floatingips/{fip_id}",
                                         json={"floatingip": body})["floatingip"])

    def floating_ips(self, port_id: str) -> list[dict[str, Any]]:
        return list(self._service_net.get("/v2.0/floatingips",
                                          params={"port_id": port_id})["floatingips"])

    def floating_map(self, port_ids: list[str]) -> dict[str, list[str]]:
        """port id -> its floating IP addresses (one call for many ports)."""
        if not port_ids:
            return {}
        found = self._service_net.get("/v2.0/floatingips", params={"port_id": port_ids})
        out: dict[str, list[str]] = {}
        for fip in found["floatingips"]:
            if fip.get("port_id") in port_ids and fip.get("floating_ip_address"):
                out.setdefault(fip["port_id"], []).append(fip["floating_ip_address"])
        return out

    # The floating-IP proxy (compute/network_proxy.py): always as the caller.
    def list_floatingips(self, token: str, **filters: Any) -> list[dict[str, Any]]:
        return list(self._net(token).get("/v2.0/floatingips", params=filters)["floatingips"])

    def get_floatingip(self, token: str, fip_id: str) -> dict[str, Any]:
        return dict(self._net(token).get(f"/v2.0/floatingips/{fip_id}")["floatingip"])

    def create_floatingip(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._net(token).post("/v2.0/floatingips",
                                          json={"floatingip": body})["floatingip"])

    def delete_floatingip(self, token: str, fip_id: str) -> None:
        self._net(token).delete(f"/v2.0/floatingips/{fip_id}")


# --- the volume API (Cinder v3's attachments), as the compute API's service user ------------
VOLUME_TYPES = ("block-storage", "volumev3", "volume")
VOLUME_VERSION = {"OpenStack-API-Version": "volume 3.44"}


class VolumeApi(Protocol):
    """What ``compute/volumes.py`` asks of the volume API, always in the server's
    project (``project``) with the service user's admin token."""

    def get_volume(self, project: str, volume_id: str) -> dict[str, Any]: ...
    def create_volume(self, project: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def create_attachment(self, project: str, volume_id: str, server_id: str
                          ) -> dict[str, Any]: ...
    def update_attachment(self, project: str, attachment_id: str,
                          connector: dict[str, Any]) -> dict[str, Any]: ...
    def complete_attachment(self, project: str, attachment_id: str) -> None: ...
    def delete_attachment(self, project: str, attachment_id: str) -> None: ...
    def delete_volume(self, project: str, volume_id: str) -> None: ...
    def create_snapshot(self, project: str, volume_id: str, name: str, description: str
                        ) -> dict[str, Any]: ...
    def get_snapshot(self, project: str, snapshot_id: str) -> dict[str, Any]: ...
    def force_delete_snapshot(self, project: str, snapshot_id: str) -> None: ...


class HttpVolumes:
    """The volume API at ``volume_url`` or, when that is empty, at the identity catalog's
    ``block-storage``/``volumev3``/``volume`` endpoint (looked up once, with
    ``GET /v3/auth/catalog``). Paths are ``/v3/{project}/...``; a catalog URL's own
    ``/v3/...`` tail is dropped. No endpoint: a temporary ServiceError (503)."""

    def __init__(self, identity_url: str, volume_url: str, auth: Auth,
                 interface: str = "internal") -> None:
        self.identity_url = identity_url.rstrip("/")
        self.volume_url = volume_url.rstrip("/")
        self.auth, self.interface = auth, interface
        self._client: ApiClient | None = None
        self._caller: ApiClient | None = None  # the proxies' calls, with the caller's token

    def _api(self) -> ApiClient:
        if self._client is None:
            base = self.volume_url or self._from_catalog()
            self._client = ApiClient(base, self.auth, timeout=30.0, service="volume")
        return self._client

    def _from_catalog(self) -> str:
        ident = self.identity_url if self.identity_url.endswith("/v3") \
            else self.identity_url + "/v3"
        catalog = ApiClient(ident, self.auth, service="identity").get("/auth/catalog")
        found: dict[str, str] = {}
        for entry in catalog.get("catalog") or []:
            if entry.get("type") not in VOLUME_TYPES:
                continue
            for ep in entry.get("endpoints") or []:
                found.setdefault(str(ep.get("interface")), str(ep.get("url")))
        url = found.get(self.interface) or found.get("internal") or found.get("public") \
            or next(iter(found.values()), "")
        if not url:
            raise ServiceError("The volume service (block-storage/volumev3) is not in the "
                               "service catalog and [compute] volume_url is not set.",
                               status=503, temporary=True)
        return url.split("/v3", 1)[0].rstrip("/")

    def as_caller(self, token: str, method: str, path: str, *, json: Any = None,
                  params: dict[str, Any] | None = None) -> Any:
        """One call with the caller's own token (Nova's os-volumes and os-snapshots
        proxies, compute/volume_proxy.py); its JSON answer, None when it has none."""
        if self._caller is None:
            base = self.volume_url or self._from_catalog()
            self._caller = ApiClient(base, None, timeout=30.0, service="volume")
        resp = self._caller.request(method, path, json=json, params=params,
                                    headers={**VOLUME_VERSION, "X-Auth-Token": token})
        return resp.json() if resp.content else None

    def get_volume(self, project: str, volume_id: str) -> dict[str, Any]:
        return dict(self._api().get(f"/v3/{project}/volumes/{volume_id}",
                                    headers=VOLUME_VERSION)["volume"])

    def create_volume(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._api().post(f"/v3/{project}/volumes", json={"volume": body},
                                     headers=VOLUME_VERSION)["volume"])

    def create_attachment(self, project: str, volume_id: str, server_id: str
                          ) -> dict[str, Any]:
        body = {"attachment": {"volume_uuid": volume_id, "instance_uuid": server_id,
                               "mode": "rw"}}
        return dict(self._api().post(f"/v3/{project}/attachments", json=body,
                                     headers=VOLUME_VERSION)["attachment"])

    def update_attachment(self, project: str, attachment_id: str,
                          connector: dict[str, Any]) -> dict[str, Any]:
        # The volume API waits for the storage agent's export (its own bound): a longer
        # timeout than the client's.
        resp = self._api().request(
            "PUT", f"/v3/{project}/attachments/{attachment_id}",
            json={"attachment": {"connector": connector}}, headers=VOLUME_VERSION,
            timeout=90.0)
        return dict(resp.json()["attachment"])

    def complete_attachment(self, project: str, attachment_id: str) -> None:
        self._api().post(f"/v3/{project}/attachments/{attachment_id}/action",
                         json={"os-complete": None}, headers=VOLUME_VERSION)

    def delete_attachment(self, project: str, attachment_id: str) -> None:
        self._api().delete(f"/v3/{project}/attachments/{attachment_id}",
                           headers=VOLUME_VERSION, ok=(404,))

    def delete_volume(self, project: str, volume_id: str) -> None:
        self._api().delete(f"/v3/{project}/volumes/{volume_id}", headers=VOLUME_VERSION,
                           ok=(404,))

    # Snapshots (compute/volume_snapshots.py: createImage of a volume-backed server).
    def create_snapshot(self, project: str, volume_id: str, name: str, description: str
                        ) -> dict[str, Any]:
        """A snapshot of the volume even while it is in use (``force``, as Nova asks)."""
        body = {"snapshot": {"volume_id": volume_id, "name": name,
                             "description": description, "force": True}}
        return dict(self._api().post(f"/v3/{project}/snapshots", json=body,
                                     headers=VOLUME_VERSION)["snapshot"])

    def get_snapshot(self, project: str, snapshot_id: str) -> dict[str, Any]:
        return dict(self._api().get(f"/v3/{project}/snapshots/{snapshot_id}",
                                    headers=VOLUME_VERSION)["snapshot"])

    def force_delete_snapshot(self, project: str, snapshot_id: str) -> None:
        """Delete a snapshot whatever its status (one still being made, of a createImage
        that failed)."""
        self._api().post(f"/v3/{project}/snapshots/{snapshot_id}/action",
                         json={"os-force_delete": {}}, headers=VOLUME_VERSION, ok=(404,))
