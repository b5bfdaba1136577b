"""Image API: Glance's tasks (``/v2/tasks``), answered as a Glance that runs no task.

Glance's tasks API (deprecated there in favour of image import) is admin-only;
its one task type, ``import``, makes an image from a URL. Stratus does not fetch
images from URLs: a well-formed ``import`` task is refused with 400 at create
time, as newer Glance refuses an ``import_from`` it will not use, so no task is
ever made, the list is always empty and every task id is unknown (404).

``GET /v2/images/{image_id}/tasks`` (image API 2.12) lists the tasks that worked on
one image. With no task ever made, that list is empty for every image the caller
can see, and 404 for an image it cannot see or that does not exist; clients that
wait for an image's tasks to finish (Tempest's image waiters, after a compute
snapshot) then find nothing pending.
"""

from __future__ import annotations

from typing import Any

from stratus.common import policy
from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound

routes = Routes()

TASK_TYPES = ("import",)
INPUT_FIELDS = ("import_from", "import_from_format", "image_properties")


def _admin(req: Req, action: str) -> None:
    policy.enforce(req.ctx, action, "admin")


def check_task(body: Any) -> None:
    """400 naming the first field of a task request that is missing or not allowed."""
    if not isinstance(body, dict):
        raise BadRequest("A task is a JSON object with 'type' and 'input'.")
    extra = sorted(set(body) - {"type", "input"})
    if extra:
        raise BadRequest(f"Attribute {extra[0]!r} cannot be set on a task; "
                         "only 'type' and 'input' can.")
    if body.get("type") not in TASK_TYPES:
        raise BadRequest(f"Task 'type' must be one of {', '.join(TASK_TYPES)}, "
                         f"not {body.get('type')!r}.")
    given = body.get("input")
    if not isinstance(given, dict):
        raise BadRequest("Task 'input' must be an object with "
                         f"{', '.join(INPUT_FIELDS)}.")
    for key in INPUT_FIELDS:
        if key not in given:
            raise BadRequest(f"Task input is missing {key!r}.")
    if not isinstance(given["import_from"], str) or not given["import_from"]:
        raise BadRequest("Task input 'import_from' must be a URL.")
    if not isinstance(given["image_properties"], dict):
        raise BadRequest("Task input 'image_properties' must be an object.")


@routes.add("POST", "/v2/tasks")
def create_task(req: Req, svc: Any) -> None:
    _admin(req, "add_task")
    check_task(req.body)
    raise BadRequest(
        f"Import from {req.body['input']['import_from']!r} refused: this cloud does not "
        "fetch images from URLs. Create the image (POST /v2/images) and upload its data "
        "(PUT /v2/images/{image_id}/file)."
    )


@routes.add("GET", "/v2/tasks", body=False)
def list_tasks(req: Req, svc: Any) -> dict[str, Any]:
    _admin(req, "get_tasks")
    return {"tasks": [], "first": "/v2/tasks", "schema": "/v2/schemas/tasks"}


@routes.add("GET", "/v2/images/{image_id}/tasks", body=False)
def list_image_tasks(req: Req, svc: Any) -> dict[str, Any]:
    svc.show(req.ctx, req.params["image_id"])  # 404 unless the caller can see the image
    return {"tasks": []}


@routes.add("GET", "/v2/tasks/{task_id}", body=False)
def show_task(req: Req, svc: Any) -> None:
    _admin(req, "get_task")
    raise NotFound(f"Task with identifier {req.params['task_id']} not found.")
