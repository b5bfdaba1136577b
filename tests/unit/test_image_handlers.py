"""Image API handlers called directly with a fake service: no app, no database."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from stratus.common.app import Req
from stratus.common.auth import AuthContext
from stratus.common.errors import UnsupportedMediaType
from stratus.image.api import images, members

pytestmark = pytest.mark.unit

ALICE = AuthContext(user_id="u1", project_id="p1", roles=frozenset({"member"}))


def make_req(path_params: dict[str, str], body: Any = None,
             headers: dict[str, str] | None = None) -> Req:
    scope = {
        "type": "http", "method": "GET", "path": "/", "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        "path_params": path_params,
    }
    return Req(Request(scope), body, _ctx=ALICE)


class FakeImages:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def list_members(self, ctx: AuthContext, image_id: str) -> list[dict[str, Any]]:
        self.calls.append(("list_members", ctx.user_id, image_id))
        return [{"member_id": "p2", "image_id": image_id, "status": "pending"}]

    def update(self, ctx: AuthContext, image_id: str, body: Any,
               media_type: str = "") -> dict[str, Any]:
        self.calls.append(("update", image_id, body, media_type))
        return {"id": image_id}


def test_list_members_wraps_what_the_service_returns() -> None:
    fake = FakeImages()
    out = members.list_members(make_req({"image_id": "img-1"}), fake)
    assert out == {
        "members": [{"member_id": "p2", "image_id": "img-1", "status": "pending"}],
        "schema": "/v2/schemas/members",
    }
    assert fake.calls == [("list_members", "u1", "img-1")]


def test_update_checks_the_patch_media_type_before_calling_the_service() -> None:
    fake = FakeImages()
    req = make_req({"image_id": "img-1"}, [], {"content-type": "application/json"})
    with pytest.raises(UnsupportedMediaType, match=r"openstack-images-v2\.1-json-patch"):
        images.update_image(req, fake)
    assert fake.calls == []
    ok = make_req({"image_id": "img-1"}, [{"op": "add"}],
                  {"content-type": "application/openstack-images-v2.1-json-patch"})
    assert images.update_image(ok, fake) == {"id": "img-1"}
    assert fake.calls == [("update", "img-1", [{"op": "add"}],
                           "application/openstack-images-v2.1-json-patch")]


def test_update_accepts_the_older_2_0_patch_media_type_and_says_which() -> None:
    fake = FakeImages()
    ok = make_req({"image_id": "img-1"}, [{"replace": "/name", "value": "x"}],
                  {"content-type": "application/openstack-images-v2.0-json-patch"})
    assert images.update_image(ok, fake) == {"id": "img-1"}
    assert fake.calls == [("update", "img-1", [{"replace": "/name", "value": "x"}],
                           "application/openstack-images-v2.0-json-patch")]
