"""The dashboard's Containers panel and the admins' write actions against the real
processes: stratus-identity, -image, -network, -compute, -dashboard (tests/dashboard_support)
and stratus-object (started as tests/integration/test_object_*.py do, its object-store
endpoint in the catalog). Uploads and downloads pass through the dashboard streamed: its
peak memory does not grow by the object's size. Every name made here starts with ``zdc``."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard_support import DashClient, dashboard_stack, make_member
from helpers import ADMIN_PASSWORD
from object_api import ObjectServer

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("zdc-dash")
    with dashboard_stack(root) as (st, dash):
        store = ObjectServer(root / "object", st.identity)
        store.prepare()  # the catalog gets object-store before anyone signs in
        store.start()
        try:
            yield {"stack": st, "dash": dash, "store": store,
                   "alice": make_member(st.identity, "zdc"),
                   "bob": make_member(st.identity, "zdc")}
        finally:
            store.stop()
        assert "Traceback" not in store.log(), store.log()[-3000:]


def signed_in(env: dict[str, Any], who: str) -> DashClient:
    client = DashClient(env["dash"].url)
    if who == "admin":
        resp = client.login("admin", ADMIN_PASSWORD)
    else:
        resp = client.login(env[who].name, env[who].password)
    assert resp.status_code == 200 and "Overview" in resp.text, resp.text
    return client


@pytest.fixture
def alice(env: dict[str, Any]) -> Iterator[DashClient]:
    client = signed_in(env, "alice")
    yield client
    client.close()


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (stratus-dashboard serves from a worker child)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += tree(int(child))
    return found


def peak_kib(pid: int) -> dict[int, int]:
    """Each process's peak resident memory (VmHWM), KiB, in the tree of ``pid``."""
    peaks = {}
    for proc in tree(pid):
        for line in Path(f"/proc/{proc}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks[proc] = int(line.split()[1])
    return peaks


def chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    block = secrets.token_bytes(size)
    for _ in range(total // size):
        yield block


def test_containers_objects_folders_and_messages(env: dict[str, Any],
                                                 alice: DashClient) -> None:
    page = alice.get("/project/containers/")
    assert page.status_code == 200 and 'id="containers"' in page.text
    assert page.headers["x-stratus-api-calls"] == "1"
    made = alice.post("/project/containers/create", {"name": "zdc-c", "public": "on"})
    assert made.status_code == 200 and "zdc-c" in made.text, made.text[-2000:]
    xss = alice.post("/project/containers/create", {"name": "zdc-<img src=x>"})
    assert "zdc-&lt;img src=x&gt;" in xss.text and "zdc-<img" not in xss.text
    for name, body in (("top.txt", b"top"), ("docs/a.txt", b"alpha"),
                       ("docs/deep/b.txt", b"beta")):
        up = alice.http.put("/project/containers/zdc-c/object", params={"name": name},
                            content=body, headers={"X-CSRF-Token": alice.csrf})
        assert up.status_code == 201, up.text
    root = alice.get("/project/containers/zdc-c/")
    assert root.headers["x-stratus-api-calls"] == "1"
    assert "3 objects" in root.text and "public" in root.text
    assert "prefix=docs%2F" in root.text and "a.txt" not in root.text
    docs = alice.get("/project/containers/zdc-c/", params={"prefix": "docs/"})
    assert "a.txt" in docs.text and "prefix=docs%2Fdeep%2F" in docs.text
    assert "top.txt" not in docs.text
    got = alice.http.get("/project/containers/zdc-c/object", params={"name": "docs/a.txt"})
    assert got.status_code == 200 and got.content == b"alpha"
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''a.txt"
    # Public read: anyone may read the object straight from the object store.
    account = env["store"].url
    public = httpx.get(f"{account}/v1/AUTH_{env['alice'].project_id}/zdc-c/top.txt")
    assert public.status_code == 200 and public.content == b"top"
    # Swift's 409 shown as its message; the container stays.
    refused = alice.post("/project/containers/zdc-c/delete")
    assert "flash error" in refused.text and "not empty" in refused.text
    for name in ("top.txt", "docs/a.txt", "docs/deep/b.txt"):
        gone = alice.post("/project/containers/zdc-c/object/delete", {"name": name})
        assert gone.status_code == 200 and "flash error" not in gone.text, gone.text
    deleted = alice.post("/project/containers/zdc-c/delete")
    assert "flash error" not in deleted.text
    assert 'data-name="zdc-c"' not in deleted.text
    without = alice.post("/project/containers/create", {"name": "zdc-nocsrf"}, csrf=False)
    assert without.status_code == 403
    assert "zdc-nocsrf" not in alice.get("/project/containers/").text


def test_another_projects_account_is_unreachable(env: dict[str, Any],
                                                 alice: DashClient) -> None:
    bob = signed_in(env, "bob")
    bob.get("/project/containers/")
    bob.post("/project/containers/create", {"name": "zdc-bob"})
    up = bob.http.put("/project/containers/zdc-bob/object", params={"name": "secret"},
                      content=b"bob's", headers={"X-CSRF-Token": bob.csrf})
    assert up.status_code == 201, up.text
    assert "zdc-bob" not in alice.get("/project/containers/").text
    assert alice.get("/project/containers/zdc-bob/").status_code == 404
    assert alice.http.get("/project/containers/zdc-bob/object",
                          params={"name": "secret"}).status_code == 404
    alice.post("/project/containers/zdc-bob/object/delete", {"name": "secret"})
    got = bob.http.get("/project/containers/zdc-bob/object", params={"name": "secret"})
    assert got.content == b"bob's"
    bob.post("/project/containers/zdc-bob/object/delete", {"name": "secret"})
    bob.post("/project/containers/zdc-bob/delete")
    bob.close()


def test_upload_and_download_are_streamed(env: dict[str, Any], alice: DashClient) -> None:
    pid = env["dash"].proc.pid
    alice.get("/project/containers/")
    alice.post("/project/containers/create", {"name": "zdc-big"})
    size = 64 * MiB
    before = peak_kib(pid)
    up = alice.http.put("/project/containers/zdc-big/object", params={"name": "blob"},
                        content=chunks(size), headers={"X-CSRF-Token": alice.csrf},
                        timeout=600)
    assert up.status_code == 201, up.text
    received = 0
    with alice.http.stream("GET", "/project/containers/zdc-big/object",
                           params={"name": "blob"}, timeout=600) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-length"] == str(size)
        for part in resp.iter_raw():
            received += len(part)
    assert received == size
    after = peak_kib(pid)
    assert len(after) >= 2, after  # the handover parent and its serving worker
    grown = max(after[p] - before.get(p, 0) for p in after)
    assert grown < size // 1024 // 2, f"the dashboard's peak grew by {grown} KiB"
    alice.post("/project/containers/zdc-big/object/delete", {"name": "blob"})
    alice.post("/project/containers/zdc-big/delete")


def test_admin_write_actions(env: dict[str, Any], alice: DashClient) -> None:
    alice.get("/project/")
    refused = alice.post("/admin/projects/create", {"name": "zdc-nope"})
    assert refused.status_code == 403 and "admin role" in refused.text
    admin = signed_in(env, "admin")
    admin.get("/admin/")
    suffix = secrets.token_hex(3)
    page = admin.post("/admin/projects/create", {"name": f"zdc-p-{suffix}",
                                                 "description": "made by the dashboard"})
    assert f"zdc-p-{suffix}" in page.text and "flash error" not in page.text, page.text[-3000:]
    project_id = page.text.split(f"<td>zdc-p-{suffix}</td><td>")[1].split("<")[0]
    dup = admin.post("/admin/projects/create", {"name": f"zdc-p-{suffix}"})
    assert "flash error" in dup.text  # the identity API's own words
    password = secrets.token_urlsafe(12)
    page = admin.post("/admin/users/create", {
        "name": f"zdc-u-{suffix}", "password": password, "confirm_password": password,
        "project": project_id})
    assert f"zdc-u-{suffix}" in page.text and "flash error" not in page.text
    user_id = page.text.split(f"<td>zdc-u-{suffix}</td><td>")[1].split("<")[0]
    assert password not in page.text
    granted = admin.post("/admin/roles/grant", {"project": project_id, "user": user_id,
                                                "role": "member"})
    assert "flash error" not in granted.text
    newcomer = DashClient(env["dash"].url)
    assert "Overview" in newcomer.login(f"zdc-u-{suffix}", password).text
    newcomer.close()
    unknown = admin.post("/admin/roles/grant", {"project": project_id, "user": user_id,
                                                "role": "zdc-no-such-role"})
    assert "no role named" in unknown.text
    revoked = admin.post("/admin/roles/revoke", {"project": project_id, "user": user_id,
                                                 "role": "member"})
    assert "flash error" not in revoked.text
    flavor = admin.post("/admin/flavors/create", {"name": f"zdc-f-{suffix}", "vcpus": "1",
                                                  "ram": "64", "disk": "1", "public": "on"})
    assert f"zdc-f-{suffix}" in flavor.text and "flash error" not in flavor.text
    row = flavor.text.split(f"<td>zdc-f-{suffix}</td>")[0].rsplit('data-id="', 1)[1]
    flavor_id = row.split('"')[0]
    bad = admin.post("/admin/flavors/create", {"name": f"zdc-f-{suffix}-bad", "vcpus": "0"})
    assert "flash error" in bad.text and "vcpus" in bad.text
    gone = admin.post(f"/admin/flavors/{flavor_id}/delete")
    assert f"zdc-f-{suffix}" not in gone.text
    gone = admin.post(f"/admin/users/{user_id}/delete")
    assert f"zdc-u-{suffix}" not in gone.text
    gone = admin.post(f"/admin/projects/{project_id}/delete")
    assert f"zdc-p-{suffix}" not in gone.text
    admin.close()
