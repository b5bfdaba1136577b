"""Version discovery: ``GET /`` (both versions), ``GET /v2.1`` (the microversion range)
and ``GET /v2`` (the legacy v2.0 API, answered by the same routes as Nova does).

Every version's self link is under the API's root (the configured public URL without its
``/v2.1``), so each one resolves to one of these routes.
"""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.compute import views
from stratus.compute.core import ComputeCore

routes = Routes()
UPDATED = "2013-07-23T11:33:21Z"
MEDIA = "application/vnd.openstack.compute+json;version="


def version_doc(req: Req, v21: bool = True) -> dict[str, Any]:
    """One version as ``GET /`` lists it."""
    base = views.root(req)
    if v21:
        return {"id": "v2.1", "status": "CURRENT", "version": views.version_text(
            views.MAX_VERSION), "min_version": views.version_text(views.MIN_VERSION),
            "updated": UPDATED, "links": [{"rel": "self", "href": f"{base}/v2.1/"}]}
    return {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
            "updated": "2011-01-21T11:33:21Z", "links": [{"rel": "self", "href": f"{base}/v2/"}]}


def version_detail(req: Req, v21: bool = True) -> dict[str, Any]:
    """One version as its own URL shows it (with its media type and a describedby link)."""
    doc = version_doc(req, v21)
    doc["links"].append({"rel": "describedby", "type": "text/html",
                         "href": "https://docs.openstack.org/"})
    doc["media-types"] = [{"base": "application/json",
                           "type": MEDIA + ("2.1" if v21 else "2")}]
    return doc


@routes.add("GET", "/")
def list_versions(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"versions": [version_doc(req, False), version_doc(req)]}


@routes.add("GET", "/v2.1")
def show_version(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"version": version_detail(req)}


@routes.add("GET", "/v2.1/")
def show_version_slash(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"version": version_detail(req)}


@routes.add("GET", "/v2")
def show_v2(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"version": version_detail(req, False)}


@routes.add("GET", "/v2/")
def show_v2_slash(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"version": version_detail(req, False)}
