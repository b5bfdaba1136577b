"""Version discovery: ``GET /`` and ``GET /v2.1`` (the microversion range)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.compute import views
from stratus.compute.core import ComputeCore

routes = Routes()
UPDATED = "2013-07-23T11:33:21Z"


def version_doc(req: Req, v21: bool = True) -> dict[str, Any]:
    base = req.base_url
    if v21:
        return {"id": "v2.1", "status": "CURRENT", "version": views.version_text(
            views.MAX_VERSION), "min_version": views.version_text(views.MIN_VERSION),
            "updated": UPDATED, "links": [{"rel": "self", "href": f"{base}/v2.1/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}
    return {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
            "updated": "2011-01-21T11:33:21Z", "links": [{"rel": "self", "href": f"{base}/v2/"}]}


@routes.add("GET", "/")
def list_versions(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"versions": [version_doc(req, False), version_doc(req)]}


@routes.add("GET", "/v2.1")
def show_version(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"version": version_doc(req)}


@routes.add("GET", "/v2.1/")
def show_version_slash(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"version": version_doc(req)}
