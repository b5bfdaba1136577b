"""Issue 18: module credentials (stratus_auth), the provisioning plan (stratus_provision), the
servers inventory's host entries (stratus_inventory) and the identity modules' convergences.

Pure logic over files in tmp_path and small fakes of the identity API (the real services'
answers are exercised by tests/e2e/test_provision_aio.py).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.unit]
REPO = Path(__file__).resolve().parents[2]
PREFIX = "ansible_collections.stratus.cloud.plugins.module_utils"


@pytest.fixture(scope="module")
def mu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "stratus").mkdir(parents=True)
    (root / "ansible_collections" / "stratus" / "cloud").symlink_to(REPO)
    sys.path.insert(0, str(root))

    class Modules:
        auth = importlib.import_module(f"{PREFIX}.stratus_auth")
        client = importlib.import_module(f"{PREFIX}.stratus_client")
        provision = importlib.import_module(f"{PREFIX}.stratus_provision")
        inventory = importlib.import_module(f"{PREFIX}.stratus_inventory")
        identity = importlib.import_module(f"{PREFIX}.stratus_identity")

    yield Modules
    sys.path.remove(str(root))


def write_clouds(path: Path, name: str = "mycloud", url: str = "http://id:5000/v3",
                 password: str | None = "pw") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["clouds:", f"  {name}:", "    auth:", f"      auth_url: {url}",
             "      username: admin", "      project_name: admin", "      project_id: p-admin",
             "    region_name: RegionTwo"]
    if password:
        lines.insert(5, f"      password: {password}")
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- credentials ---------------------------------------------------------------------------

def test_a_cloud_name_is_found_in_the_search_path_in_order(mu: Any, tmp_path: Path) -> None:
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    write_clouds(home / ".config" / "openstack" / "clouds.yaml", url="http://home:5000")
    config = mu.auth.resolve_cloud(cloud="mycloud", environ={}, cwd=str(cwd), home=str(home))
    assert config.auth_url == "http://home:5000/v3" and config.region_name == "RegionTwo"
    write_clouds(cwd / "clouds.yaml", url="http://cwd:5000")
    config = mu.auth.resolve_cloud(cloud="mycloud", environ={}, cwd=str(cwd), home=str(home))
    assert config.auth_url == "http://cwd:5000/v3" and config.auth_type == "password"


def test_os_cloud_and_secure_yaml(mu: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_clouds(home / ".config" / "openstack" / "clouds.yaml", password=None)
    (home / ".config" / "openstack" / "secure.yaml").write_text(
        "clouds:\n  mycloud:\n    auth:\n      password: secret\n")
    config = mu.auth.resolve_cloud(environ={"OS_CLOUD": "mycloud"}, cwd=str(tmp_path),
                                   home=str(home))
    assert config.auth["password"] == "secret" and config.auth["username"] == "admin"
    with pytest.raises(mu.client.StratusError, match=r"'other' is not in .*clouds.yaml "
                       r"\(named by OS_CLOUD\); it has: mycloud"):
        mu.auth.resolve_cloud(environ={"OS_CLOUD": "other"}, cwd=str(tmp_path), home=str(home))


def test_openrc_variables(mu: Any, tmp_path: Path) -> None:
    env = {"OS_AUTH_URL": "http://rc:5000/v3", "OS_USERNAME": "u", "OS_PASSWORD": "p",
           "OS_PROJECT_NAME": "demo", "OS_USER_DOMAIN_ID": "default",
           "OS_REGION_NAME": "R1", "OS_INTERFACE": "internal", "OS_CACERT": "/ca.pem"}
    config = mu.auth.resolve_cloud(environ=env, cwd=str(tmp_path), home=str(tmp_path))
    assert (config.auth_url, config.region_name, config.interface, config.cacert) == (
        "http://rc:5000/v3", "R1", "internal", "/ca.pem")
    assert config.auth["project_name"] == "demo"
    del env["OS_PASSWORD"]
    with pytest.raises(mu.client.StratusError,
                       match=r"from the OS_\* environment variables are incomplete for "
                             r"auth_type password: missing password"):
        mu.auth.resolve_cloud(environ=env, cwd=str(tmp_path), home=str(tmp_path))


def test_auth_dict_alone_and_overrides(mu: Any, tmp_path: Path) -> None:
    config = mu.auth.resolve_cloud(auth={"auth_url": "http://a:5000", "username": "u",
                                         "password": "p", "project_name": None},
                                   environ={}, cwd=str(tmp_path), home=str(tmp_path))
    assert config.auth == {"auth_url": "http://a:5000", "username": "u", "password": "p"}
    path = write_clouds(tmp_path / "c.yaml")
    # a project by name replaces the file's project by ID (and the other way round)
    config = mu.auth.resolve_cloud(cloud="mycloud", clouds_yaml=str(path),
                                   auth={"project_name": "web"}, region_name="R9",
                                   validate_certs=False, environ={})
    assert config.auth["project_name"] == "web" and "project_id" not in config.auth
    assert config.region_name == "R9" and config.verify is False


def test_a_cloud_given_as_a_dict_and_application_credentials(mu: Any) -> None:
    entry = {"auth_type": "v3applicationcredential",
             "auth": {"auth_url": "http://a:5000", "application_credential_id": "ac1",
                      "application_credential_secret": "s"}}
    config = mu.auth.resolve_cloud(cloud=entry, environ={})
    assert config.auth_type == "v3applicationcredential"
    body = mu.client.StratusClient(config)._auth_body()
    assert body == {"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": "ac1", "secret": "s"}}}}
    with pytest.raises(mu.client.StratusError, match="missing application_credential_secret"):
        mu.auth.resolve_cloud(cloud={"auth_type": "v3applicationcredential",
                                     "auth": {"auth_url": "http://a", "application_credential_id":
                                              "x"}}, environ={})
    with pytest.raises(mu.client.StratusError, match=r"auth_type 'saml' .* not supported"):
        mu.auth.resolve_cloud(cloud={"auth_type": "saml", "auth": {"auth_url": "http://a"}},
                              environ={})


def test_no_file_anywhere_says_where_it_looked(mu: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # the system-wide places are this test's too: a deployed cloud on the machine has them
    monkeypatch.setattr(mu.auth, "CONFIG_DIRS", ("{cwd}", "{home}/.config/openstack",
                                                 str(tmp_path / "etc-openstack")))
    monkeypatch.setattr(mu.auth, "STRATUS_CLOUDS_YAML", str(tmp_path / "etc-stratus.yaml"))
    with pytest.raises(mu.client.StratusError, match=r"needs a clouds.yaml and none exists: "
                       r"looked for .*cwd/clouds.yaml, .*/.config/openstack/clouds.yaml"):
        mu.auth.resolve_cloud(environ={}, cwd=str(tmp_path / "cwd"), home=str(tmp_path / "h"))


# ---- the provisioning plan -----------------------------------------------------------------

DECLARED: dict[str, list[dict[str, Any]]] = {
    "projects": [{"name": "alpha"}],
    "networks": [{"name": "net1", "project": "alpha",
                  "subnets": [{"name": "sub1", "cidr": "10.9.0.0/24"}]}],
    "routers": [{"name": "r1", "project": "alpha", "network": "public", "interfaces": ["sub1"]}],
    "servers": [{"name": "s1", "project": "alpha", "image": "tiny", "flavor": "m1.tiny",
                 "networks": ["net1"], "metadata": {"role": "web"}}],
}
EXISTING = {"networks": {"public"}, "images": {"tiny"}, "flavors": {"m1.tiny"},
            "projects": {"admin"}}


def test_references_to_declared_or_existing_pass(mu: Any) -> None:
    mu.provision.check_references(DECLARED, EXISTING)


@pytest.mark.parametrize("kind, change, message", [
    ("servers", {"networks": ["nowhere"]},
     "stratus_servers: 's1' names network 'nowhere', which is neither declared"),
    ("servers", {"flavor": "m9"}, "stratus_servers: 's1' names flavor 'm9'"),
    ("routers", {"interfaces": ["nosub"]}, "stratus_routers: 'r1' names subnet 'nosub'"),
    ("networks", {"project": "beta"}, "stratus_networks: 'net1' names project 'beta'"),
])
def test_a_missing_dependency_fails_naming_the_entry(mu: Any, kind: str, change: dict[str, Any],
                                                      message: str) -> None:
    declared = dict(DECLARED, **{kind: [dict(DECLARED[kind][0], **change)]})
    with pytest.raises(mu.client.StratusError, match=message):
        mu.provision.check_references(declared, EXISTING)


def test_marks_and_ownership(mu: Any) -> None:
    marked = mu.provision.mark(DECLARED, "team")
    assert marked["servers"][0]["metadata"] == {"role": "web", "stratus_provision": "team"}
    assert marked["networks"][0]["description"] == "[stratus_provision:team]"
    assert DECLARED["servers"][0]["metadata"] == {"role": "web"}  # the input is left alone
    users = mu.provision.mark({"users": [{"name": "u", "password": "secret"}]}, "team")["users"]
    assert users == [{"name": "u"}]  # the plan's result never carries a password
    assert mu.provision.owner_of("networks", {"description": "x [stratus_provision:team]"}) \
        == "team"
    assert mu.provision.owner_of("networks", {"description": "made by hand"}) is None
    assert mu.provision.owner_of("images", {"stratus_provision": "team"}) == "team"
    assert mu.provision.owner_of("flavors", {"extra_specs": {"stratus_provision": "t"}}) == "t"


def test_prune_lists_only_what_the_owner_made_and_no_longer_declares(mu: Any) -> None:
    mark = {"metadata": {"stratus_provision": "provision"}}
    found = {
        "servers": [dict(mark, name="s1", project="alpha"), dict(mark, name="s2", project="alpha"),
                    {"name": "byhand", "project": "alpha", "metadata": {}},
                    dict(name="other", project="alpha",
                         metadata={"stratus_provision": "someone-else"})],
        "networks": [{"name": "net1", "project": "alpha",
                      "description": "[stratus_provision:provision]"},
                     {"name": "net2", "project": "alpha",
                      "description": "[stratus_provision:provision]"},
                     {"name": "public", "project": "admin", "description": ""}],
    }
    prune = mu.provision.prune_candidates(DECLARED, found, "provision")
    assert prune["servers"] == [{"name": "s2", "project": "alpha"}]
    assert prune["networks"] == [{"name": "net2", "project": "alpha"}]
    assert prune["routers"] == [] and list(prune) == list(mu.provision.PRUNABLE)


def test_pending_in_check_mode(mu: Any) -> None:
    create, checkable = mu.provision.pending(DECLARED, EXISTING)
    assert create["servers"] == ["s1"] and create["projects"] == ["alpha"]
    assert checkable["projects"] == ["alpha"] and checkable["servers"] == []
    existing = dict(EXISTING, projects={"alpha"}, networks={"public", "net1"})
    assert mu.provision.pending(DECLARED, existing)[1]["servers"] == ["s1"]


def test_entries_must_be_named_and_unique(mu: Any) -> None:
    with pytest.raises(mu.client.StratusError, match=r"stratus_servers\[0\] must be a mapping"):
        mu.provision.check_references({"servers": [{"image": "x"}]}, {})
    with pytest.raises(mu.client.StratusError, match="'a' is declared twice"):
        mu.provision.check_references({"projects": [{"name": "a"}, {"name": "a"}]}, {})


# ---- the inventory's host entries ----------------------------------------------------------

SERVER = {"id": "u-1", "name": "web1", "status": "ACTIVE", "tenant_id": "p1",
          "_project": "alpha", "_flavor": "m1.tiny", "_image": "tiny",
          "OS-EXT-AZ:availability_zone": "nova", "metadata": {"role": "web"},
          "addresses": {"net1": [{"addr": "10.9.0.5", "OS-EXT-IPS:type": "fixed"},
                                 {"addr": "172.24.4.120", "OS-EXT-IPS:type": "floating"}]}}


def test_host_entry_groups_and_ansible_host(mu: Any) -> None:
    name, hostvars, groups = mu.inventory.host_entry(SERVER, "stratus", "RegionOne", {})
    assert name == "web1" and hostvars["ansible_host"] == "172.24.4.120"
    assert groups == ["stratus", "project-alpha", "flavor-m1_tiny", "image-tiny", "az-nova",
                      "status-active", "meta-role_web"]
    assert hostvars["stratus"]["private_v4"] == "10.9.0.5" and "server" not in hostvars["stratus"]
    name, hostvars, _ = mu.inventory.host_entry(SERVER, "stratus", None,
                                                {"private": True, "expand_hostvars": True})
    assert hostvars["ansible_host"] == "10.9.0.5" and hostvars["stratus"]["server"]["id"] == "u-1"
    assert mu.inventory.host_entry(SERVER, "s", None, {"inventory_hostname": "uuid"})[0] == "u-1"
    assert mu.inventory.host_entry(SERVER, "s", None, {}, taken={"web1"})[0] == "u-1"


# ---- identity convergences -----------------------------------------------------------------

class FakeIdentity:
    def __init__(self) -> None:
        self.projects: dict[str, dict[str, Any]] = {}
        self.grants: set[tuple[str, str, str]] = set()
        self.calls: list[tuple[str, str]] = []

        class Client:
            user_id = "me"

        self.client = Client()

    def find(self, kind: str, name: str, domain_id: str | None = None) -> Any:
        if kind == "users":
            return {"id": name, "name": name}
        return self.projects.get(name)

    def require(self, kind: str, name: str) -> Any:
        return self.find(kind, name)

    def role_id(self, name: str) -> str:
        return "r-" + name

    def has_grant(self, project_id: str, user_id: str, role_id: str) -> bool:
        return (project_id, user_id, role_id) in self.grants

    def grant(self, project_id: str, user_id: str, role_id: str) -> None:
        self.grants.add((project_id, user_id, role_id))

    def call(self, method: str, path: str, body: Any = None, **_kw: Any) -> Any:
        self.calls.append((method, path))
        if method == "POST":
            project = dict(body["project"], id="id-" + body["project"]["name"])
            self.projects[project["name"]] = project
            return {"project": project}
        return {}


def test_project_is_created_with_grants_then_unchanged(mu: Any) -> None:
    api = FakeIdentity()
    params = {"name": "alpha", "state": "present", "description": "A", "domain_id": None,
              "enabled": None, "members": [{"user": "bob", "role": "member"}],
              "current_user_role": "admin"}
    check = mu.identity.ProjectConvergence(api, params, True).run()
    assert check["changed"] and api.calls == []
    first = mu.identity.ProjectConvergence(api, params, False).run()
    assert first["changed"] and first["id"] == "id-alpha"
    assert api.grants == {("id-alpha", "bob", "r-member"), ("id-alpha", "me", "r-admin")}
    second = mu.identity.ProjectConvergence(api, params, False).run()
    assert not second["changed"], second["diff"]


def test_ansible_doc_renders_the_inventory_plugin() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "-t", "inventory",
                           "--json", "stratus.cloud.servers"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)["stratus.cloud.servers"]["doc"]
    options = doc["options"]
    for name in ("cloud", "clouds_yaml_path", "only_clouds", "all_projects", "expand_hostvars",
                 "inventory_hostname", "private", "compose", "groups", "keyed_groups", "cache",
                 "cache_plugin"):
        assert options[name]["description"], name


class FakeClient:
    """Answers the listings read_cloud makes; a 403 for the project listing (not an admin)."""

    def __init__(self, mu: Any) -> None:
        self.mu = mu
        self.queries: list[tuple[str, str, Any]] = []

    def get(self, service: str, path: str, query: Any = None) -> Any:
        self.queries.append((service, path, query))
        if path.startswith("/v3/projects"):
            raise self.mu.client.StratusError("forbidden", status=403, method="GET", url=path)
        if path.startswith("/servers/detail"):
            return {"servers": [{"id": "u-1", "name": "web1", "tenant_id": "p1",
                                 "flavor": {"id": "f1"}, "image": {"id": "i1"}},
                                {"id": "u-2", "name": "vol", "tenant_id": "p1",
                                 "flavor": {"original_name": "m1.small"}, "image": ""}]}
        if path.startswith("/flavors"):
            return {"flavors": [{"id": "f1", "name": "m1.tiny"}]}
        return {"images": [{"id": "i1", "name": "tiny"}]}


def test_read_cloud_names_flavors_images_and_keeps_ids_it_may_not_name(mu: Any) -> None:
    client = FakeClient(mu)
    servers = mu.inventory.read_cloud(client, "stratus", {"all_projects": True})
    assert [(s["_project"], s["_flavor"], s["_image"]) for s in servers] == [
        ("p1", "m1.tiny", "tiny"), ("p1", "m1.small", None)]
    assert ("compute", "/servers/detail", {"all_tenants": "1"}) in client.queries
