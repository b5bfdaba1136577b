"""Glance's discovery of the interoperable image import: ``GET /v2/info/import``.

Stratus takes image data only through ``PUT /v2/images/{id}/file`` (no staging, no
``/import`` call), so the list of import methods is empty; clients (Tempest's image format
tests among them) read it to learn that, and a 404 here would break them before they can.
"""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes

routes = Routes()

IMPORT_METHODS: list[str] = []


@routes.add("GET", "/v2/info/import", body=False)
def import_info(req: Req, svc: Any) -> dict[str, Any]:
    """The import methods this image service has (none), in Glance's shape; any
    authenticated user may ask."""
    _ = req.ctx  # a valid token, as for every /v2 path
    return {"import-methods": {"description": "Import methods available.",
                               "type": "array", "value": list(IMPORT_METHODS)}}
