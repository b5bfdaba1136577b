"""A system-scoped (or domain-scoped) token cannot create the resources of a project
(issue 12): as Nova, Neutron and Glance refuse it, with 403 and a message saying a
project-scoped token is needed; nothing is made. It still reads everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

import compute_api
import image_api
import network_api
from stratus.common.auth import AuthContext, require_project_scope
from stratus.common.errors import Forbidden
from stratus.network.core import Settings as NetSettings

pytestmark = pytest.mark.unit

SYSTEM = "tok-system"
SYSTEM_ADMIN = AuthContext(user_id="u-admin", system=True,
                           roles=frozenset({"admin", "member", "reader"}))


@pytest.fixture(autouse=True)
def system_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(network_api.CONTEXTS, SYSTEM, SYSTEM_ADMIN)  # compute's fakes too
    monkeypatch.setitem(image_api.CALLERS, SYSTEM, SYSTEM_ADMIN)


@pytest.mark.parametrize(("ctx", "scope"), [
    (SYSTEM_ADMIN, "system"),
    (AuthContext(user_id="u", domain_id="default", roles=frozenset({"admin"})), "domain"),
    (AuthContext(user_id="u"), "unscoped"),
])
def test_require_project_scope_refuses_tokens_without_a_project(ctx: AuthContext,
                                                                scope: str) -> None:
    with pytest.raises(Forbidden, match=f"x:create needs a project-scoped token: a {scope}-"):
        require_project_scope(ctx, "x:create")
    assert require_project_scope(network_api.CONTEXTS[network_api.ALICE], "x") == "p-alice"


def test_network_creates_are_refused(tmp_path: Path) -> None:
    settings = NetSettings(segment_ranges={"vxlan": [(100, 199)]})
    with network_api.in_process(tmp_path, settings) as api:
        for path, body in (("/v2.0/networks", {"network": {"name": "n"}}),
                           ("/v2.0/networks", {"network": {"name": "n",
                                                           "project_id": "p-alice"}}),
                           ("/v2.0/security-groups", {"security_group": {"name": "g"}}),
                           ("/v2.0/routers", {"router": {"name": "r"}})):
            resp = api.call("POST", path, SYSTEM, json=body)
            assert resp.status_code == 403, (path, resp.text)
            assert "needs a project-scoped token" in resp.json()["NeutronError"]["message"]
        assert api.ok("GET", "/v2.0/networks", SYSTEM)["networks"] == []


def test_compute_creates_are_refused(tmp_path: Path) -> None:
    with compute_api.in_process(tmp_path) as api:
        for path, body, action in (
                ("/v2.1/servers", {"server": {"name": "s", "imageRef": compute_api.IMAGE,
                                              "flavorRef": "1", "networks": "none"}},
                 "servers:create"),
                ("/v2.1/os-keypairs", {"keypair": {"name": "k"}}, "os-keypairs:create"),
                ("/v2.1/os-server-groups", {"server_group": {"name": "g",
                                                             "policies": ["affinity"]}},
                 "os-server-groups:create")):
            resp = api.call("POST", path, SYSTEM, json=body)
            assert resp.status_code == 403, (path, resp.text)
            message = resp.json()["forbidden"]["message"]
            assert message.startswith(f"os_compute_api:{action} needs a project-scoped"), message
        assert api.ok("GET", "/v2.1/servers", SYSTEM)["servers"] == []
        assert api.ok("GET", "/v2.1/os-keypairs", SYSTEM)["keypairs"] == []


def test_image_create_is_refused(tmp_path: Path) -> None:
    with image_api.image_client(image_api.make_service(tmp_path)) as api:
        resp = api.call("POST", "/v2/images", SYSTEM,
                        json={"name": "i", "disk_format": "raw", "container_format": "bare"})
        assert resp.status_code == 403, resp.text
        assert "add_image needs a project-scoped token" in resp.text
        assert api.call("GET", "/v2/images", "admin").json()["images"] == []
