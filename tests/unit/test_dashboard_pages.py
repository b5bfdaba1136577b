"""stratus-dashboard without any service: sessions and CSRF, the page wrapper (login
redirect, CSRF refusal, the API's message shown), escaping, the topology SVG, the
security headers, and the catalog lookup. The APIs are a fake ``Cloud``; the real ones
are in tests/integration/test_dashboard.py."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from stratus.dashboard import views
from stratus.dashboard.app import build_app
from stratus.dashboard.cloud import ApiFailure, Cloud, Login, UserApi
from stratus.dashboard.core import Chart, DashboardCore, status_row
from stratus.dashboard.sessions import SessionStore, check_login_csrf
from stratus.dashboard.web import Dashboard, FormError, check_id, safe_next

pytestmark = pytest.mark.unit

CATALOG = [{"type": t, "endpoints": [{"interface": "public", "region_id": "RegionOne",
                                      "url": f"http://{t}.test"}]}
           for t in ("compute", "image", "network")]


class FakeCloud(Cloud):
    """Answers the calls from a table; records them."""

    def __init__(self) -> None:
        super().__init__("http://identity.test/v3", region="RegionOne")
        self.answers: dict[tuple[str, str, str], Any] = {}
        self.seen: list[tuple[str, str, str]] = []
        self.revoked: list[str] = []

    def login(self, username: str, password: str, domain: str) -> Login:
        if password != "right":
            raise ApiFailure("Invalid credentials: the user name, password or domain is "
                             "wrong.", 401)
        return Login("tok-1", time.time() + 3600, {"name": username}, {"name": "demo"},
                     ["member"], CATALOG)

    def logout(self, token: str) -> bool:
        self.revoked.append(token)
        return True

    def user_api(self, token: str, catalog: list[dict[str, Any]]) -> UserApi:
        cloud = self

        class Api(UserApi):
            def call(self, kind: str, method: str, path: str, **kw: Any) -> Any:
                self.calls += 1
                cloud.seen.append((kind, method, path))
                answer = cloud.answers.get((kind, method, path),
                                           {} if method == "GET" else None)
                if isinstance(answer, ApiFailure):
                    raise answer
                return answer

        return Api(self, token, catalog)


@pytest.fixture
def app() -> tuple[TestClient, FakeCloud, Dashboard]:
    cloud = FakeCloud()
    dash = Dashboard(DashboardCore(cloud), SessionStore(), cloud, region="RegionOne")
    return TestClient(build_app(dash), follow_redirects=False), cloud, dash


def login(client: TestClient) -> str:
    page = client.get("/auth/login/")
    token = page.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    resp = client.post("/auth/login/", data={"username": "alice", "password": "right",
                                             "csrfmiddlewaretoken": token})
    assert resp.status_code == 303, resp.text
    page = client.get("/project/key_pairs/")
    return page.text.split('<meta name="csrf-token" content="')[1].split('"')[0]


def test_sessions_expire_and_ids_are_fresh() -> None:
    store = SessionStore(idle_timeout=60)
    a = store.create("t", time.time() + 100, {}, {}, [], [])
    b = store.create("t", time.time() + 100, {}, {}, [], [])
    assert a.id != b.id and a.csrf != b.csrf and len(a.id) >= 40
    assert store.get(a.id) is a
    expired = store.create("t", time.time() - 1, {}, {}, [], [])
    assert store.get(expired.id) is None
    assert store.drop(a.id) is a and store.get(a.id) is None
    assert not a.check_csrf("") and not a.check_csrf("nope") and a.check_csrf(a.csrf)
    assert not check_login_csrf(None, "x") and not check_login_csrf("x", "y")
    assert check_login_csrf("x", "x")


def test_unsigned_visitor_goes_to_login_and_scripts_get_401(app: Any) -> None:
    client, _cloud, _dash = app
    resp = client.get("/project/instances/")
    assert resp.status_code == 303 and resp.headers["location"].startswith("/auth/login/")
    assert client.get("/project/instances/status.json").status_code == 401
    assert 'id="id_username"' in client.get("/").text


def test_login_logout_revokes_and_the_old_cookie_is_refused(app: Any) -> None:
    client, cloud, dash = app
    csrf = login(client)
    assert len(dash.sessions) == 1
    old = client.cookies["stratus_session"]
    assert client.post("/auth/logout/", data={"csrfmiddlewaretoken": "bad"}).status_code == 403
    resp = client.post("/auth/logout/", data={"csrfmiddlewaretoken": csrf})
    assert resp.status_code == 303 and cloud.revoked == ["tok-1"]
    assert len(dash.sessions) == 0
    client.cookies.set("stratus_session", old)
    assert client.get("/project/").status_code == 303


def test_wrong_password_shows_the_message(app: Any) -> None:
    client, _cloud, _dash = app
    page = client.get("/auth/login/")
    token = page.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    resp = client.post("/auth/login/", data={"username": "alice", "password": "wrong",
                                             "csrfmiddlewaretoken": token})
    assert resp.status_code == 401 and "Invalid credentials" in resp.text


def test_post_without_csrf_is_refused_and_nothing_is_called(app: Any) -> None:
    client, cloud, _dash = app
    login(client)
    cloud.seen.clear()
    resp = client.post("/project/networks/create", data={"name": "n"})
    assert resp.status_code == 403 and "CSRF" in resp.text
    assert cloud.seen == []


def test_api_refusal_is_flashed_with_the_apis_words(app: Any) -> None:
    client, cloud, _dash = app
    csrf = login(client)
    cloud.answers[("compute", "POST", "servers/abc-1/action")] = ApiFailure(
        "Cannot 'os-stop' instance abc-1 while it is in vm_state stopped", 409)
    resp = client.post("/project/instances/abc-1/action",
                       data={"action": "stop", "csrfmiddlewaretoken": csrf})
    assert resp.status_code == 303 and resp.headers["location"] == "/project/instances/"
    cloud.answers[("compute", "GET", "servers/detail")] = {"servers": []}
    cloud.answers[("image", "GET", "v2/images")] = {"images": []}
    cloud.answers[("network", "GET", "v2.0/floatingips")] = {"floatingips": []}
    page = client.get("/project/instances/")
    assert "while it is in vm_state stopped" in page.text


def test_names_render_as_text_and_headers_are_set(app: Any) -> None:
    client, cloud, _dash = app
    login(client)
    cloud.answers[("compute", "GET", "servers/detail")] = {"servers": [{
        "id": "s1", "name": "<script>alert(1)</script>", "status": "ACTIVE",
        "image": {"id": "i1"}, "flavor": {"original_name": "m1"}, "addresses": {}}]}
    cloud.answers[("image", "GET", "v2/images")] = {"images": [{"id": "i1", "name": "cirros"}]}
    cloud.answers[("network", "GET", "v2.0/floatingips")] = {"floatingips": []}
    cloud.seen.clear()
    page = client.get("/project/instances/")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "cirros" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    kinds = [(k, p) for k, _m, p in cloud.seen]
    assert len(kinds) == len(set(kinds)) == 3  # one call per resource kind
    assert page.headers["x-stratus-api-calls"] == "3"
    assert page.headers["server-timing"].startswith("page;dur=")


def test_ids_from_urls_are_checked(app: Any) -> None:
    client, cloud, _dash = app
    login(client)
    cloud.seen.clear()
    resp = client.get("/project/instances/..%2F..%2Fos-hypervisors/")
    assert resp.status_code in (400, 404) and cloud.seen == []
    assert check_id("0a-b", "x") == "0a-b"
    for bad in ("", "../x", "a/b", "z" * 3, "a" * 65):
        with pytest.raises(FormError):
            check_id(bad, "instance")


def test_safe_next() -> None:
    assert safe_next("/project/images/") == "/project/images/"
    for bad in ("//evil.test/", "https://evil.test/", "\\\\evil", "javascript:x"):
        assert safe_next(bad) == "/project/"


def test_topology_svg_escapes_and_links() -> None:
    state = {"networks": [{"id": "n1", "name": "<b>net</b>"},
                          {"id": "ext", "name": "public", "router:external": True}],
             "routers": [{"id": "r1", "name": "router-1",
                          "external_gateway_info": {"network_id": "ext"}}],
             "ports": [{"network_id": "n1", "device_owner": "network:router_interface",
                        "device_id": "r1"},
                       {"network_id": "n1", "device_owner": "compute:nova", "device_id": "s1"}]}
    svg = views.topology_svg(state, [{"id": "s1", "name": "vm&1"}]).body.decode()
    assert "&lt;b&gt;net&lt;/b&gt;" in svg and "router-1" in svg and "vm&amp;1" in svg
    assert svg.count("<line") == 3  # router to both networks, server to its network


def test_charts_and_status_rows() -> None:
    assert Chart("x", 5, 10).percent == 50
    assert Chart("x", 5, -1).percent == 0
    assert Chart("x", 20, 10).percent == 100
    row = status_row({"id": "s", "name": "n", "status": "ERROR",
                      "fault": {"message": "No valid host was found."},
                      "addresses": {"net": [{"addr": "10.0.0.5"}]}})
    assert row["fault"] == "No valid host was found." and row["addresses"] == ["net: 10.0.0.5"]


def test_catalog_lookup_prefers_the_configured_interface() -> None:
    cloud = Cloud("http://id.test", interface="internal", region="RegionOne")
    api = UserApi(cloud, "t", [{"type": "volumev3", "endpoints": [
        {"interface": "public", "region_id": "RegionOne", "url": "http://pub/v3/p"},
        {"interface": "internal", "region_id": "RegionOne", "url": "http://int/v3/p/"}]}])
    assert api.endpoint("volume") == "http://int/v3/p"
    assert api.endpoint("network") is None and not api.has("network")
    with pytest.raises(ApiFailure):
        api.client("network")


def test_instances_are_paged_by_marker(app: Any) -> None:
    client, cloud, _dash = app
    login(client)
    servers = [{"id": f"{i:08x}-0000", "name": f"s{i}", "status": "ACTIVE"}
               for i in range(50)]
    cloud.answers[("compute", "GET", "servers/detail")] = {"servers": servers}
    page = client.get("/project/instances/")
    assert 'href="/project/instances/?marker=00000031-0000"' in page.text
    page = client.get("/project/instances/?marker=00000031-0000")
    assert 'data-status-url="/project/instances/status.json?marker=00000031-0000"' in page.text
    assert client.get("/project/instances/?marker=../x").status_code == 400


def test_console_page_frames_the_proxy_and_only_it(app: Any) -> None:
    client, cloud, _dash = app
    login(client)
    sid = "0c3f4d2e-1111-4222-8333-944455556666"
    cloud.answers[("compute", "GET", f"servers/{sid}")] = {"server": {
        "id": sid, "name": "<b>vm</b>", "status": "ACTIVE"}}
    url = ("http://proxy.test:6080/vnc_lite.html?path=websockify%3Ftoken%3Dabc%26instance%3D"
           + sid)
    cloud.answers[("compute", "POST", f"servers/{sid}/remote-consoles")] = {
        "remote_console": {"protocol": "vnc", "type": "novnc", "url": url}}
    page = client.get(f"/project/instances/{sid}/console/")
    assert page.status_code == 200, page.text
    assert 'id="vnc-console"' in page.text and "&lt;b&gt;vm&lt;/b&gt;" in page.text
    assert url.replace("&", "&amp;") in page.text
    csp = page.headers["content-security-policy"]
    assert "frame-src 'self' http://proxy.test:6080;" in csp
    assert csp.count("frame-src") == 1 and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    # other pages keep the strict policy; an unframable URL is refused with its reason
    assert "frame-src 'self';" in client.get("/project/key_pairs/").headers[
        "content-security-policy"]
    cloud.answers[("compute", "POST", f"servers/{sid}/remote-consoles")] = {
        "remote_console": {"url": "javascript:alert(1)"}}
    bad = client.get(f"/project/instances/{sid}/console/")
    assert bad.status_code == 400 and "cannot frame" in bad.text
    cloud.answers[("compute", "POST", f"servers/{sid}/remote-consoles")] = ApiFailure(
        f"Instance {sid} is not ready: it has no VNC display yet", 409)
    busy = client.get(f"/project/instances/{sid}/console/")
    assert busy.status_code == 409 and "no VNC display" in busy.text
    assert views.frame_origin("http://h;script-src:1/") is None
    assert views.frame_origin("http://h:1/x; script-src *") == "http://h:1"
