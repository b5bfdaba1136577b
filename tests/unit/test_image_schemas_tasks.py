"""The image API's schema documents and its tasks answers (a Glance that runs no task)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from image_api import ImageApi, image_client, make_service
from stratus.common.errors import BadRequest
from stratus.image import schemas
from stratus.image.api.tasks import check_task

pytestmark = pytest.mark.unit

# Each schema path and the ``name`` Glance (and Tempest's checks) give its document.
NAMES = {
    "image": "image", "images": "images", "member": "member", "members": "members",
    "task": "task", "tasks": "tasks",
    "metadefs/namespace": "namespace", "metadefs/namespaces": "namespaces",
    "metadefs/object": "object", "metadefs/objects": "objects",
    "metadefs/property": "property", "metadefs/properties": "properties",
    "metadefs/tag": "tag", "metadefs/tags": "tags",
    "metadefs/resource_type": "resource_type_association",
    "metadefs/resource_types": "resource_type_associations",
}
TASK: dict[str, Any] = {"type": "import", "input": {"import_from": "http://example.invalid/x.qcow2",
                                    "import_from_format": "qcow2",
                                    "image_properties": {"name": "x"}}}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ImageApi]:
    service = make_service(tmp_path)
    with image_client(service) as client:
        yield client
    service.db.dispose()


def test_every_schema_is_served_under_its_glance_name(api: ImageApi) -> None:
    assert set(NAMES) == set(schemas.SCHEMAS)
    for path, name in NAMES.items():
        resp = api.call("GET", f"/v2/schemas/{path}", as_="alice")
        assert resp.status_code == 200, (path, resp.text)
        assert resp.json()["name"] == name and resp.json()["properties"]


def test_list_schemas_nest_their_entity_schema() -> None:
    assert schemas.SCHEMAS["members"]["properties"]["members"]["items"]["name"] == "member"
    assert schemas.SCHEMAS["images"]["properties"]["images"]["items"]["name"] == "image"
    assert schemas.schema("image") is not schemas.SCHEMAS["image"]  # a copy, never shared


def test_an_unknown_schema_is_a_404_listing_the_known_ones(api: ImageApi) -> None:
    resp = api.call("GET", "/v2/schemas/imagez")
    assert resp.status_code == 404 and "metadefs/tag" in resp.json()["message"]
    assert api.call("GET", "/v2/schemas/metadefs/nope").status_code == 404
    assert api.call("GET", "/v2/schemas/image", as_="nobody").status_code == 401


@pytest.mark.parametrize(("body", "field"), [
    ([], "JSON object"),
    ({**TASK, "status": "success"}, "'status'"),
    ({**TASK, "type": "export"}, "'type'"),
    ({"type": "import"}, "'input'"),
    ({"type": "import", "input": {"import_from": "u", "image_properties": {}}},
     "import_from_format"),
    ({"type": "import", "input": {**TASK["input"], "import_from": 3}}, "import_from"),
    ({"type": "import", "input": {**TASK["input"], "image_properties": []}},
     "image_properties"),
])
def test_check_task_names_the_bad_field(body: Any, field: str) -> None:
    with pytest.raises(BadRequest, match=field):
        check_task(body)


def test_tasks_are_admin_only_and_none_is_ever_made(api: ImageApi) -> None:
    assert api.call("GET", "/v2/tasks", as_="alice").status_code == 403
    assert api.call("POST", "/v2/tasks", as_="alice", json=TASK).status_code == 403
    refused = api.call("POST", "/v2/tasks", json=TASK)
    assert refused.status_code == 400 and "does not fetch images" in refused.json()["message"]
    assert api.call("POST", "/v2/tasks", json={"type": "x"}).status_code == 400
    listed = api.call("GET", "/v2/tasks")
    assert listed.status_code == 200
    assert listed.json() == {"tasks": [], "first": "/v2/tasks", "schema": "/v2/schemas/tasks"}
    assert api.call("GET", "/v2/tasks/1b2c").status_code == 404
    assert api.call("GET", "/v2/images").status_code == 200  # the image routes still match


def test_import_info_says_no_import_method_in_glances_shape(api: ImageApi) -> None:
    resp = api.call("GET", "/v2/info/import", as_="alice")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"import-methods": {"description": "Import methods available.",
                                              "type": "array", "value": []}}
    assert api.call("GET", "/v2/info/import", as_="nobody").status_code == 401


def test_an_images_tasks_are_listed_empty_for_whoever_sees_it(api: ImageApi) -> None:
    """``GET /v2/images/{id}/tasks`` (2.12): Glance's ``{"tasks": [...]}``, empty since no
    task is ever made; 404 for an image the caller cannot see or that does not exist."""
    img = api.create("alice", name="snap", visibility="private")
    for who in ("alice", "admin"):
        resp = api.call("GET", f"/v2/images/{img['id']}/tasks", as_=who)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"tasks": []}
    hidden = api.call("GET", f"/v2/images/{img['id']}/tasks", as_="bob")
    assert hidden.status_code == 404 and img["id"] in hidden.json()["message"]
    unknown = "/v2/images/00000000-0000-4000-8000-000000000000/tasks"
    assert api.call("GET", unknown).status_code == 404
    assert api.call("GET", f"/v2/images/{img['id']}/tasks", as_="nobody").status_code == 401
