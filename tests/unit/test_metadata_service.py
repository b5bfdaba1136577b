"""stratus-metadata's HTTP layer with a fake instance source: signatures, paths, cache."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from test_metadata_content import make_doc

from stratus.agent.network.metadata_proxy import sign
from stratus.common.clients import ServiceError
from stratus.common.config import ConfigError
from stratus.metadata.app import MetadataService, Settings, build_app, expected_signature
from stratus.metadata.cache import TTLCache

pytestmark = pytest.mark.unit

SECRET = "s3cret"
NET = "net-a"
IP = "192.168.10.11"


class FakeSource:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {(NET, IP): make_doc()}
        self.lookups = 0
        self.fail: ServiceError | None = None
        self.passwords: dict[str, str] = {}
        self.delay = 0.0

    def lookup(self, network_id: str, fixed_ip: str) -> dict[str, Any] | None:
        self.lookups += 1
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise self.fail
        return self.docs.get((network_id, fixed_ip))

    def set_password(self, server_id: str, password: str) -> None:
        if server_id in self.passwords:
            raise ServiceError("already", status=409)
        self.passwords[server_id] = password
        for doc in self.docs.values():
            if doc["uuid"] == server_id:
                doc["password"] = password


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
def client(source: FakeSource) -> Iterator[TestClient]:
    service = MetadataService(source, Settings(shared_secret=SECRET, cache_ttl=60,
                                               negative_cache_ttl=60))
    with TestClient(build_app(service)) as c:
        yield c


def headers(ip: str = IP, net: str = NET, secret: str = SECRET) -> dict[str, str]:
    return {"X-Forwarded-For": ip, "X-Stratus-Network-ID": net,
            "X-Stratus-Signature": sign(secret, net, ip)}


def test_signature_matches_the_proxy() -> None:
    assert expected_signature(SECRET, NET, IP) == sign(SECRET, NET, IP)


def test_empty_secret_refused(source: FakeSource) -> None:
    with pytest.raises(ConfigError, match="shared_secret"):
        MetadataService(source, Settings(shared_secret=""))


@pytest.mark.parametrize("drop", ["X-Forwarded-For", "X-Stratus-Network-ID",
                                  "X-Stratus-Signature"])
def test_missing_header_is_400(client: TestClient, source: FakeSource, drop: str) -> None:
    hdrs = headers()
    del hdrs[drop]
    resp = client.get("/openstack/latest/meta_data.json", headers=hdrs)
    assert resp.status_code == 400
    assert drop in resp.json()["badRequest"]["message"]
    assert source.lookups == 0


def test_wrong_secret_is_403(client: TestClient, source: FakeSource) -> None:
    resp = client.get("/openstack/latest/meta_data.json", headers=headers(secret="other"))
    assert resp.status_code == 403
    assert "X-Stratus-Signature" in resp.json()["forbidden"]["message"]
    assert source.lookups == 0


def test_signature_for_another_ip_is_403(client: TestClient, source: FakeSource) -> None:
    hdrs = headers()
    hdrs["X-Forwarded-For"] = "192.168.10.12"  # someone else's address, our signature
    assert client.get("/openstack/latest/meta_data.json", headers=hdrs).status_code == 403
    hdrs = headers()
    hdrs["X-Stratus-Network-ID"] = "net-b"
    assert client.get("/latest/meta-data/", headers=hdrs).status_code == 403
    assert source.lookups == 0


def test_bad_ip_is_400(client: TestClient) -> None:
    resp = client.get("/latest/meta-data/", headers=headers(ip="not-an-ip"))
    assert resp.status_code == 400
    assert "not-an-ip" in resp.json()["badRequest"]["message"]


def test_version_listings(client: TestClient) -> None:
    root = client.get("/", headers=headers())
    assert root.status_code == 200 and root.headers["content-type"].startswith("text/plain")
    assert root.text.split("\n")[0] == "1.0" and root.text.split("\n")[-1] == "latest"
    assert "2009-04-04" in root.text.split("\n")
    os_versions = client.get("/openstack", headers=headers()).text.split("\n")
    assert os_versions[0] == "2012-08-10" and os_versions[-1] == "latest"
    assert client.get("/openstack/", headers=headers()).text.split("\n") == os_versions
    latest = client.get("/openstack/latest/", headers=headers()).text.split("\n")
    assert latest == ["meta_data.json", "network_data.json", "user_data", "vendor_data.json",
                      "vendor_data2.json", "password"]
    assert client.get("/openstack/latest", headers=headers()).text.split("\n") == latest
    old = client.get("/openstack/2012-08-10/", headers=headers()).text.split("\n")
    assert old == ["meta_data.json", "user_data"]


def test_openstack_files(client: TestClient) -> None:
    resp = client.get("/openstack/latest/meta_data.json", headers=headers())
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.json()["uuid"] == make_doc()["uuid"]
    nd = client.get("/openstack/2018-08-27/network_data.json", headers=headers()).json()
    assert nd["links"][0]["ethernet_mac_address"] == "fa:16:3e:00:00:01"
    assert client.get("/openstack/latest/user_data", headers=headers()).content == \
        b"#!/bin/sh\necho hi\n"
    assert client.get("/openstack/2012-08-10/network_data.json",
                      headers=headers()).status_code == 404
    missing = client.get("/openstack/1999-01-01/meta_data.json", headers=headers())
    assert missing.status_code == 404 and "1999-01-01" in missing.json()["itemNotFound"]["message"]


def test_ec2_tree(client: TestClient) -> None:
    assert client.get("/latest/", headers=headers()).text == "meta-data/\nuser-data"
    listing = client.get("/latest/meta-data/", headers=headers())
    assert listing.headers["content-type"].startswith("text/plain")
    assert "instance-id" in listing.text.split("\n")
    assert client.get("/2009-04-04/meta-data/instance-id", headers=headers()).text == \
        "i-3f0c1a2b"
    assert client.get("/latest/meta-data/public-keys/", headers=headers()).text == \
        "0=ops\n1=dev"
    assert client.get("/latest/meta-data/public-keys/0/openssh-key",
                      headers=headers()).text == "ssh-ed25519 AAAAops ops"
    assert client.get("/latest/meta-data/placement/availability-zone",
                      headers=headers()).text == "az1"
    assert client.get("/latest/user-data", headers=headers()).content == b"#!/bin/sh\necho hi\n"
    assert client.get("/latest/meta-data/nope", headers=headers()).status_code == 404
    assert client.get("/2001-01-01/meta-data/", headers=headers()).status_code == 404


def test_no_user_data_is_404(client: TestClient, source: FakeSource) -> None:
    source.docs[(NET, IP)]["user_data"] = None
    assert client.get("/openstack/latest/user_data", headers=headers()).status_code == 404
    assert client.get("/latest/user-data", headers=headers()).status_code == 404
    assert client.get("/latest/", headers=headers()).text == "meta-data/"
    assert "user_data" not in client.get("/openstack/latest/", headers=headers()).text


def test_unknown_instance_is_404_and_cached(client: TestClient, source: FakeSource) -> None:
    hdrs = headers(ip="192.168.10.99")
    resp = client.get("/openstack/latest/meta_data.json", headers=hdrs)
    assert resp.status_code == 404
    assert "192.168.10.99" in resp.json()["itemNotFound"]["message"]
    assert client.get("/latest/meta-data/", headers=hdrs).status_code == 404
    assert source.lookups == 1


def test_each_instance_sees_its_own_data(client: TestClient, source: FakeSource) -> None:
    other = make_doc(uuid="77777777-aaaa-4bbb-8ccc-444455556666", hostname="db1")
    source.docs[("net-b", IP)] = other  # same IP on another network
    mine = client.get("/openstack/latest/meta_data.json", headers=headers()).json()
    theirs = client.get("/openstack/latest/meta_data.json", headers=headers(net="net-b")).json()
    assert mine["hostname"] == "web1" and theirs["hostname"] == "db1"


def test_compute_down_is_503_and_not_cached(client: TestClient, source: FakeSource) -> None:
    source.fail = ServiceError("compute unreachable", temporary=True)
    resp = client.get("/openstack/latest/meta_data.json", headers=headers())
    assert resp.status_code == 503
    assert "compute" in resp.json()["serviceUnavailable"]["message"]
    source.fail = None
    assert client.get("/openstack/latest/meta_data.json", headers=headers()).status_code == 200


def test_head_works(client: TestClient) -> None:
    resp = client.head("/openstack/latest/meta_data.json", headers=headers())
    assert resp.status_code == 200 and resp.content == b""
    assert int(resp.headers["content-length"]) > 0
    assert client.head("/latest/meta-data/nope", headers=headers()).status_code == 404


def test_password_post_once(client: TestClient, source: FakeSource) -> None:
    assert client.get("/openstack/latest/password", headers=headers()).text == ""
    resp = client.post("/openstack/latest/password", headers=headers(), content=b"blob==")
    assert resp.status_code == 200
    assert source.passwords == {make_doc()["uuid"]: "blob=="}
    assert client.get("/openstack/latest/password", headers=headers()).text == "blob=="
    again = client.post("/openstack/latest/password", headers=headers(), content=b"x")
    assert again.status_code == 409
    assert "once" in again.json()["conflictingRequest"]["message"]


def test_password_too_long_and_wrong_place(client: TestClient, source: FakeSource) -> None:
    resp = client.post("/openstack/latest/password", headers=headers(), content=b"x" * 257)
    assert resp.status_code == 400 and "256" in resp.json()["badRequest"]["message"]
    assert client.post("/openstack/latest/meta_data.json", headers=headers(),
                       content=b"x").status_code == 405
    assert client.post("/openstack/2012-08-10/password", headers=headers(),
                       content=b"x").status_code == 404
    unsigned = client.post("/openstack/latest/password", content=b"x",
                           headers={"X-Forwarded-For": IP})
    assert unsigned.status_code == 400
    assert source.passwords == {}


def test_healthcheck(client: TestClient) -> None:
    assert client.get("/healthcheck").text == "OK"


def test_cache_serves_from_memory(client: TestClient, source: FakeSource) -> None:
    for path in ("/openstack/latest/meta_data.json", "/latest/meta-data/hostname",
                 "/openstack/latest/network_data.json"):
        assert client.get(path, headers=headers()).status_code == 200
    assert source.lookups == 1


# -- the cache itself ------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ttl_cache_expiry_and_negative_ttl() -> None:
    clock = Clock()
    cache: TTLCache[str] = TTLCache(ttl=5, negative_ttl=1, clock=clock)
    calls: list[str] = []

    def loader(value: str | None) -> Any:
        def load() -> str | None:
            calls.append(str(value))
            return value
        return load

    assert cache.get_or_load("a", loader("v1")) == "v1"
    assert cache.get_or_load("a", loader("v2")) == "v1"
    clock.now += 5.1
    assert cache.get_or_load("a", loader("v2")) == "v2"
    assert cache.get_or_load("gone", loader(None)) is None
    clock.now += 0.5
    assert cache.get_or_load("gone", loader("back")) is None  # negative answer still cached
    clock.now += 0.6
    assert cache.get_or_load("gone", loader("back")) == "back"
    assert calls == ["v1", "v2", "None", "back"]
    cache.invalidate("a")
    assert cache.get_or_load("a", loader("v3")) == "v3"


def test_ttl_cache_zero_ttl_never_caches_and_errors_are_not_cached() -> None:
    cache: TTLCache[int] = TTLCache(ttl=0, negative_ttl=0)
    n = iter(range(10))
    assert cache.get_or_load("k", lambda: next(n)) == 0
    assert cache.get_or_load("k", lambda: next(n)) == 1

    cache2: TTLCache[int] = TTLCache(ttl=60, negative_ttl=60)

    def boom() -> int:
        raise ServiceError("down", temporary=True)

    with pytest.raises(ServiceError):
        cache2.get_or_load("k", boom)
    assert cache2.get_or_load("k", lambda: 7) == 7
    assert len(cache2) == 1


def test_ttl_cache_bounded() -> None:
    cache: TTLCache[int] = TTLCache(ttl=60, negative_ttl=60, max_entries=3)
    for i in range(5):
        cache.get_or_load(i, functools.partial(int, i))
    assert len(cache) == 3
    assert cache.get_or_load(0, lambda: 100) == 100  # the oldest was evicted


def test_ttl_cache_one_loader_per_key_under_concurrency() -> None:
    cache: TTLCache[str] = TTLCache(ttl=60, negative_ttl=60)
    loads: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def load() -> str:
        with lock:
            loads.append(1)
        time.sleep(0.05)
        return "doc"

    results: list[str | None] = []

    def worker() -> None:
        barrier.wait()
        results.append(cache.get_or_load("same", load))

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["doc"] * 20
    assert len(loads) == 1


def test_service_concurrent_cold_requests_ask_compute_once(source: FakeSource) -> None:
    source.delay = 0.05
    service = MetadataService(source, Settings(shared_secret=SECRET, cache_ttl=60))
    out: list[bytes] = []

    def worker() -> None:
        body, _kind = service.get(NET, IP, "/openstack/latest/meta_data.json")
        out.append(body)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 10 and json.loads(out[0])["hostname"] == "web1"
    assert source.lookups == 1


def test_password_streamed_body_is_capped(client: TestClient, source: FakeSource) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"y" * 100  # 10 000 bytes, no Content-Length

    resp = client.post("/openstack/latest/password", headers=headers(), content=chunks())
    assert resp.status_code == 400 and "256" in resp.json()["badRequest"]["message"]
    assert source.passwords == {}


def test_cache_only_answers_never_ask_compute(source: FakeSource) -> None:
    from stratus.metadata.app import _MustLoad

    service = MetadataService(source, Settings(shared_secret=SECRET, cache_ttl=60))
    assert service.get(NET, IP, "/", load=False)[0].endswith(b"latest")  # needs no instance
    with pytest.raises(_MustLoad):
        service.get(NET, IP, "/openstack/latest/meta_data.json", load=False)
    assert source.lookups == 0
    service.get(NET, IP, "/latest/meta-data/hostname")
    assert service.get(NET, IP, "/latest/meta-data/hostname", load=False)[0] == b"web1"
    with pytest.raises(_MustLoad):
        service.get(NET, "192.168.10.99", "/latest/meta-data/", load=False)
    assert source.lookups == 1


def _compute_source(handler: Any) -> Any:
    import httpx

    from stratus.common.clients import ApiClient, StaticToken
    from stratus.metadata.app import ComputeSource

    client = ApiClient("http://compute.test/v2.1", StaticToken("svc"), service="compute")
    client._http = httpx.Client(transport=httpx.MockTransport(handler))
    return ComputeSource(client)


def test_compute_source_answers() -> None:
    import httpx

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url} {request.headers['x-auth-token']}")
        ip = request.url.params.get("fixed_ip")
        if request.method == "PUT":
            return httpx.Response(409, json={"conflictingRequest": {"message": "set"}})
        if ip == "10.0.0.1":
            return httpx.Response(200, json={"instance": make_doc()})
        if ip == "10.0.0.2":
            return httpx.Response(404, json={"itemNotFound": {"message": "no"}})
        if ip == "10.0.0.3":
            return httpx.Response(200, text="<html>proxy page</html>")
        return httpx.Response(500, json={"computeFault": {"message": "boom"}})

    src = _compute_source(handler)
    assert src.lookup("n", "10.0.0.1")["uuid"] == make_doc()["uuid"]
    assert src.lookup("n", "10.0.0.2") is None
    for ip in ("10.0.0.3", "10.0.0.4"):
        with pytest.raises(ServiceError) as err:
            src.lookup("n", ip)
        assert err.value.temporary
    with pytest.raises(ServiceError) as err:
        src.set_password("uuid-1", "blob")
    assert err.value.status == 409
    assert seen[0] == ("GET http://compute.test/v2.1/stratus/metadata?network_id=n"
                       "&fixed_ip=10.0.0.1 svc")
    assert seen[-1] == "PUT http://compute.test/v2.1/stratus/metadata/uuid-1/password svc"


def test_a_document_of_the_wrong_shape_is_a_503(client: TestClient, source: FakeSource) -> None:
    source.docs[(NET, IP)] = make_doc(networks=[{"port_id": 7}])
    resp = client.get("/openstack/latest/meta_data.json", headers=headers())
    assert resp.status_code == 503
    source.docs[(NET, IP)] = make_doc()
    resp = client.get("/openstack/latest/meta_data.json", headers=headers())
    assert resp.status_code == 200  # nothing of the bad answer was cached
