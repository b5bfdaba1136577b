"""End-to-end test of the object_store and image_store roles deployed alone: common,
database (PostgreSQL), identity, object_store (the proxy and one stratus-object-server with three
devices on this host) and image_store (``image_store_backend: object``) into a temporary
prefix (its own deploy prefix, ports off the defaults, Stratus's own supervisord), run it a
second time (no change), use the deployed service with ``openstack container|object``,
check the ring the role built, keep an image's data in object storage (``openstack image
create/save/delete``), drive the image service with the ``cloud_image`` module (check mode,
real run, second run, removal), then tear down and check that nothing of it still runs;
Tempest's ``tempest.api.object_storage`` tests (the smoke ones among them) against it,
without etc/tempest-object-skips.txt. Only the deploy and teardown runs take the e2e
playbook lock (role_deploy.py).

This deploy is also the suite's PostgreSQL deploy on one host and its plain-http one
(``stratus_tls_enabled: false``; every other deploy keeps the default, TLS on): its databases
and roles carry a test prefix (``stratus_e2e_<random>_``), and the teardown drops them.

(The image service's file store, its default, is deployed by every whole-site.yml deploy of
the suite: the session cloud of test_boot_aio.py and both of test_deploy_aio.py.)"""

from __future__ import annotations

import configparser
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import free_ports
from role_deploy import BIN, REPO, Deployed, listening
from test_tempest_aio import results, run_tempest

from stratus.tools.tempest_conf import OBJECT_APIS

# The deploy and the teardown wait for the e2e playbook lock, which other runs may hold.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(3600)]

DEPLOY = [{
    "name": "Deploy identity, object storage and the image service keeping its data there",
    "hosts": "controller",
    "gather_facts": True,
    "gather_subset": ["!all", "!min", "service_mgr", "distribution"],
    "roles": ["common", "database", "identity", "object_store", "image_store"],
}]
TEARDOWN = [{
    "name": "Tear down identity and object storage",
    "hosts": "controller",
    "gather_facts": False,
    "tasks": [
        {"ansible.builtin.import_role": {"name": "identity", "tasks_from": "teardown"}},
        {"ansible.builtin.import_role": {"name": "common", "tasks_from": "teardown"}},
        {"ansible.builtin.import_role": {"name": "database", "tasks_from": "teardown"}},
    ],
}]


def postgres_objects(name_prefix: str) -> list[str]:
    """The databases and roles of the host's PostgreSQL whose names start with the prefix."""
    like = name_prefix.replace("_", r"\_") + "%"
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-c",
         f"SELECT datname FROM pg_database WHERE datname LIKE '{like}' "
         f"UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE '{like}'"],
        capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    if os.geteuid() != 0:
        pytest.skip("the deploy installs packages and users: run as root")
    if shutil.which("apt-get") is None:
        pytest.skip("the deploy targets Debian (apt-get not found)")
    prefix = Path(tempfile.mkdtemp(prefix="zob-e2e-", dir="/tmp"))
    prefix.chmod(0o755)
    work = Path(tempfile.mkdtemp(prefix="zob-e2e-work-", dir="/tmp"))
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    identity_port, object_port, image_port, server_port = free_ports(4)
    db_prefix = f"stratus_e2e_{secrets.token_hex(3)}_"
    dep = Deployed(prefix, work, identity_port, object_port, {
        "stratus_prefix": str(prefix),
        "stratus_deploy_prefix": "z" + secrets.token_hex(1),
        "stratus_process_manager": "supervisor",
        "stratus_database_engine": "postgresql",
        "database_postgresql_name_prefix": db_prefix,
        "stratus_tls_enabled": False,
        "stratus_admin_password": "e2e-" + secrets.token_urlsafe(12),
        "identity_port": identity_port,
        "object_store_port": object_port,
        "object_store_part_power": 6,
        "object_store_server_port": server_port,
        "stratus_object_server_secret": "e2e-obj-" + secrets.token_urlsafe(16),
        "image_store_port": image_port,
        "image_store_backend": "object",
        "stratus_service_password": "e2e-svc-" + secrets.token_urlsafe(12),
        "common_package_source": str(source),
        "identity_clouds_yaml_paths": [str(prefix / "etc" / "stratus" / "clouds.yaml")],
    })
    try:
        dep.playbook(DEPLOY, "deploy", lock=True)
        yield dep
    finally:
        dep.playbook(TEARDOWN, "teardown", lock=True)
        assert not listening(object_port), "stratus-object still listens after teardown"
        assert not listening(server_port), "stratus-object-server still listens"
        assert not listening(image_port), "stratus-image still listens after teardown"
        assert not (prefix / "etc" / "stratus").exists()
        left = postgres_objects(db_prefix)
        assert left == [], f"teardown left PostgreSQL databases or roles: {left}"
        shutil.rmtree(prefix, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def test_second_run_changes_nothing(deployed: Deployed) -> None:
    out = deployed.playbook(DEPLOY, "deploy-again", lock=True)
    recap = re.findall(r"changed=(\d+)", out)
    assert recap and all(n == "0" for n in recap), out[-3000:]


def test_deployed_object_store_with_the_openstack_client(deployed: Deployed,
                                                         tmp_path: Path) -> None:
    catalog = deployed.openstack("catalog", "list")
    entry = next(c for c in catalog if c["Type"] == "object-store")
    assert re.search(rf'"http://[^"]+:{deployed.api_port}/v1/AUTH_', json.dumps(entry)), entry
    # its databases are on the host's PostgreSQL, under the test prefix
    databases = postgres_objects(deployed.extra_vars["database_postgresql_name_prefix"])
    assert any(name.endswith("identity") for name in databases), databases
    deployed.openstack("container", "create", "zob-e2e")
    (tmp_path / "f.bin").write_bytes(os.urandom(300_000))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(deployed.clouds_yaml)
    subprocess.run([str(BIN / "openstack"), "--os-cloud", "stratus", "object", "create",
                    "zob-e2e", "f.bin"], env=env, cwd=tmp_path, check=True, timeout=300,
                   capture_output=True)
    listed = deployed.openstack("object", "list", "zob-e2e")
    assert [o["Name"] for o in listed] == ["f.bin"]
    data_files = list((deployed.prefix / "var" / "lib" / "stratus" / "object").rglob("*.data"))
    assert len(data_files) == 3  # three devices, three replicas
    subprocess.run([str(BIN / "openstack"), "--os-cloud", "stratus", "object", "save",
                    "--file", str(tmp_path / "back.bin"), "zob-e2e", "f.bin"], env=env,
                   check=True, timeout=300)
    assert (tmp_path / "back.bin").read_bytes() == (tmp_path / "f.bin").read_bytes()
    ring = json.loads((deployed.prefix / "var" / "lib" / "stratus" / "object" / "ring.json"
                       ).read_text())
    assert ring["replicas"] == 3 and len(ring["devices"]) == 3
    # the devices are the object server's (host:port): the proxy wrote them over HTTP
    assert {d["port"] for d in ring["devices"]} == {deployed.extra_vars["object_store_server_port"]}


def object_tempest_conf(clouds_yaml: Path) -> str:
    """A tempest.conf for a cloud of identity and object storage only (what
    stratus.tools.tempest_conf writes for the object-storage part; its discovery wants
    compute, image and network, which this deploy has not)."""
    cloud = yaml.safe_load(clouds_yaml.read_text())["clouds"]["stratus"]
    auth = cloud["auth"]
    conf = configparser.ConfigParser()
    conf["DEFAULT"] = {"log_file": "tempest.log"}
    conf["auth"] = {"use_dynamic_credentials": "true", "create_isolated_networks": "false",
                    "admin_username": auth["username"], "admin_password": auth["password"],
                    "admin_project_name": auth["project_name"],
                    "admin_domain_name": auth.get("user_domain_name", "Default"),
                    "default_credentials_domain_name": "Default"}
    conf["identity"] = {"uri_v3": auth["auth_url"].rstrip("/").removesuffix("/v3") + "/v3",
                        "auth_version": "v3", "region": cloud.get("region_name", "RegionOne"),
                        "v3_endpoint_type": "public",
                        "disable_ssl_certificate_validation": "false"}
    if cloud.get("cacert"):  # TLS on (the default): the deploy's own CA
        conf["identity"]["ca_certificates_file"] = str(cloud["cacert"])
    conf["identity-feature-enabled"] = {"api_v2": "false", "api_v3": "true"}
    conf["service_available"] = {"swift": "true", "nova": "false", "neutron": "false",
                                 "glance": "false", "cinder": "false", "horizon": "false"}
    conf["object-storage"] = {"region": cloud.get("region_name", "RegionOne"),
                              "endpoint_type": "publicURL", "operator_role": "member",
                              "reseller_admin_role": "admin"}
    conf["object-storage-feature-enabled"] = {"discoverable_apis": ",".join(OBJECT_APIS),
                                              "container_sync": "false",
                                              "object_versioning": "false"}
    out = io.StringIO()
    conf.write(out)
    return out.getvalue()


def test_tempest_object_storage(deployed: Deployed) -> None:
    ws = deployed.work / "tempest"
    subprocess.run([str(BIN / "tempest"), "init", "--workspace-path",
                    str(deployed.work / "workspace.yaml"), str(ws)], check=True,
                   capture_output=True, text=True, timeout=120)
    (ws / "etc" / "tempest.conf").write_text(object_tempest_conf(deployed.clouds_yaml))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    done = run_tempest(ws, env, "--regex", r"^tempest\.api\.object_storage\.",
                       "--concurrency", "2", "--exclude-list",
                       str(REPO / "etc" / "tempest-object-skips.txt"), timeout=1500)
    (deployed.work / "tempest-object.log").write_text(done.stdout + done.stderr)
    passed, failed, skipped = results(done.stdout)
    listed = run_tempest(ws, env, "--regex", r"^tempest\.api\.object_storage\..*smoke",
                         "--list-tests", timeout=300).stdout
    smoke = {line.partition("[")[0] for line in listed.splitlines()
             if line.startswith("tempest.api.object_storage.")}
    print(f"tempest object_storage: {len(passed)} passed, {len(failed)} failed, "
          f"{len(skipped)} skipped; smoke: {len(smoke & set(passed))} of {len(smoke)} passed")
    assert not failed, "Tempest object-storage tests failed:\n" + "\n".join(failed)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # Tempest 47.0.0 has 15 object-storage smoke tests (all must pass) and, without the
    # skip list and the middlewares not built, over 120 others: a run that silently lost
    # tests fails
    assert len(smoke) >= 14 and smoke <= set(passed), sorted(smoke - set(passed))
    assert len(passed) >= 120, f"only {len(passed)} passed"


def test_image_data_kept_in_object_storage(deployed: Deployed, tmp_path: Path) -> None:
    conf = (deployed.prefix / "etc" / "stratus" / "stratus.conf").read_text()
    assert re.search(r"^store = object$", conf, re.MULTILINE), "[image] store must be object"
    devices = deployed.prefix / "var" / "lib" / "stratus" / "object"
    before = len(list(devices.rglob("*.data")))
    data = tmp_path / "zob.raw"
    data.write_bytes(os.urandom(2 * 1024 * 1024 + 5))
    catalog = deployed.openstack("catalog", "list")
    image_entry = next(c for c in catalog if c["Type"] == "image")
    assert image_entry["Name"] == "glance"
    assert f":{deployed.extra_vars['image_store_port']}" in json.dumps(image_entry)
    image = deployed.openstack("image", "create", "--disk-format", "raw",
                               "--container-format", "bare", "--file", str(data), "zob-e2e")
    assert image["status"] == "active"
    checksum = hashlib.md5(data.read_bytes(), usedforsecurity=False).hexdigest()
    assert deployed.openstack("image", "show", image["id"])["checksum"] == checksum
    # three more replicas on the devices, nothing kept under the image service's dir
    assert len(list(devices.rglob("*.data"))) == before + 3
    assert [p for p in deployed.images_dir.rglob("*") if p.is_file()
            and p.name != ".lock"] == []
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(deployed.clouds_yaml)
    subprocess.run([str(BIN / "openstack"), "--os-cloud", "stratus", "image", "save",
                    "--file", str(tmp_path / "back.raw"), image["id"]], env=env,
                   check=True, timeout=300)
    assert (tmp_path / "back.raw").read_bytes() == data.read_bytes()
    subprocess.run([str(BIN / "openstack"), "--os-cloud", "stratus", "image", "delete",
                    image["id"]], env=env, check=True, timeout=300)
    # the object's replicas are tombstones now
    assert len(list(devices.rglob("*.data"))) == before


def test_cloud_image_module_against_the_deployed_role(deployed: Deployed, tmp_path: Path
                                                      ) -> None:
    data = tmp_path / "module.raw"
    data.write_bytes(os.urandom(1024 * 1024))
    collections = deployed.work / "collections"
    (collections / "ansible_collections" / "stratus").mkdir(parents=True, exist_ok=True)
    link = collections / "ansible_collections" / "stratus" / "cloud"
    if not link.exists():
        link.symlink_to(REPO)
    task = {"stratus.cloud.cloud_image": {
        "name": "zob-module", "filename": str(data), "disk_format": "raw",
        "clouds_yaml": str(deployed.clouds_yaml), "properties": {"os_distro": "busybox"}},
        "register": "result"}
    show = {"ansible.builtin.copy": {"content": "{{ result | to_json }}",
                                     "dest": str(deployed.work / "result.json"), "mode": "0600"},
            "check_mode": False}
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable}, "tasks": [task, show]}]

    def run(*args: str) -> dict[str, Any]:
        deployed.playbook(play, "module", *args, collections=collections)
        return dict(json.loads((deployed.work / "result.json").read_text()))

    assert run("--check")["changed"] is True
    assert deployed.openstack("image", "list", "--name", "zob-module") == []
    first = run()
    assert first["changed"] is True and first["image"]["status"] == "active"
    assert first["image"]["os_distro"] == "busybox"  # custom properties at the top level
    assert run()["changed"] is False
    assert run("--check")["changed"] is False
    task["stratus.cloud.cloud_image"] = {"name": "zob-module", "state": "absent",
                                         "clouds_yaml": str(deployed.clouds_yaml)}
    assert run()["changed"] is True
    assert deployed.openstack("image", "list", "--name", "zob-module") == []
