"""The dashboard's Containers panel and the admins' write actions without any service:
the APIs are a fake object store, identity and compute behind httpx's MockTransport
(the real dashboard code makes the HTTP calls). The real services are in
tests/integration/test_dashboard_containers_server.py."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from stratus.dashboard.app import build_app
from stratus.dashboard.cloud import Cloud, Login
from stratus.dashboard.core import DashboardCore
from stratus.dashboard.sessions import SessionStore
from stratus.dashboard.storage import BadName, check_container, check_object, swift_message
from stratus.dashboard.web import Dashboard

pytestmark = pytest.mark.unit

ACCOUNT = "http://swift.test/v1/AUTH_p1"


def catalog(with_objects: bool = True) -> list[dict[str, Any]]:
    urls = {"compute": "http://compute.test/v2.1", "image": "http://image.test",
            "network": "http://network.test"}
    if with_objects:
        urls["object-store"] = ACCOUNT
    return [{"type": t, "endpoints": [{"interface": "public", "region_id": "RegionOne",
                                       "url": u}]} for t, u in urls.items()]


class FakeApis:
    """A fake object store (one account), identity and compute, recording each call."""

    def __init__(self) -> None:
        self.containers: dict[str, dict[str, Any]] = {}
        self.seen: list[tuple[str, str]] = []
        self.streamed: list[bool] = []
        self.identity_refusal: tuple[int, str] | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, str(request.url)))
        if request.url.host == "swift.test":
            return self.swift(request)
        if request.url.host == "identity.test":
            return self.identity(request)
        return httpx.Response(202 if request.method == "DELETE" else 200, json={})

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        self.streamed.append(not isinstance(request.stream, httpx.ByteStream))
        if request.method == "PUT":
            body = b""
            async for chunk in request.stream:  # type: ignore[union-attr]
                body += chunk
            request._content = body
        answer = self.handle(request)
        return httpx.Response(answer.status_code, headers=answer.headers,
                              stream=Chunks(answer.content))

    def identity(self, request: httpx.Request) -> httpx.Response:
        if self.identity_refusal is not None:
            status, message = self.identity_refusal
            return httpx.Response(status, json={"error": {"code": status,
                                                          "message": message}})
        if request.url.path.endswith("/roles"):
            return httpx.Response(200, json={"roles": [{"id": "r-member", "name": "member"}]})
        if request.method in ("GET", "POST"):
            return httpx.Response(201 if request.method == "POST" else 200, json={})
        return httpx.Response(204)

    def swift(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.raw_path.decode().split("?")[0].split("/")[2:]
        names = [urllib.parse.unquote(p) for p in parts]
        method = request.method
        if names[0] != "AUTH_p1":
            return httpx.Response(403)
        if len(names) == 1:
            listing = [{"name": n, "count": len(c["objects"]),
                        "bytes": sum(len(b) for b in c["objects"].values())}
                       for n, c in sorted(self.containers.items())]
            return httpx.Response(200, json=listing)
        container = names[1]
        obj = "/".join(names[2:])
        if not obj:
            if method == "PUT":
                self.containers.setdefault(container, {"objects": {}, "read": ""})
                self.containers[container]["read"] = request.headers.get(
                    "x-container-read", "")
                return httpx.Response(201)
            if container not in self.containers:
                return error(404, "The resource could not be found.")
            if method == "DELETE":
                if self.containers[container]["objects"]:
                    return error(409, "There was a conflict when trying to complete your "
                                 "request. The container is not empty.")
                del self.containers[container]
                return httpx.Response(204)
            if method == "POST":
                self.containers[container]["read"] = request.headers.get(
                    "x-container-read", "")
                return httpx.Response(204)
            return self.listing(container, request)
        objects = self.containers.get(container, {}).get("objects")
        if objects is None:
            return error(404, "The resource could not be found.")
        if method == "PUT":
            objects[obj] = request.content
            return httpx.Response(201)
        if obj not in objects:
            return error(404, "The resource could not be found.")
        if method == "DELETE":
            del objects[obj]
            return httpx.Response(204)
        return httpx.Response(200, content=objects[obj],
                              headers={"content-type": "text/plain", "etag": "e"})

    def listing(self, container: str, request: httpx.Request) -> httpx.Response:
        prefix = request.url.params.get("prefix", "")
        entries: list[dict[str, Any]] = []
        folders: set[str] = set()
        for name, data in sorted(self.containers[container]["objects"].items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            if "/" in rest:
                folders.add(prefix + rest.split("/")[0] + "/")
            else:
                entries.append({"name": name, "bytes": len(data), "last_modified": "t"})
        entries += [{"subdir": f} for f in sorted(folders)]
        objects = self.containers[container]["objects"]
        return httpx.Response(200, json=entries, headers={
            "x-container-object-count": str(len(objects)),
            "x-container-bytes-used": str(sum(len(b) for b in objects.values())),
            "x-container-read": self.containers[container]["read"]})


class Chunks(httpx.AsyncByteStream):
    """A body that arrives in small pieces, as from a socket."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), 4):
            yield self.data[i:i + 4]


class StreamTransport(httpx.AsyncBaseTransport):
    """Hands the request to the fake as it is (MockTransport would read the body first)."""

    def __init__(self, apis: FakeApis) -> None:
        self.apis = apis

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.apis.handle_async(request)


def error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, content=f"<html><h1>E</h1><p>{message}</p></html>",
                          headers={"content-type": "text/html; charset=UTF-8"})


class FakeCloud(Cloud):
    """Signs in without an identity service: ``admin`` gets the admin role."""

    def __init__(self, apis: FakeApis, with_objects: bool = True) -> None:
        super().__init__("http://identity.test/v3", region="RegionOne",
                         http=httpx.Client(transport=httpx.MockTransport(apis.handle)))
        self.with_objects = with_objects

    def login(self, username: str, password: str, domain: str) -> Login:
        roles = ["admin", "member"] if username == "admin" else ["member"]
        return Login("tok-1", time.time() + 3600, {"name": username, "id": "u-self"},
                     {"name": "demo", "id": "p1"}, roles, catalog(self.with_objects))

    def logout(self, token: str) -> bool:
        return True


def make_app(with_objects: bool = True) -> tuple[TestClient, FakeApis]:
    apis = FakeApis()
    cloud = FakeCloud(apis, with_objects)
    core = DashboardCore(cloud)
    core.stream_transport = StreamTransport(apis)
    dash = Dashboard(core, SessionStore(), cloud, region="RegionOne")
    return TestClient(build_app(dash), follow_redirects=False), apis


def login(client: TestClient, user: str = "alice") -> str:
    page = client.get("/auth/login/")
    token = page.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    resp = client.post("/auth/login/", data={"username": user, "password": "pw",
                                             "csrfmiddlewaretoken": token})
    assert resp.status_code == 303, resp.text
    page = client.get("/project/key_pairs/")
    return page.text.split('<meta name="csrf-token" content="')[1].split('"')[0]


@pytest.fixture
def app() -> tuple[TestClient, FakeApis]:
    return make_app()


def test_names_are_checked() -> None:
    for bad in ("", "a/b", ".", "..", "x" * 257):
        with pytest.raises(BadName):
            check_container(bad)
    for bad in ("", "a/../b", "./a", "a/.", "x" * 1025):
        with pytest.raises(BadName):
            check_object(bad)
    assert check_object("dir/sub/file name?.txt") == "dir/sub/file name?.txt"
    assert swift_message("<html><h1>Conflict</h1><p>Not &amp; empty.</p></html>",
                         409) == "Not & empty."


def test_panel_hidden_without_an_object_store() -> None:
    client, apis = make_app(with_objects=False)
    login(client)
    assert 'href="/project/containers/"' not in client.get("/project/").text
    page = client.get("/project/containers/")
    assert page.status_code == 200 and "no object store" in page.text
    assert not [u for _m, u in apis.seen if "swift" in u]


def test_list_create_public_and_one_call(app: Any) -> None:
    client, apis = app
    csrf = login(client)
    assert 'href="/project/containers/"' in client.get("/project/").text
    resp = client.post("/project/containers/create",
                       data={"name": "zdc-pub", "public": "on", "csrfmiddlewaretoken": csrf})
    assert resp.status_code == 303
    client.post("/project/containers/create",
                data={"name": "<img src=x onerror=alert(1)>", "csrfmiddlewaretoken": csrf})
    assert apis.containers["zdc-pub"]["read"] == ".r:*,.rlistings"
    assert apis.containers["<img src=x onerror=alert(1)>"]["read"] == ""
    page = client.get("/project/containers/")
    assert page.headers["x-stratus-api-calls"] == "1"
    assert "zdc-pub" in page.text and "<img src=x onerror=alert(1)>" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "/project/containers/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E/" in page.text


def test_forms_without_csrf_call_nothing(app: Any) -> None:
    client, apis = app
    login(client)
    apis.seen.clear()
    assert client.post("/project/containers/create", data={"name": "zdc-x"}).status_code \
        == 403
    assert client.put("/project/containers/c/object?name=a", content=b"x").status_code == 403
    assert client.post("/project/containers/c/object/delete",
                       data={"name": "a"}).status_code == 403
    assert apis.seen == []


def test_not_empty_container_shows_swifts_message(app: Any) -> None:
    client, apis = app
    csrf = login(client)
    apis.containers["zdc-full"] = {"objects": {"a": b"1"}, "read": ""}
    resp = client.post("/project/containers/zdc-full/delete",
                       data={"csrfmiddlewaretoken": csrf})
    assert resp.status_code == 303
    page = client.get("/project/containers/")
    assert "The container is not empty." in page.text and "flash error" in page.text
    assert "zdc-full" in apis.containers


def test_browse_pseudo_folders_upload_download_delete(app: Any) -> None:
    client, apis = app
    csrf = login(client)
    client.post("/project/containers/create", data={"name": "zdc-c",
                                                    "csrfmiddlewaretoken": csrf})
    for name in ("a.txt", "dir/b.txt", "dir/sub/c.txt"):
        resp = client.put("/project/containers/zdc-c/object",
                          params={"name": name}, content=iter([b"he", b"llo ", name.encode()]),
                          headers={"X-CSRF-Token": csrf})
        assert resp.status_code == 201, resp.text
    assert all(apis.streamed)  # the body went on as a stream, not one buffer
    assert apis.containers["zdc-c"]["objects"]["dir/b.txt"] == b"hello dir/b.txt"
    root = client.get("/project/containers/zdc-c/")
    assert root.headers["x-stratus-api-calls"] == "1"
    assert "3 objects" in root.text and "private" in root.text
    assert 'href="/project/containers/zdc-c/?prefix=dir%2F"' in root.text
    assert "b.txt" not in root.text and "a.txt" in root.text
    sub = client.get("/project/containers/zdc-c/", params={"prefix": "dir/"})
    assert "b.txt" in sub.text and "prefix=dir%2Fsub%2F" in sub.text
    assert "a.txt" not in sub.text
    got = client.get("/project/containers/zdc-c/object", params={"name": "dir/b.txt"})
    assert got.status_code == 200 and got.content == b"hello dir/b.txt"
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''b.txt"
    missing = client.get("/project/containers/zdc-c/object", params={"name": "nope"})
    assert missing.status_code == 404 and "could not be found" in missing.json()["error"]
    bad = client.put("/project/containers/zdc-c/object", params={"name": "a/../b"},
                     content=b"x", headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 400 and "segment" in bad.json()["error"]
    gone = client.post("/project/containers/zdc-c/object/delete",
                       data={"name": "dir/b.txt", "csrfmiddlewaretoken": csrf})
    assert gone.status_code == 303
    assert gone.headers["location"] == "/project/containers/zdc-c/?prefix=dir%2F"
    assert "dir/b.txt" not in apis.containers["zdc-c"]["objects"]
    client.post("/project/containers/zdc-c/access", data={"public": "on",
                                                          "csrfmiddlewaretoken": csrf})
    assert apis.containers["zdc-c"]["read"] == ".r:*,.rlistings"
    assert "public" in client.get("/project/containers/zdc-c/").text


def test_names_stay_under_the_own_account(app: Any) -> None:
    client, apis = app
    csrf = login(client)
    # A name that looks like a URL, or one with a path, never leaves the account.
    client.post("/project/containers/create", data={"name": "http:evil.test",
                                                    "csrfmiddlewaretoken": csrf})
    assert "http:evil.test" in apis.containers
    refused = client.post("/project/containers/create", data={
        "name": "../AUTH_p2", "csrfmiddlewaretoken": csrf})
    assert refused.status_code == 303
    assert all(u.startswith(ACCOUNT) for m, u in apis.seen if "swift" in u)
    assert client.get("/project/containers/%2E%2E/").status_code == 400


def test_admin_writes_refused_for_members(app: Any) -> None:
    client, apis = app
    csrf = login(client)
    apis.seen.clear()
    for path, data in (("/admin/projects/create", {"name": "p"}),
                       ("/admin/users/create", {"name": "u", "password": "x" * 8}),
                       ("/admin/roles/grant", {"project": "ab", "user": "cd",
                                               "role": "member"}),
                       ("/admin/flavors/create", {"name": "f"}),
                       ("/admin/flavors/f1/delete", {})):
        resp = client.post(path, data={**data, "csrfmiddlewaretoken": csrf})
        assert resp.status_code == 403 and "admin role" in resp.text
    assert apis.seen == []


def test_admin_writes_call_the_apis(app: Any) -> None:
    client, apis = app
    csrf = login(client, "admin")
    apis.seen.clear()

    def post(path: str, **data: str) -> Any:
        return client.post(path, data={**data, "csrfmiddlewaretoken": csrf})

    assert post("/admin/projects/create", name="zdc-p").status_code == 303
    assert post("/admin/users/create", name="zdc-u", password="secret-123",
                confirm_password="secret-123", project="abc1").status_code == 303
    assert post("/admin/roles/grant", project="abc1", user="def2",
                role="member").status_code == 303
    assert post("/admin/roles/revoke", project="abc1", user="def2",
                role="member").status_code == 303
    assert post("/admin/flavors/create", name="zdc-f", vcpus="2", ram="128",
                disk="1", public="on").status_code == 303
    assert post("/admin/flavors/zdc-f.1/delete").status_code == 303
    assert post("/admin/users/def2/delete").status_code == 303
    assert post("/admin/projects/abc1/delete").status_code == 303
    assert [(m, u.split(".test")[1]) for m, u in apis.seen] == [
        ("POST", "/v3/projects"), ("POST", "/v3/users"),
        ("GET", "/v3/roles?name=member"), ("PUT", "/v3/projects/abc1/users/def2/roles/r-member"),
        ("GET", "/v3/roles?name=member"),
        ("DELETE", "/v3/projects/abc1/users/def2/roles/r-member"),
        ("POST", "/v2.1/flavors"), ("DELETE", "/v2.1/flavors/zdc-f.1"),
        ("DELETE", "/v3/users/def2"), ("DELETE", "/v3/projects/abc1")]
    apis.seen.clear()
    # Checked here: a short password, two different ones, one's own user, a bad id.
    for data in ({"name": "u", "password": "short", "confirm_password": "short"},
                 {"name": "u", "password": "long-enough", "confirm_password": "other-one"}):
        post("/admin/users/create", **data)
    post("/admin/users/u-self/delete")
    post("/admin/flavors/a%2Fb/delete")
    assert apis.seen == []
    page = client.get("/admin/")
    assert "at least 8" in page.text and "differ" in page.text


def test_admin_api_refusal_shows_the_apis_message(app: Any) -> None:
    client, apis = app
    csrf = login(client, "admin")
    apis.identity_refusal = (409, "Conflict occurred attempting to store project - "
                             "Duplicate entry.")
    resp = client.post("/admin/projects/create", data={"name": "zdc-dup",
                                                       "csrfmiddlewaretoken": csrf})
    assert resp.status_code == 303
    page = client.get("/admin/")
    assert "Duplicate entry." in page.text
