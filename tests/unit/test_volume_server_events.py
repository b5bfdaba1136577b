"""Cinder's volume-extended event: an extend of an attached volume, once the storage agent
reports the new size, owes the compute API an event per server (a row written in the same
transaction), sent by ``ServerEvents.flush`` and removed when answered; kept while the
compute API cannot be reached (a kill -9 between commit and send loses nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_volume_api import SERVER, attach, available

from stratus.common.clients import ServiceError
from stratus.volume.core import Settings
from stratus.volume.server_events import HttpComputeEvents
from volume_api import VolumeApi, in_process

pytestmark = pytest.mark.unit


class FakeCompute:
    def __init__(self) -> None:
        self.sent: list[list[dict[str, Any]]] = []
        self.error: ServiceError | None = None

    def send(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.error is not None:
            raise self.error
        self.sent.append(events)
        return [{**e, "status": "completed", "code": 200} for e in events]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[VolumeApi]:
    with in_process(tmp_path, Settings(export_timeout=1.0)) as client:
        client.register()
        yield client


def extend_in_use(api: VolumeApi, size: int) -> str:
    vol = available(api)
    attach(api, vol["id"])
    assert api.action(vol["id"], {"os-extend": {"new_size": size}}, version="3.42"
                      ).status_code == 202
    assert api.show(vol["id"])["status"] == "extending"
    api.converge()
    assert api.show(vol["id"])["status"] == "in-use"
    return str(vol["id"])


def test_an_in_use_extend_sends_volume_extended_once(api: VolumeApi) -> None:
    compute = FakeCompute()
    api.core.server_events.compute = compute
    assert api.core.server_events.woken.is_set() is False
    vid = extend_in_use(api, 2)
    assert api.core.server_events.woken.is_set()  # the sender thread is woken at once
    assert api.core.server_events.flush() == 1
    assert compute.sent == [[{"name": "volume-extended", "server_uuid": SERVER, "tag": vid}]]
    assert api.core.server_events.flush() == 0 and api.core.server_events.pending() == []
    # an extend while detached owes nothing
    vol = available(api)
    api.action(vol["id"], {"os-extend": {"new_size": 2}})
    api.converge()
    assert api.core.server_events.pending() == []


def test_events_wait_for_the_compute_api_and_final_refusals_drop_them(api: VolumeApi
                                                                      ) -> None:
    api.core.server_events.compute = None  # not configured: kept, nothing fails
    extend_in_use(api, 2)
    assert api.core.server_events.flush() == 0
    assert len(api.core.server_events.pending()) == 1
    compute = FakeCompute()
    api.core.server_events.compute = compute
    compute.error = ServiceError("unreachable", temporary=True)
    assert api.core.server_events.flush() == 0
    assert len(api.core.server_events.pending()) == 1
    compute.error = ServiceError("No instances found for any event", status=404)
    assert api.core.server_events.flush() == 1
    assert api.core.server_events.pending() == []


def test_the_http_client_sends_nova_s_shape_at_2_51() -> None:
    import httpx

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(207, json={"events": [{"name": "volume-extended",
                                                     "server_uuid": "s", "tag": "v",
                                                     "status": "failed", "code": 404}]})

    events = HttpComputeEvents("http://compute.test:8774", None)
    events.client._http = httpx.Client(transport=httpx.MockTransport(handler))
    got = events.send([{"name": "volume-extended", "server_uuid": "s", "tag": "v"}])
    assert got[0]["code"] == 404
    req = seen[0]
    assert req.url.path == "/v2.1/os-server-external-events"
    assert req.headers["OpenStack-API-Version"] == "compute 2.51"
    assert req.method == "POST"
