"""Image API version discovery: ``/`` (300 Multiple Choices) and ``/versions``."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.image import views

routes = Routes()


@routes.add("GET", "/", body=False)
def root(req: Req, svc: Any) -> Response:
    return JSONResponse(views.versions(req.base_url), status_code=300)


@routes.add("GET", "/versions", body=False)
def versions(req: Req, svc: Any) -> dict[str, Any]:
    return views.versions(req.base_url)
