"""The image API in process, for unit tests: a fake token validator and a small client.

Tokens name the caller directly (no identity service): ``admin`` (admin of
project ``p-admin``), ``alice`` and ``bob`` (members of ``p-alice`` and
``p-bob``), ``carol`` (reader of ``p-alice``).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from stratus.common import db
from stratus.common.auth import AUTH_REQUIRED, AuthContext
from stratus.common.db import Database
from stratus.common.errors import Unauthorized
from stratus.image.app import build_app
from stratus.image.core import ImageService, Settings
from stratus.image.store import FileStore

CALLERS = {
    "admin": AuthContext(user_id="u-admin", project_id="p-admin",
                         roles=frozenset({"admin", "member", "reader"})),
    "alice": AuthContext(user_id="u-alice", project_id="p-alice",
                         roles=frozenset({"member", "reader"})),
    "bob": AuthContext(user_id="u-bob", project_id="p-bob", roles=frozenset({"member", "reader"})),
    "carol": AuthContext(user_id="u-carol", project_id="p-alice", roles=frozenset({"reader"})),
}


def fake_validate(token: str) -> AuthContext:
    if token not in CALLERS:
        raise Unauthorized(AUTH_REQUIRED)
    return CALLERS[token]


def make_service(root: Path, settings: Settings | None = None) -> ImageService:
    url = f"sqlite:///{root}/image.sqlite"
    db.sync("stratus.image", url)
    store = FileStore(root / "images")
    store.ensure()
    return ImageService(Database(url, "image"), store, settings or Settings())


@contextmanager
def image_client(service: ImageService) -> Iterator[ImageApi]:
    with TestClient(build_app(service, fake_validate), raise_server_exceptions=False) as client:
        yield ImageApi(client)


class ImageApi:
    """TestClient calls as a named caller (``as_`` picks the token)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def call(self, method: str, path: str, as_: str = "admin", **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        headers.setdefault("X-Auth-Token", as_)
        return self.client.request(method, path, headers=headers, **kw)

    def create(self, as_: str = "admin", **attrs: Any) -> dict[str, Any]:
        attrs.setdefault("disk_format", "raw")
        attrs.setdefault("container_format", "bare")
        resp = self.call("POST", "/v2/images", as_, json=attrs)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    def upload(self, image_id: str, data: bytes | Any, as_: str = "admin",
               headers: dict[str, str] | None = None) -> Any:
        hdrs = {"Content-Type": "application/octet-stream", **(headers or {})}
        return self.call("PUT", f"/v2/images/{image_id}/file", as_, content=data, headers=hdrs)

    def patch(self, image_id: str, ops: list[dict[str, Any]], as_: str = "admin") -> Any:
        return self.call(
            "PATCH", f"/v2/images/{image_id}", as_, json=ops,
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
        )

    def show(self, image_id: str, as_: str = "admin") -> dict[str, Any]:
        resp = self.call("GET", f"/v2/images/{image_id}", as_)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


def qcow2(path: Path, size: str = "16M", *options: str) -> Path:
    """A small qcow2 made with the real qemu-img (``options`` go after -o)."""
    cmd = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if options:
        cmd += ["-o", ",".join(options)]
    subprocess.run([*cmd, str(path), size], check=True)
    return path


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
