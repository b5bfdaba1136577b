# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""The image API (Glance v2) as the image and server modules use it.

``ImageApi`` wraps a ``StratusClient`` with the few image calls the modules
need; tests give the convergences a fake with the same methods.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import hashlib
import re

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


def file_md5(path, block=1024 * 1024):
    """md5 of a local file, read one block at a time."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pointer(name):
    """A JSON-pointer path for a top-level attribute name."""
    return "/" + name.replace("~", "~0").replace("/", "~1")


class ImageApi:
    """GET/POST/PATCH/PUT/DELETE on /v2/images for one project."""

    service = "image"

    def __init__(self, client):
        self.client = client

    @property
    def project_id(self):
        return self.client.project_id

    def list(self, query=None):
        """Every image matching ``query`` (following ``next`` links)."""
        images = []
        body = self.client.get(self.service, "/v2/images", query=query)
        while True:
            images.extend(body.get("images") or [])
            next_link = body.get("next")
            if not next_link:
                return images
            body = self.client.get(self.service, next_link)

    def get(self, image_id):
        """The image, or None when it does not exist (or is not visible)."""
        try:
            return self.client.get(self.service, f"/v2/images/{image_id}")
        except StratusError as exc:
            if exc.status == 404:
                return None
            raise

    def find(self, name_or_id, owner=None):
        """Images whose ID or name is ``name_or_id`` (owned by ``owner`` when given)."""
        if UUID_RE.match(name_or_id):
            image = self.get(name_or_id)
            if image is not None and (owner is None or image.get("owner") == owner):
                return [image]
        query = {"name": name_or_id}
        if owner is None:
            return self.list(query)
        # The project's own images, hidden ones included (the list hides them by default).
        query["owner"] = owner
        return self.list(query) + self.list(dict(query, os_hidden="true"))

    def create(self, attrs):
        return self.client.request(
            "POST", self.service, "/v2/images", body=attrs, expect=(201,)
        ).body

    def patch(self, image_id, ops):
        return self.client.request(
            "PATCH",
            self.service,
            f"/v2/images/{image_id}",
            body=ops,
            content_type=PATCH_TYPE,
            expect=(200,),
        ).body

    def upload(self, image_id, filename, timeout):
        self.client.upload_file(
            self.service, f"/v2/images/{image_id}/file", filename, expect=(204,), timeout=timeout
        )

    def delete(self, image_id):
        self.client.request("DELETE", self.service, f"/v2/images/{image_id}", expect=(204,))

    def wait_active(self, image_id, timeout):
        """Wait until the image is active; fail when it ends killed, queued or gone."""

        def failed(image):
            if image.get("status") in ("killed", "queued", None):
                return "Image {} is {}, not active.".format(image_id, image.get("status") or "gone")
            return None

        return self.client.wait_for(
            lambda: self.get(image_id) or {},
            lambda image: image.get("status") == "active",
            failed,
            timeout=timeout,
        )
