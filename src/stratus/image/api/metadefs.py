"""Image API: metadata definitions (``/v2/metadefs``): namespaces, and the objects,
properties, tags and resource type associations inside them (rules in
``stratus.image.metadefs``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.image import metadef_views as mv
from stratus.image import metadefs
from stratus.image.core import ImageService

routes = Routes()
NS = "/v2/metadefs/namespaces/{namespace}"


def _created(body: Any) -> Response:
    return JSONResponse(body, status_code=201)


# ---- namespaces ----------------------------------------------------------------------------


@routes.add("GET", "/v2/metadefs/namespaces", body=False)
def list_namespaces(req: Req, svc: ImageService) -> dict[str, Any]:
    return metadefs.list_namespaces(svc, req.ctx, req.query)


@routes.add("POST", "/v2/metadefs/namespaces")
def create_namespace(req: Req, svc: ImageService) -> Response:
    return _created(metadefs.create_namespace(svc, req.ctx, req.body))


@routes.add("GET", NS, body=False)
def show_namespace(req: Req, svc: ImageService) -> dict[str, Any]:
    return metadefs.show_namespace(svc, req.ctx, req.params["namespace"])


@routes.add("PUT", NS)
def update_namespace(req: Req, svc: ImageService) -> dict[str, Any]:
    return metadefs.update_namespace(svc, req.ctx, req.params["namespace"], req.body)


@routes.add("DELETE", NS)
def delete_namespace(req: Req, svc: ImageService) -> None:
    metadefs.delete_namespace(svc, req.ctx, req.params["namespace"])


# ---- objects -------------------------------------------------------------------------------


@routes.add("GET", NS + "/objects", body=False)
def list_objects(req: Req, svc: ImageService) -> dict[str, Any]:
    items = metadefs.list_items(svc, req.ctx, req.params["namespace"], "object")
    return {"objects": items, "schema": "/v2/schemas/metadefs/objects"}


@routes.add("POST", NS + "/objects")
def create_object(req: Req, svc: ImageService) -> Response:
    name, body = mv.object_request(req.body)
    return _created(metadefs.add_item(svc, req.ctx, req.params["namespace"], "object",
                                      name, body))


@routes.add("DELETE", NS + "/objects")
def delete_objects(req: Req, svc: ImageService) -> None:
    metadefs.delete_items(svc, req.ctx, req.params["namespace"], "object")


@routes.add("GET", NS + "/objects/{name}", body=False)
def show_object(req: Req, svc: ImageService) -> dict[str, Any]:
    p = req.params
    return metadefs.show_item(svc, req.ctx, p["namespace"], "object", p["name"])


@routes.add("PUT", NS + "/objects/{name}")
def update_object(req: Req, svc: ImageService) -> dict[str, Any]:
    p = req.params
    name, body = mv.object_request(req.body)
    return metadefs.replace_item(svc, req.ctx, p["namespace"], "object", p["name"], name, body)


@routes.add("DELETE", NS + "/objects/{name}")
def delete_object(req: Req, svc: ImageService) -> None:
    metadefs.delete_item(svc, req.ctx, req.params["namespace"], "object", req.params["name"])


# ---- properties ----------------------------------------------------------------------------


@routes.add("GET", NS + "/properties", body=False)
def list_properties(req: Req, svc: ImageService) -> dict[str, Any]:
    items = metadefs.list_items(svc, req.ctx, req.params["namespace"], "property")
    props = {item.pop("name"): item for item in items}
    return {"properties": props, "schema": "/v2/schemas/metadefs/properties"}


@routes.add("POST", NS + "/properties")
def create_property(req: Req, svc: ImageService) -> Response:
    name, body = mv.property_request(req.body)
    return _created(metadefs.add_item(svc, req.ctx, req.params["namespace"], "property",
                                      name, body))


@routes.add("DELETE", NS + "/properties")
def delete_properties(req: Req, svc: ImageService) -> None:
    metadefs.delete_items(svc, req.ctx, req.params["namespace"], "property")


@routes.add("GET", NS + "/properties/{name}", body=False)
def show_property(req: Req, svc: ImageService) -> dict[str, Any]:
    p = req.params
    return metadefs.show_item(svc, req.ctx, p["namespace"], "property", p["name"])


@routes.add("PUT", NS + "/properties/{name}")
def update_property(req: Req, svc: ImageService) -> dict[str, Any]:
    p = req.params
    name, body = mv.property_request(req.body, name=p["name"])
    return metadefs.replace_item(svc, req.ctx, p["namespace"], "property", p["name"], name,
                                 body)


@routes.add("DELETE", NS + "/properties/{name}")
def delete_property(req: Req, svc: ImageService) -> None:
    metadefs.delete_item(svc, req.ctx, req.params["namespace"], "property",
                         req.params["name"])


# ---- tags ----------------------------------------------------------------------------------


@routes.add("GET", NS + "/tags", body=False)
def list_tags(req: Req, svc: ImageService) -> dict[str, Any]:
    return {"tags": metadefs.list_items(svc, req.ctx, req.params["namespace"], "tag")}


@routes.add("POST", NS + "/tags")
def create_tags(req: Req, svc: ImageService) -> Response:
    """Create several tags; they replace the current ones unless X-Openstack-Append: true."""
    names = mv.tags_request(req.body)
    append = req.header("x-openstack-append").strip().lower() == "true"
    tags = metadefs.set_tags(svc, req.ctx, req.params["namespace"], names, append)
    return _created({"tags": tags})


@routes.add("DELETE", NS + "/tags")
def delete_tags(req: Req, svc: ImageService) -> None:
    metadefs.delete_items(svc, req.ctx, req.params["namespace"], "tag")


@routes.add("POST", NS + "/tags/{name}", body=False)
def create_tag(req: Req, svc: ImageService) -> Response:
    p = req.params
    name = mv.name_value(p["name"], "name", 255)
    return _created(metadefs.add_item(svc, req.ctx, p["namespace"], "tag", name, {}))


@routes.add("GET", NS + "/tags/{name}", body=False)
def show_tag(req: Req, svc: ImageService) -> dict[str, Any]:
    p = req.params
    return metadefs.show_item(svc, req.ctx, p["namespace"], "tag", p["name"])


@routes.add("PUT", NS + "/tags/{name}")
def update_tag(req: Req, svc: ImageService) -> dict[str, Any]:
    p = req.params
    new = mv.tag_rename(req.body)
    return metadefs.replace_item(svc, req.ctx, p["namespace"], "tag", p["name"], new, {})


@routes.add("DELETE", NS + "/tags/{name}")
def delete_tag(req: Req, svc: ImageService) -> None:
    metadefs.delete_item(svc, req.ctx, req.params["namespace"], "tag", req.params["name"])


# ---- resource types ------------------------------------------------------------------------


@routes.add("GET", "/v2/metadefs/resource_types", body=False)
def list_resource_types(req: Req, svc: ImageService) -> dict[str, Any]:
    return metadefs.resource_types(svc, req.ctx)


@routes.add("GET", NS + "/resource_types", body=False)
def list_associations(req: Req, svc: ImageService) -> dict[str, Any]:
    items = metadefs.list_items(svc, req.ctx, req.params["namespace"], "resource_type")
    return {"resource_type_associations": items}


@routes.add("POST", NS + "/resource_types")
def create_association(req: Req, svc: ImageService) -> Response:
    name, body = mv.association_request(req.body)
    return _created(metadefs.add_item(svc, req.ctx, req.params["namespace"], "resource_type",
                                      name, body))


@routes.add("DELETE", NS + "/resource_types/{name}")
def delete_association(req: Req, svc: ImageService) -> None:
    metadefs.delete_item(svc, req.ctx, req.params["namespace"], "resource_type",
                         req.params["name"])
