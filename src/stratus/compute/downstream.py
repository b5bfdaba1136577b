"""The image and network APIs as the compute API uses them (injectable; tests use fakes).

Every method raises :class:`stratus.common.clients.ServiceError` on failure.
``token`` is the caller's token; calls without one use the service user.
"""

from __future__ import annotations

from typing import Any, Protocol

from stratus.common.clients import ApiClient, Auth


class Downstream(Protocol):
    def get_image(self, token: str, image_id: str) -> dict[str, Any]: ...
    def create_image(self, token: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def delete_image(self, token: str, image_id: str) -> None: ...
    def get_network(self, token: str | None, network_id: str) -> dict[str, Any]: ...
    def list_networks(self, token: str, **filters: Any) -> list[dict[str, Any]]: ...
    def get_subnet(self, token: str | None, subnet_id: str) -> dict[str, Any]: ...
    def get_port(self, token: str | None, port_id: str) -> dict[str, Any]: ...
    def create_port(self, token: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def update_port(self, token: str | None, port_id: str, body: dict[str, Any]
                    ) -> dict[str, Any]: ...
    def delete_port(self, token: str | None, port_id: str) -> None: ...
    def security_groups(self, token: str, name: str, project_id: str) -> list[dict[str, Any]]: ...
    def get_security_group(self, token: str, group_id: str) -> dict[str, Any]: ...
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

    def __init__(self, image_url: str, network_url: str, service_auth: Auth | None) -> None:
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

    def delete_image(self, token: str, image_id: str) -> None:
        self._img(token).delete(f"/v2/images/{image_id}", ok=(404,))

    def get_network(self, token: str | None, network_id: str) -> dict[str, Any]:
        return dict(self._net(token).get(f"/v2.0/networks/{network_id}")["network"])

    def list_networks(self, token: str, **filters: Any) -> list[dict[str, Any]]:
        return list(self._net(token).get("/v2.0/networks", params=filters)["networks"])

    def get_subnet(self, token: str | None, subnet_id: str) -> dict[str, Any]:
        return dict(self._net(token).get(f"/v2.0/subnets/{subnet_id}")["subnet"])

    def get_port(self, token: str | None, port_id: str) -> dict[str, Any]:
        return dict(self._net(token).get(f"/v2.0/ports/{port_id}")["port"])

    def create_port(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._net(token).post("/v2.0/ports", json={"port": body})["port"])

    def update_port(self, token: str | None, port_id: str, body: dict[str, Any]
                    ) -> dict[str, Any]:
        return dict(self._net(token).put(f"/v2.0/ports/{port_id}", json={"port": body})["port"])

    def delete_port(self, token: str | None, port_id: str) -> None:
        self._net(token).delete(f"/v2.0/ports/{port_id}", ok=(404,))

    def security_groups(self, token: str, name: str, project_id: str) -> list[dict[str, Any]]:
        found = self._net(token).get("/v2.0/security-groups",
                                     params={"name": name, "project_id": project_id})
        return list(found["security_groups"])

    def get_security_group(self, token: str, group_id: str) -> dict[str, Any]:
        return dict(self._net(token).get(f"/v2.0/security-groups/{group_id}")["security_group"])

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
