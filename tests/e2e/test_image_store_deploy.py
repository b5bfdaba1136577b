"""End-to-end test of the image_store role: deploy, then use the image API it runs.

Deploys the roles common, database, identity and image_store (the part of
site.yml the image service needs) into a temporary prefix with Stratus's own
supervisord and ports off the defaults, then drives the deployed service as a
user would: python-openstackclient with the clouds.yaml the identity role
wrote, and the cloud_image module (check mode, real run, second run). Finally
it tears the deployment down and checks that nothing of it still runs. The deploy has its
own deploy prefix and runs beside the boot module's cloud (the bystander, issue 16); only
its deploy and teardown runs take the e2e playbook lock (tests/e2e/e2e_support.py).
(tests/e2e/test_deploy_aio.py deploys the whole site.yml, this role included,
twice on SQLite and PostgreSQL and checks that the second run changes nothing.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import playbook_lock

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TIMEOUT = 900

DEPLOY = [{
    "name": "Deploy identity and the image store",
    "hosts": "controller",
    "gather_facts": True,
    "gather_subset": ["!all", "!min", "service_mgr", "distribution"],
    "roles": ["common", "database", "identity", "image_store"],
}]
TEARDOWN = [{
    "name": "Tear down identity and the image store",
    "hosts": "controller",
    "gather_facts": False,
    "tasks": [
        {"ansible.builtin.import_role": {"name": "identity", "tasks_from": "teardown"}},
        {"ansible.builtin.import_role": {"name": "common", "tasks_from": "teardown"}},
    ],
}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Deployed:
    prefix: Path
    work: Path
    identity_port: int
    image_port: int
    extra_vars: dict[str, Any]

    @property
    def clouds_yaml(self) -> Path:
        return self.prefix / "etc" / "stratus" / "clouds.yaml"

    @property
    def images_dir(self) -> Path:
        return self.prefix / "var" / "lib" / "stratus" / "images"

    def playbook(self, plays: list[dict[str, Any]], name: str, *args: str,
                 collections: Path | None = None, lock: bool = False) -> str:
        """Runs plays; ``lock``: under the e2e playbook lock (the deploy and teardown)."""
        with playbook_lock() if lock else contextlib.nullcontext():
            return self._playbook(plays, name, *args, collections=collections)

    def _playbook(self, plays: list[dict[str, Any]], name: str, *args: str,
                  collections: Path | None = None) -> str:
        path = self.work / f"{name}.yml"
        path.write_text(yaml.safe_dump(plays, sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "OS_"))}
        env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_ROLES_PATH=str(REPO / "roles"),
                   PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        if collections is not None:
            env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
        done = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(REPO / "inventories" / "aio"), str(path),
             "-e", json.dumps(self.extra_vars), *args],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=TIMEOUT, check=False,
        )
        (self.work / f"{name}.log").write_text(done.stdout + done.stderr)
        assert done.returncode == 0, f"{name} failed:\n{done.stdout[-6000:]}"
        return done.stdout

    def openstack(self, *args: str) -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        done = subprocess.run([str(BIN / "openstack"), "--os-cloud", "stratus", *args,
                               "-f", "json"], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    if os.geteuid() != 0:
        pytest.skip("the deploy installs packages and users: run as root")
    if shutil.which("apt-get") is None:
        pytest.skip("the deploy targets Debian (apt-get not found)")
    prefix = Path(tempfile.mkdtemp(prefix="stratus-e2e-image-", dir="/tmp"))
    prefix.chmod(0o755)  # the stratus service user must reach its directories below
    work = Path(tempfile.mkdtemp(prefix="stratus-e2e-image-work-", dir="/tmp"))
    # A snapshot of the package source, so edits of the working tree during the
    # test do not reach the deployment.
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    identity_port, image_port = free_port(), free_port()
    dep = Deployed(prefix, work, identity_port, image_port, {
        "stratus_prefix": str(prefix),
        "stratus_deploy_prefix": "x" + secrets.token_hex(1),
        "stratus_process_manager": "supervisor",
        "stratus_database_engine": "sqlite",
        "stratus_admin_password": "e2e-" + secrets.token_urlsafe(12),
        "identity_port": identity_port,
        "image_store_port": image_port,
        "image_store_max_image_size": 64 * 1024 * 1024,
        "common_package_source": str(source),
        "identity_clouds_yaml_paths": [str(prefix / "etc" / "stratus" / "clouds.yaml")],
    })
    try:
        dep.playbook(DEPLOY, "deploy", lock=True)
        yield dep
    finally:
        dep.playbook(TEARDOWN, "teardown", lock=True)
        assert not listening(image_port), "stratus-image still listens after teardown"
        assert not (prefix / "etc" / "stratus").exists()
        shutil.rmtree(prefix, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def tiny_image() -> Path:
    done = subprocess.run([str(REPO / "tests" / "images" / "build-tiny.sh")], capture_output=True,
                          text=True, timeout=1200, check=False)
    assert done.returncode == 0, f"build-tiny.sh failed: {done.stderr[-3000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


def test_deployed_image_service_with_the_openstack_client(
    deployed: Deployed, tiny_image: Path, tmp_path: Path
) -> None:
    catalog = deployed.openstack("catalog", "list")
    image_entry = next(c for c in catalog if c["Type"] == "image")
    assert image_entry["Name"] == "glance" and f":{deployed.image_port}" in json.dumps(image_entry)

    created = deployed.openstack("image", "create", "--file", str(tiny_image), "--disk-format",
                                 "qcow2", "--container-format", "bare", "e2e-tiny")
    assert created["status"] == "active"
    checksum = hashlib.md5(tiny_image.read_bytes(), usedforsecurity=False).hexdigest()
    assert deployed.openstack("image", "show", "e2e-tiny")["checksum"] == checksum
    # The data sits in the deployed store, written by the service user.
    blobs = [p for p in (deployed.images_dir / "blobs").rglob("*") if p.is_file()]
    assert [b.name for b in blobs] == [hashlib.sha512(tiny_image.read_bytes()).hexdigest()]
    assert pwd.getpwuid(blobs[0].stat().st_uid).pw_name == "stratus"
    saved = tmp_path / "saved.qcow2"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(deployed.clouds_yaml)
    subprocess.run([str(BIN / "openstack"), "--os-cloud", "stratus", "image", "save", "--file",
                    str(saved), "e2e-tiny"], env=env, check=True, timeout=300)
    assert saved.read_bytes() == tiny_image.read_bytes()
    subprocess.run([str(BIN / "openstack"), "--os-cloud", "stratus", "image", "delete",
                    "e2e-tiny"], env=env, check=True, timeout=300)
    assert not [p for p in (deployed.images_dir / "blobs").rglob("*") if p.is_file()]


def test_cloud_image_module_against_the_deployed_role(
    deployed: Deployed, tiny_image: Path
) -> None:
    collections = deployed.work / "collections"
    (collections / "ansible_collections" / "stratus").mkdir(parents=True, exist_ok=True)
    link = collections / "ansible_collections" / "stratus" / "cloud"
    if not link.exists():
        link.symlink_to(REPO)
    task = {"stratus.cloud.cloud_image": {
        "name": "e2e-module", "filename": str(tiny_image), "disk_format": "qcow2",
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
    assert deployed.openstack("image", "list", "--name", "e2e-module") == []
    first = run()
    assert first["changed"] is True and first["image"]["status"] == "active"
    assert run()["changed"] is False
    assert run("--check")["changed"] is False
    task["stratus.cloud.cloud_image"] = {"name": "e2e-module", "state": "absent",
                                         "clouds_yaml": str(deployed.clouds_yaml)}
    assert run()["changed"] is True
    assert deployed.openstack("image", "list", "--name", "e2e-module") == []
