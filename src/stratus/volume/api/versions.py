"""Version discovery: ``GET /`` (300, every version) and ``GET /v3/`` (no token needed)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from stratus.common.app import Req, Routes
from stratus.volume import views
from stratus.volume.core import VolumeCore

routes = Routes()


@routes.add("GET", "/")
def versions(req: Req, svc: VolumeCore) -> JSONResponse:
    return JSONResponse({"versions": [views.version_doc(req.base_url)]}, status_code=300)


@routes.add("GET", "/v3")
@routes.add("GET", "/v3/")
def version(req: Req, svc: VolumeCore) -> dict[str, Any]:
    return {"versions": [views.version_doc(req.base_url)]}
