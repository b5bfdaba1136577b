"""End-to-end test of the object_store role: deploy common, database, identity and
object_store into a temporary prefix (its own deploy prefix, ports off the defaults,
Stratus's own supervisord), run it a second time (no change), use the deployed service
with ``openstack container|object``, check the ring the role built, then tear down and
check that nothing of it still runs. Uses the image_store e2e module's ``Deployed``
helper; only the deploy and teardown runs take the e2e playbook lock."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_image_store_deploy import BIN, REPO, Deployed, free_port, listening

# The deploy and the teardown wait for the e2e playbook lock, which other runs may hold.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(3600)]

DEPLOY = [{
    "name": "Deploy identity and object storage",
    "hosts": "controller",
    "gather_facts": True,
    "gather_subset": ["!all", "!min", "service_mgr", "distribution"],
    "roles": ["common", "database", "identity", "object_store"],
}]
TEARDOWN = [{
    "name": "Tear down identity and object storage",
    "hosts": "controller",
    "gather_facts": False,
    "tasks": [
        {"ansible.builtin.import_role": {"name": "identity", "tasks_from": "teardown"}},
        {"ansible.builtin.import_role": {"name": "common", "tasks_from": "teardown"}},
    ],
}]


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
    identity_port, object_port = free_port(), free_port()
    dep = Deployed(prefix, work, identity_port, object_port, {
        "stratus_prefix": str(prefix),
        "stratus_deploy_prefix": "z" + secrets.token_hex(1),
        "stratus_process_manager": "supervisor",
        "stratus_database_engine": "sqlite",
        "stratus_admin_password": "e2e-" + secrets.token_urlsafe(12),
        "identity_port": identity_port,
        "object_store_port": object_port,
        "object_store_part_power": 6,
        "common_package_source": str(source),
        "identity_clouds_yaml_paths": [str(prefix / "etc" / "stratus" / "clouds.yaml")],
    })
    try:
        dep.playbook(DEPLOY, "deploy", lock=True)
        yield dep
    finally:
        dep.playbook(TEARDOWN, "teardown", lock=True)
        assert not listening(object_port), "stratus-object still listens after teardown"
        assert not (prefix / "etc" / "stratus").exists()
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
    assert f":{deployed.image_port}/v1/AUTH_" in json.dumps(entry)
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
