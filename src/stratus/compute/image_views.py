"""Nova's image proxy shapes: an image API image as ``/v2.1/images`` shows it (the brief
form of a listing, the full form of a show or detail listing), with its links."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req
from stratus.common.listing import href
from stratus.compute import views
from stratus.compute.images_proxy import PROGRESS, STATUS, nova_time, properties

TRUE_WORDS = ("true", "1", "yes", "on", "y", "t")


def links(req: Req, image_id: str, image_url: str) -> list[dict[str, str]]:
    """self and bookmark under the compute API, and the image API's own (alternate)."""
    out: list[dict[str, str]] = views.link(req, f"images/{image_id}")
    if image_url:
        out.append({"rel": "alternate", "type": "application/vnd.openstack.image",
                    "href": f"{image_url}/images/{image_id}"})
    return out


def brief(req: Req, image: dict[str, Any], image_url: str) -> dict[str, Any]:
    return {"id": image["id"], "name": image.get("name"),
            "links": links(req, str(image["id"]), image_url)}


def image(req: Req, img: dict[str, Any], image_url: str) -> dict[str, Any]:
    """The full view: sizes, status and progress mapped, custom properties as
    ``metadata``, ``server`` for a snapshot of a server."""
    meta = properties(img)
    status = str(img.get("status") or "")
    out: dict[str, Any] = {
        "id": img["id"],
        "name": img.get("name"),
        "minRam": int(img.get("min_ram") or 0),
        "minDisk": int(img.get("min_disk") or 0),
        "metadata": meta,
        "created": nova_time(img.get("created_at")),
        "updated": nova_time(img.get("updated_at")),
        "status": STATUS.get(status, "UNKNOWN"),
        "progress": PROGRESS.get(status, 0),
        "OS-EXT-IMG-SIZE:size": img.get("size"),
        "links": links(req, str(img["id"]), image_url),
    }
    server = meta.get("instance_uuid")
    if isinstance(server, str) and server:
        out["server"] = {"id": server, "links": views.link(req, f"servers/{server}")}
    auto = meta.get("auto_disk_config")
    if auto is not None:
        out["OS-DCF:diskConfig"] = "AUTO" if str(auto).lower() in TRUE_WORDS else "MANUAL"
    return out


def listing(req: Req, images: list[dict[str, Any]], full: bool, detail: bool,
            image_url: str) -> dict[str, Any]:
    """``images`` (and ``images_links`` with the next page when this one is full)."""
    shown = [image(req, i, image_url) if detail else brief(req, i, image_url)
             for i in images]
    body: dict[str, Any] = {"images": shown}
    if full and images:
        path = "images/detail" if detail else "images"
        body["images_links"] = [{"rel": "next", "href": href(
            f"{views.root(req)}/v2.1/{path}", req.query, ("marker",),
            [("marker", str(images[-1]["id"]))])}]
    return body
