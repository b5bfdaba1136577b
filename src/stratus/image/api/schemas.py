"""Image API: the JSON Schema documents (``/v2/schemas/{name}``, ``.../metadefs/{name}``)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import NotFound
from stratus.image import schemas

routes = Routes()


def _answer(req: Req, name: str) -> dict[str, Any]:
    req.ctx  # noqa: B018 - Glance serves its schemas to authenticated callers only
    found = schemas.schema(name)
    if found is None:
        known = ", ".join(sorted(schemas.SCHEMAS))
        raise NotFound(f"There is no schema {name!r}; the schemas are: {known}.")
    return found


@routes.add("GET", "/v2/schemas/metadefs/{name}", body=False)
def show_metadef_schema(req: Req, svc: Any) -> dict[str, Any]:
    return _answer(req, f"metadefs/{req.params['name']}")


@routes.add("GET", "/v2/schemas/{name}", body=False)
def show_schema(req: Req, svc: Any) -> dict[str, Any]:
    return _answer(req, req.params["name"])
