"""Identity API version discovery: ``/`` (300 Multiple Choices) and ``/v3``."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.identity.core import Identity

V3_ID = "v3.14"
V3_UPDATED = "2020-04-07T00:00:00Z"

routes = Routes()


def version_doc(base: str) -> dict[str, Any]:
    """The v3 version document, with links under ``base``."""
    return {
        "id": V3_ID,
        "status": "stable",
        "updated": V3_UPDATED,
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


@routes.add("GET", "/")
def versions(req: Req, svc: Identity) -> Response:
    body = {"versions": {"values": [version_doc(req.base_url)]}}
    return JSONResponse(body, status_code=300)


@routes.add("GET", "/v3/")
@routes.add("GET", "/v3")
def v3(req: Req, svc: Identity) -> dict[str, Any]:
    return {"version": version_doc(req.base_url)}
