"""The image API as the agents use it: image data streamed in (a compute host's base
images, a storage host's volume created from an image) and streamed out (a server
snapshot, a volume uploaded to an image), over :class:`stratus.common.clients.ApiClient`."""

from __future__ import annotations

from collections.abc import Iterator

from stratus.common.clients import ApiClient, Auth


class HttpImageApi:
    """Image data: downloaded in ``chunk``-byte pieces, uploaded from a file."""

    def __init__(self, url: str, auth: Auth | None, chunk: int = 1 << 20):
        self.client = ApiClient(url, auth, timeout=300.0, service="image")
        self.chunk = chunk

    def fetch(self, image_id: str) -> Iterator[bytes]:
        """The image's data, streamed."""
        resp = self.client.request("GET", f"v2/images/{image_id}/file", stream=True)
        try:
            yield from resp.iter_bytes(self.chunk)
        finally:
            resp.close()

    def upload(self, image_id: str, path: str) -> None:
        """Uploads the file at ``path`` as the image's data."""
        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                while data := fh.read(self.chunk):
                    yield data
        self.client.request("PUT", f"v2/images/{image_id}/file", content=chunks(),
                            headers={"Content-Type": "application/octet-stream"})
