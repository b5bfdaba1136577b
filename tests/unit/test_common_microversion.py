"""stratus.common.microversion: the negotiation compute and volume share (absent, latest,
in range, malformed → 400, out of range → 406), the service names and legacy header it
reads, the headers it echoes, and the paths it negotiates and answers errors on."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from stratus.common.microversion import MicroversionMiddleware, negotiate, version_text

pytestmark = pytest.mark.unit


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"microversion": list(request.scope.get("state", {})
                                              .get("microversion", ()))})


def client(**options: Any) -> TestClient:
    app = Starlette(routes=[Route("/v2/x", echo), Route("/v3/x", echo), Route("/", echo)])
    app.add_middleware(MicroversionMiddleware, **options)
    return TestClient(app)


COMPUTE = {"service": "compute", "legacy_header": "X-OpenStack-Nova-API-Version",
           "min_version": (2, 1), "max_version": (2, 47), "error_prefix": "/v2"}
VOLUME = {"service": "volume", "aliases": ("volume", "block-storage"),
          "min_version": (3, 0), "max_version": (3, 60), "path_prefix": "/v3/"}


def test_negotiate() -> None:
    assert negotiate("", (2, 1), (2, 47)) == ((2, 1), None)
    assert negotiate("LaTeSt", (2, 1), (2, 47)) == ((2, 47), None)
    assert negotiate("2.10", (2, 1), (2, 47)) == ((2, 10), None)
    assert negotiate("2.x", (2, 1), (2, 47)) == ((2, 1), (
        400, "API Version String 2.x is of invalid format. Must be of format "
             "MajorNum.MinorNum."))
    assert negotiate("2.48", (2, 1), (2, 47)) == ((2, 48), (
        406, "Version 2.48 is not supported by the API. Minimum is 2.1 and maximum is 2.47."))
    assert negotiate("02.1", (2, 1), (2, 47))[1] is not None  # no leading zero in the major
    assert version_text((3, 60)) == "3.60"


def test_compute_headers_and_legacy() -> None:
    c = client(**COMPUTE)
    r = c.get("/v2/x", headers={"OpenStack-API-Version": "volume 3.5, compute 2.20"})
    assert r.json() == {"microversion": [2, 20]}
    assert r.headers["openstack-api-version"] == "compute 2.20"
    assert r.headers["x-openstack-nova-api-version"] == "2.20"
    assert r.headers["vary"] == "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
    r = c.get("/v2/x", headers={"X-OpenStack-Nova-API-Version": " 2.3 "})
    assert r.json() == {"microversion": [2, 3]}
    r = c.get("/v2/x", headers={"OpenStack-API-Version": "compute 2.5",
                                "X-OpenStack-Nova-API-Version": "2.3"})
    assert r.json() == {"microversion": [2, 5]}
    assert c.get("/v2/x").json() == {"microversion": [2, 1]}


def test_compute_errors_only_under_error_prefix() -> None:
    c = client(**COMPUTE)
    r = c.get("/v2/x", headers={"OpenStack-API-Version": "compute 2.99"})
    assert r.status_code == 406
    assert "Minimum is 2.1 and maximum is 2.47." in r.text
    assert r.headers["openstack-api-version"] == "compute 2.99"
    r = c.get("/v2/x", headers={"X-OpenStack-Nova-API-Version": "two"})
    assert r.status_code == 400
    assert "API Version String two is of invalid format." in r.text
    assert r.headers["openstack-api-version"] == "compute 2.1"
    r = c.get("/", headers={"OpenStack-API-Version": "compute 2.99"})
    assert r.status_code == 200
    assert r.headers["openstack-api-version"] == "compute 2.99"


def test_volume_aliases_and_path_prefix() -> None:
    c = client(**VOLUME)
    r = c.get("/v3/x", headers={"OpenStack-API-Version": "block-storage 3.27"})
    assert r.json() == {"microversion": [3, 27]}
    assert r.headers["openstack-api-version"] == "volume 3.27"
    assert r.headers["vary"] == "OpenStack-API-Version"
    assert "x-openstack-nova-api-version" not in r.headers
    r = c.get("/v3/x", headers={"X-OpenStack-Nova-API-Version": "3.5"})  # no legacy header
    assert r.json() == {"microversion": [3, 0]}
    r = c.get("/v3/x", headers={"OpenStack-API-Version": "compute 3.5"})  # another service
    assert r.json() == {"microversion": [3, 0]}
    r = c.get("/v3/x", headers={"OpenStack-API-Version": "volume 3.61"})
    assert r.status_code == 406
    [fault] = r.json().values()  # Nova's error shape: {"<key>": {"code", "message"}}
    assert fault == {"code": 406, "message":
        "Version 3.61 is not supported by the API. Minimum is 3.0 and maximum is 3.60."}
    r = c.get("/", headers={"OpenStack-API-Version": "volume bad"})  # not negotiated
    assert r.status_code == 200
    assert r.json() == {"microversion": []}
    assert "openstack-api-version" not in r.headers
