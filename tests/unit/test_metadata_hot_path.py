"""stratus-metadata's hot path (issue 17): a signed header triple remembered as verified
never lets another triple through, answers kept with a cached instance are given again
without rendering and go with the entry, and both memories stay bounded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from test_metadata_content import make_doc
from test_metadata_service import IP, NET, SECRET, FakeSource, headers

from stratus.metadata import app as metadata_app
from stratus.metadata.app import MetadataService, Settings, build_app

pytestmark = pytest.mark.unit

PATH = "/openstack/latest/meta_data.json"


@pytest.fixture
def service() -> MetadataService:
    return MetadataService(FakeSource(), Settings(shared_secret=SECRET, cache_ttl=60,
                                                  negative_cache_ttl=60))


@pytest.fixture
def client(service: MetadataService) -> Iterator[TestClient]:
    with TestClient(build_app(service)) as c:
        yield c


def test_a_remembered_signature_lets_no_other_request_through(
        client: TestClient, service: MetadataService) -> None:
    assert client.get(PATH, headers=headers()).status_code == 200
    assert len(service._verified) == 1
    wrong = headers(secret="other")
    assert client.get(PATH, headers=wrong).status_code == 403
    moved = headers()
    moved["X-Forwarded-For"] = "192.168.10.12"  # another address with our signature
    assert client.get(PATH, headers=moved).status_code == 403
    assert client.get(PATH, headers={**headers(), "X-Stratus-Network-ID": "net-b"}
                      ).status_code == 403
    assert len(service._verified) == 1  # refused requests are never remembered
    assert client.get(PATH, headers=headers()).status_code == 200


def test_answers_are_kept_with_the_cached_instance_and_go_with_it(
        client: TestClient, service: MetadataService, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[str] = []
    real = service._render

    def counting(path: str, instance: Any) -> tuple[bytes, str]:
        rendered.append(path)
        return real(path, instance)

    monkeypatch.setattr(service, "_render", counting)
    first = client.get(PATH, headers=headers())
    assert client.get(PATH, headers=headers()).content == first.content
    assert rendered == [PATH, PATH]  # the load (in a thread), then the first cached answer
    assert client.get(PATH, headers=headers()).status_code == 200
    assert rendered == [PATH, PATH]  # given again without rendering
    source = service.source
    assert isinstance(source, FakeSource)
    doc = make_doc()
    doc["hostname"] = "renamed-host"
    source.docs[(NET, IP)] = doc
    service.cache.invalidate((NET, IP))
    after = client.get(PATH, headers=headers())
    assert after.json()["hostname"] == "renamed-host"


def test_missing_paths_and_unknown_instances_are_not_kept(
        client: TestClient, service: MetadataService) -> None:
    assert client.get("/openstack/latest/nothing", headers=headers()).status_code == 404
    inst = service.cache.peek((NET, IP))[1]
    assert inst is not None and "/openstack/latest/nothing" not in inst.answers
    stranger = headers(ip="192.168.10.99")
    assert client.get(PATH, headers=stranger).status_code == 404
    assert client.get("/", headers=stranger).status_code == 200  # needs no instance
    assert client.get(PATH, headers=stranger).status_code == 404


def test_both_memories_are_bounded(
        client: TestClient, service: MetadataService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata_app, "MAX_VERIFIED", 5)
    monkeypatch.setattr(metadata_app, "MAX_ANSWERS", 3)
    for n in range(12):
        client.get("/latest/meta-data/", headers=headers(ip=f"10.9.0.{n}"))
        assert len(service._verified) <= 5
    for path in ("/", "/openstack", "/openstack/latest", "/latest/meta-data/",
                 "/latest/meta-data/instance-id", PATH):
        assert client.get(path, headers=headers()).status_code == 200
    inst = service.cache.peek((NET, IP))[1]
    assert inst is not None and len(inst.answers) == 3
