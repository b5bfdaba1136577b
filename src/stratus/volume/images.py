"""The image API as the volume service uses it: read an image to create a volume from it
(with the caller's token, so only images the caller may see are used), and create the
image a volume is uploaded into (``os-volume_upload_image``; the storage agent sends
the data). A fake of :class:`ImageApi` serves the unit tests."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from stratus.common.clients import ApiClient, ServiceError, StaticToken

__all__ = ["HttpImageApi", "ImageApi", "ServiceError"]


class ImageApi(Protocol):
    def get_image(self, token: str, image_id: str) -> dict[str, Any]: ...

    def create_image(self, token: str, body: dict[str, Any]) -> dict[str, Any]: ...


class HttpImageApi:
    """Glance v2 over HTTP with the caller's token (one shared connection pool)."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout)

    def _client(self, token: str) -> ApiClient:
        return ApiClient(self.base_url, StaticToken(token), timeout=self.timeout,
                         service="image", http=self._http)

    def get_image(self, token: str, image_id: str) -> dict[str, Any]:
        return dict(self._client(token).get(f"/v2/images/{image_id}"))

    def create_image(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._client(token).post("/v2/images", json=body))

    def close(self) -> None:
        self._http.close()
