"""stratus-dashboard against the real identity, image, network and compute services
(separate processes, SQLite): sign-in and the session, CSRF on every form, logout
revoking the token, the pages with their API calls' answers, isolation between projects,
escaping, the security headers, and Horizon's login form as tempest's dashboard smoke
test reads it."""

from __future__ import annotations

import html.parser
import http.cookiejar
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dashboard_support import DashClient, dashboard_stack, make_flavor, make_member

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("zdb-dash")
    with dashboard_stack(root, volume=True) as (st, dash):
        admin = st.identity.token()
        flavor = make_flavor(st.compute.url, admin, "zdb-tiny")
        yield {"stack": st, "dash": dash, "flavor": flavor,
               "alice": make_member(st.identity), "bob": make_member(st.identity)}


@pytest.fixture
def alice(env: dict[str, Any]) -> Iterator[DashClient]:
    client = DashClient(env["dash"].url)
    resp = client.login(env["alice"].name, env["alice"].password)
    assert resp.status_code == 200 and "Overview" in resp.text, resp.text
    yield client
    client.close()


def wait_for(fn: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_login_page_and_wrong_password(env: dict[str, Any]) -> None:
    client = DashClient(env["dash"].url)
    page = client.http.get("/")
    assert 'id="id_username"' in page.text
    assert "stratus_login_csrf" in page.headers["set-cookie"]
    assert "httponly" in page.headers["set-cookie"].lower()
    resp = client.login(env["alice"].name, "wrong-password")
    assert resp.status_code == 401
    assert "Invalid credentials" in resp.text
    assert "stratus_session" not in client.http.cookies


def test_login_without_csrf_is_refused(env: dict[str, Any]) -> None:
    client = DashClient(env["dash"].url)
    client.http.get("/auth/login/")
    resp = client.http.post("/auth/login/", data={
        "username": env["alice"].name, "password": env["alice"].password})
    assert resp.status_code == 403
    assert "CSRF" in resp.text
    assert "stratus_session" not in client.http.cookies


def test_session_cookie_flags_and_security_headers(env: dict[str, Any]) -> None:
    client = DashClient(env["dash"].url)
    page = client.http.get("/auth/login/")
    token = page.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    resp = client.http.post("/auth/login/", follow_redirects=False, data={
        "username": env["alice"].name, "password": env["alice"].password,
        "csrfmiddlewaretoken": token})
    assert resp.status_code == 303
    cookie = resp.headers["set-cookie"].lower()
    assert "stratus_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    for r in (resp, page, client.http.get("/project/")):
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
    client.close()


def test_forms_without_csrf_are_refused(env: dict[str, Any], alice: DashClient) -> None:
    resp = alice.post("/project/networks/create", {"name": "zdb-nocsrf"}, csrf=False)
    assert resp.status_code == 403 and "CSRF" in resp.text
    resp = alice.http.post("/project/networks/create", data={
        "name": "zdb-badcsrf", "csrfmiddlewaretoken": "x" * 43})
    assert resp.status_code == 403
    assert "zdb-nocsrf" not in alice.get("/project/networks/").text
    put = alice.http.put("/project/images/00000000-0000-0000-0000-000000000000/data",
                         content=b"x")
    assert put.status_code == 403


def test_network_router_topology_and_api_messages(env: dict[str, Any],
                                                  alice: DashClient) -> None:
    alice.get("/project/networks/")
    resp = alice.post("/project/networks/create", {"name": "zdb-net", "cidr": "10.9.0.0/24"})
    assert resp.status_code == 200 and "zdb-net" in resp.text
    net_id = resp.text.split('data-id="')[1].split('"')[0]
    subnet_id = resp.text.split('<option value="')[-1].split('"')[0]
    resp = alice.post("/project/routers/create", {"name": "zdb-router", "subnet": subnet_id})
    assert "zdb-router" in resp.text, resp.text
    svg = alice.get("/project/network_topology/topology.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "zdb-net" in svg.text and "zdb-router" in svg.text
    # The API's own message: a bad CIDR is refused by the network API, nothing is left.
    resp = alice.post("/project/networks/create", {"name": "zdb-bad", "cidr": "10.9.0.0/33"})
    assert "flash error" in resp.text
    assert "zdb-bad" not in resp.text.split("<table")[1]
    router_id = resp.text.split('id="routers"')[1].split('data-id="')[1].split('"')[0]
    alice.post(f"/project/routers/{router_id}/delete")
    resp = alice.post(f"/project/networks/{net_id}/delete")
    assert "zdb-net" not in resp.text.split("<table")[1]


def test_image_upload_launch_and_live_status(env: dict[str, Any], alice: DashClient) -> None:
    alice.get("/project/images/")
    made = alice.post("/project/images/create.json", {"name": "zdb-img",
                                                      "disk_format": "raw"})
    assert made.status_code == 201, made.text
    image_id = made.json()["id"]
    up = alice.http.put(f"/project/images/{image_id}/data", content=b"\0" * 65536,
                        headers={"X-CSRF-Token": alice.csrf})
    assert up.status_code == 200, up.text
    page = alice.get("/project/images/")
    assert "zdb-img" in page.text and "active" in page.text
    edited = alice.post(f"/project/images/{image_id}/edit", {"name": "zdb-img",
                                                            "visibility": "shared"})
    row = edited.text.split(f'data-id="{image_id}"')[1].split("</tr>")[0]
    assert "<td>shared</td>" in row, row
    # Without a network, the compute API's own refusal is what the user reads.
    refused = alice.post("/project/instances/launch", {
        "name": "zdb-nonet", "image": image_id, "flavor": env["flavor"], "count": "1"})
    assert "Unable to automatically allocate a network" in refused.text
    nets = alice.post("/project/networks/create", {"name": "zdb-lnet", "cidr": "10.8.0.0/24"})
    net_id = nets.text.split('id="networks"')[1].split('data-id="')[1].split('"')[0]
    launch = alice.get("/project/instances/launch")
    assert "zdb-tiny" in launch.text and "zdb-lnet" in launch.text
    name = "<script>alert(1)</script>"
    resp = alice.post("/project/instances/launch", {
        "name": name, "image": image_id, "flavor": env["flavor"], "count": "1",
        "networks": net_id})
    assert resp.status_code == 200, resp.text
    assert "flash error" not in resp.text, resp.text.split('role="alert">')[1][:300]
    assert "<script>alert(1)</script>" not in resp.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in resp.text
    # No compute host: the server goes to ERROR; the live status shows the API's fault.
    status = wait_for(lambda: [s for s in alice.get("/project/instances/status.json")
                               .json()["servers"] if s["status"] == "ERROR"])
    assert status and status[0]["name"] == name
    assert "No valid host" in status[0]["fault"], status
    server_id = status[0]["id"]
    detail = alice.get(f"/project/instances/{server_id}/")
    assert "No valid host" in detail.text
    env["alice_server"] = server_id
    resp = alice.post(f"/project/instances/{server_id}/action", {"action": "delete"})
    assert resp.status_code == 200
    assert wait_for(lambda: not alice.get("/project/instances/status.json").json()["servers"])
    alice.post(f"/project/images/{image_id}/delete")
    assert "zdb-img" not in alice.get("/project/images/").text
    alice.post(f"/project/networks/{net_id}/delete")


def test_another_projects_instance_is_not_reachable(env: dict[str, Any],
                                                   alice: DashClient) -> None:
    st = env["stack"]
    bob_token = st.identity.token(env["bob"].name, env["bob"].password, None)
    # bob's own server, made straight at the API
    scoped = httpx.post(f"{st.identity.url}/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": bob_token}},
        "scope": {"project": {"id": env["bob"].project_id}}}})
    headers = {"X-Auth-Token": scoped.headers["X-Subject-Token"]}
    image = httpx.post(f"{st.image.url}/v2/images", headers=headers, json={
        "name": "zdb-bob-img", "disk_format": "raw", "container_format": "bare"}).json()
    httpx.put(f"{st.image.url}/v2/images/{image['id']}/file", content=b"\0" * 4096,
              headers={**headers, "Content-Type": "application/octet-stream"}
              ).raise_for_status()
    made = httpx.post(f"{st.compute.url}/v2.1/servers", json={"server": {
        "name": "zdb-bob", "imageRef": image["id"], "flavorRef": env["flavor"],
        "networks": "none"}}, headers={**headers, "OpenStack-API-Version": "compute 2.47"})
    assert made.status_code == 202, made.text
    server_id = made.json()["server"]["id"]
    resp = alice.get(f"/project/instances/{server_id}/")
    assert resp.status_code == 404
    assert "zdb-bob" not in resp.text
    resp = alice.post(f"/project/instances/{server_id}/action", {"action": "delete"})
    assert "flash error" in resp.text
    assert "zdb-bob" not in alice.get("/project/instances/").text
    # bob's server is still there: alice's delete reached nothing
    assert httpx.get(f"{st.compute.url}/v2.1/servers/{server_id}",
                     headers=headers).status_code == 200
    httpx.delete(f"{st.compute.url}/v2.1/servers/{server_id}", headers=headers)
    httpx.delete(f"{st.image.url}/v2/images/{image['id']}", headers=headers)


def test_logout_revokes_the_token_and_ends_the_session(env: dict[str, Any]) -> None:
    client = DashClient(env["dash"].url)
    client.login(env["alice"].name, env["alice"].password)
    assert "Overview" in client.get("/project/").text
    session_cookie = client.http.cookies["stratus_session"]
    dash = env["dash"]
    # the token behind the session, as the identity API sees it: exactly one live one
    resp = client.post("/auth/logout/")
    assert 'id="id_username"' in resp.text
    stale = httpx.Client(base_url=dash.url, cookies={"stratus_session": session_cookie})
    again = stale.get("/project/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/auth/login/")
    assert stale.get("/project/instances/status.json").status_code == 401
    stale.close()
    client.close()


class LoginParser(html.parser.HTMLParser):
    """What tempest's test_dashboard_basic_ops reads from the login page."""

    csrf_token: str | None = None
    region: str | None = None
    login: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name") == "csrfmiddlewaretoken":
            self.csrf_token = a.get("value")
        if tag == "input" and a.get("name") == "region":
            self.region = a.get("value")
        if tag == "form" and self.login is None:
            self.login = a.get("action")


def test_tempest_dashboard_basic_ops_flow(env: dict[str, Any]) -> None:
    """The same steps, with urllib and a cookie jar, as tempest's scenario."""
    url = env["dash"].url + "/"
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(url).read().decode()
    assert "id_username" in page
    parser = LoginParser()
    parser.feed(page)
    assert parser.login and parser.csrf_token
    req = urllib.request.Request(urllib.parse.urljoin(url, parser.login))
    req.add_header("Content-type", "application/x-www-form-urlencoded")
    req.add_header("Referer", url)
    params = {"username": env["alice"].name, "password": env["alice"].password,
              "region": parser.region, "domain": "Default",
              "csrfmiddlewaretoken": parser.csrf_token}
    opener.open(req, urllib.parse.urlencode(params).encode())
    assert "Overview" in opener.open(url).read().decode()


def test_admin_panels_for_admins_only(env: dict[str, Any], alice: DashClient) -> None:
    refused = alice.get("/admin/")
    assert refused.status_code == 403 and "admin role" in refused.text
    assert 'href="/admin/"' not in alice.get("/project/").text
    admin = DashClient(env["dash"].url)
    from helpers import ADMIN_PASSWORD

    admin.login("admin", ADMIN_PASSWORD)
    page = admin.get("/admin/")
    assert page.status_code == 200, page.text
    assert "zdb-tiny" in page.text and env["alice"].name in page.text
    assert 'id="hypervisors"' in page.text and 'id="all-instances"' in page.text
    assert int(page.headers["x-stratus-api-calls"]) == 6
    admin.close()


def test_volumes_page_and_overview_charts(env: dict[str, Any], alice: DashClient) -> None:
    overview = alice.get("/project/")
    for label in ("Instances", "VCPUs", "RAM", "Volumes", "Volume storage",
                  "Floating IPs", "Security groups"):
        assert f"<strong>{label}</strong>" in overview.text
    alice.get("/project/volumes/")
    resp = alice.post("/project/volumes/create", {"name": "zdb-vol", "size": "1"})
    assert "zdb-vol" in resp.text.split('id="volumes"')[1], resp.text[-2000:]
    refused = alice.post("/project/volumes/create", {"name": "zdb-vol2", "size": "0"})
    assert "flash error" in refused.text and "size" in refused.text
    volume_id = resp.text.split('id="volumes"')[1].split('data-id="')[1].split('"')[0]
    deleted = alice.post(f"/project/volumes/{volume_id}/delete")
    assert deleted.status_code == 200
    assert wait_for(lambda: "zdb-vol" not in alice.get("/project/volumes/").text
                    .split('id="volumes"')[1]) or "flash error" in deleted.text


def test_key_pairs_server_groups_and_rules(env: dict[str, Any], alice: DashClient) -> None:
    alice.get("/project/key_pairs/")
    made = alice.post("/project/key_pairs/create", {"name": "zdb-key"})
    assert "BEGIN" in made.text and "PRIVATE KEY" in made.text  # shown this once
    assert "PRIVATE KEY" not in alice.get("/project/key_pairs/").text
    bad = alice.post("/project/key_pairs/create", {"name": "zdb-imp", "public_key": "nope"})
    assert "flash error" in bad.text
    gone = alice.post("/project/key_pairs/zdb-key/delete")
    assert "zdb-key" not in gone.text.split('id="keypairs"')[1]

    alice.get("/project/server_groups/")
    made = alice.post("/project/server_groups/create", {"name": "zdb-sg",
                                                        "policy": "anti-affinity"})
    assert "zdb-sg" in made.text and "anti-affinity" in made.text
    group_id = made.text.split('id="server-groups"')[1].split('data-id="')[1].split('"')[0]
    gone = alice.post(f"/project/server_groups/{group_id}/delete")
    assert "zdb-sg" not in gone.text.split('id="server-groups"')[1]

    page = alice.post("/project/security_groups/create", {"name": "zdb-web"})
    group = page.text.split('data-id="')
    web = next(part for part in group[1:] if "zdb-web" in part.split("</h2>")[0])
    web_id = web.split('"')[0]
    added = alice.post(f"/project/security_groups/{web_id}/rules", {
        "direction": "ingress", "protocol": "tcp", "port_min": "80",
        "remote_ip_prefix": "0.0.0.0/0"})
    section = added.text.split(f'data-id="{web_id}"')[1].split("</section>")[0]
    assert "tcp" in section and "80-80" in section
    bad = alice.post(f"/project/security_groups/{web_id}/rules", {
        "direction": "ingress", "protocol": "tcp", "port_min": "90", "port_max": "80"})
    assert "flash error" in bad.text
    alice.post(f"/project/security_groups/{web_id}/delete")
    assert "zdb-web" not in alice.get("/project/security_groups/").text
