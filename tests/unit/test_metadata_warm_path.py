"""stratus-metadata's warm path (issue 17, ``WarmPath``): a GET or HEAD whose three signed
headers were verified before and whose answer is kept with the cached instance is answered
without Starlette's layers, with exactly what the full path answers (body, headers,
request id, access-log line); anything else -- an unverified triple, an instance not in the
cache, a path not yet answered, a draining process, the health check, a POST -- goes the
full way."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from test_metadata_content import make_doc
from test_metadata_service import IP, NET, SECRET, FakeSource, headers

from stratus.common import longpoll
from stratus.metadata.app import MetadataService, Settings, WarmPath, build_app

pytestmark = pytest.mark.unit

PATH = "/openstack/latest/meta_data.json"
REQUEST_ID = "req-0123abcd-0123-4abc-8def-0123456789ab"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(clock: Clock) -> MetadataService:
    svc = MetadataService(FakeSource(), Settings(shared_secret=SECRET, cache_ttl=60,
                                                 negative_cache_ttl=60))
    svc.cache.clock = clock
    return svc


@pytest.fixture
def full_way() -> list[str]:
    """The paths of the requests that went past the warm path (to the Starlette app)."""
    return []


@pytest.fixture
def client(service: MetadataService, full_way: list[str]) -> Iterator[TestClient]:
    app = build_app(service)
    assert isinstance(app, WarmPath)
    inner = app.app

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            full_way.append(f'{scope["method"]} {scope["path"]}')
        await inner(scope, receive, send)

    app.app = counting
    with TestClient(app) as c:
        yield c


def _warm_up(client: TestClient, path: str = PATH) -> None:
    """The load (in a thread), then the first cached answer (kept): both the full way."""
    for _ in range(2):
        assert client.get(path, headers=headers()).status_code == 200


@pytest.mark.parametrize(("path", "full"), [
    (PATH, 2), ("/openstack/latest/", 2), ("/latest/meta-data/hostname", 2),
    ("/latest/user-data", 2),
    ("/", 1), ("/openstack", 1)])  # the version lists need no instance: warm once verified
def test_a_warm_answer_is_the_full_paths_answer(
        client: TestClient, full_way: list[str], path: str, full: int) -> None:
    first = client.get(path, headers=headers())
    kept = client.get(path, headers=headers())
    assert len(full_way) == full
    warm = client.get(path, headers=headers())
    assert len(full_way) == full  # answered by the warm path
    assert warm.status_code == kept.status_code == first.status_code == 200
    assert warm.content == kept.content == first.content
    skip = {"x-openstack-request-id"}
    assert [(k, v) for k, v in warm.headers.items() if k not in skip] == \
        [(k, v) for k, v in kept.headers.items() if k not in skip]
    assert int(warm.headers["content-length"]) == len(warm.content)
    rid = warm.headers["x-openstack-request-id"]
    assert rid.startswith("req-") and rid != kept.headers["x-openstack-request-id"]


def test_json_and_text_keep_their_content_types(client: TestClient, full_way: list[str]
                                                ) -> None:
    for path, kind in ((PATH, "application/json"),
                       ("/latest/meta-data/", "text/plain; charset=utf-8"),
                       ("/openstack/latest/user_data", "application/octet-stream")):
        _warm_up(client, path)
        before = len(full_way)
        assert client.get(path, headers=headers()).headers["content-type"] == kind
        assert len(full_way) == before


def test_the_request_id_is_the_callers_when_well_formed(
        client: TestClient, full_way: list[str]) -> None:
    _warm_up(client)
    echoed = client.get(PATH, headers={**headers(), "X-OpenStack-Request-ID": REQUEST_ID})
    assert echoed.headers["x-openstack-request-id"] == REQUEST_ID
    bad = client.get(PATH, headers={**headers(), "X-OpenStack-Request-ID": "req-nope\x7f"})
    assert bad.headers["x-openstack-request-id"] not in ("req-nope\x7f", REQUEST_ID)
    assert bad.headers["x-openstack-request-id"].startswith("req-")
    assert len(full_way) == 2


def test_head_is_warm_too_without_a_body(client: TestClient, full_way: list[str]) -> None:
    _warm_up(client)
    full = client.get(PATH, headers=headers())
    head = client.head(PATH, headers=headers())
    assert len(full_way) == 2
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == full.headers["content-length"]


def test_a_warm_answer_writes_the_access_log_line(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    _warm_up(client)
    with caplog.at_level(logging.INFO, logger="stratus.access"):
        resp = client.get(PATH, headers={**headers(), "X-OpenStack-Request-ID": REQUEST_ID})
    assert resp.status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "stratus.access"]
    assert len(lines) == 1
    assert f'"GET {PATH}" 200 ' in lines[0] and lines[0].endswith(REQUEST_ID)


def test_no_unverified_triple_is_answered_warm(
        client: TestClient, full_way: list[str]) -> None:
    _warm_up(client)
    cases = [headers(secret="other"),                       # a wrong signature
             {**headers(), "X-Forwarded-For": "192.168.10.12"},  # another address
             {**headers(), "X-Stratus-Network-ID": "net-b"},     # another network
             {"X-Forwarded-For": IP, "X-Stratus-Network-ID": NET}]  # no signature
    for sent in cases:
        before = len(full_way)
        assert client.get(PATH, headers=sent).status_code in (400, 403)
        assert len(full_way) == before + 1


def test_a_repeated_header_is_read_as_the_full_path_reads_it(
        client: TestClient, full_way: list[str]) -> None:
    _warm_up(client)
    sent = [*headers().items(), ("X-Forwarded-For", "192.168.10.12")]
    assert client.get(PATH, headers=sent).status_code == 200  # the first one counts
    assert len(full_way) == 2
    sent = [("X-Forwarded-For", "192.168.10.12"), *headers().items()]
    assert client.get(PATH, headers=sent).status_code == 403
    assert len(full_way) == 3


def test_only_answers_already_kept_for_a_fresh_instance(
        client: TestClient, service: MetadataService, full_way: list[str], clock: Clock
) -> None:
    _warm_up(client)
    assert client.get("/latest/meta-data/", headers=headers()).status_code == 200
    assert full_way[-1] == "GET /latest/meta-data/"  # a new path: rendered the full way
    source = service.source
    assert isinstance(source, FakeSource)
    doc = make_doc()
    doc["hostname"] = "renamed-host"
    source.docs[(NET, IP)] = doc
    clock.now += 61  # the entry expires: its answers go with it
    before = len(full_way)
    assert client.get(PATH, headers=headers()).json()["hostname"] == "renamed-host"
    assert len(full_way) == before + 1 and source.lookups == 2
    stranger = headers(ip="192.168.10.99")  # verified, but no such instance (negative entry)
    assert client.get(PATH, headers=stranger).status_code == 404
    assert client.get("/latest/", headers=stranger).status_code == 404
    before = len(full_way)
    assert client.get(PATH, headers=stranger).status_code == 404
    assert client.get("/latest/", headers=stranger).status_code == 404
    assert client.get("/", headers=stranger).status_code == 200  # needs no instance
    assert len(full_way) == before + 2


def test_draining_health_check_and_post_go_the_full_way(
        client: TestClient, full_way: list[str]) -> None:
    _warm_up(client)
    longpoll.drain()
    try:
        resp = client.get(PATH, headers=headers())
    finally:
        longpoll.undrain()
    assert resp.status_code == 200
    assert resp.headers[longpoll.DRAINING_HEADER.lower()] == "true"
    assert client.get("/healthcheck").text == "OK"
    assert client.post("/openstack/latest/password", headers=headers(),
                       content=b"pw").status_code == 200
    assert full_way[-3:] == [f"GET {PATH}", "GET /healthcheck",
                             "POST /openstack/latest/password"]
