"""The installable collection (issue 18): built, installed, its docs and playbooks found.

``scripts/build-collection.sh`` (what ``make collection`` runs) builds the tarball; it is
installed with ``ansible-galaxy collection install`` into an empty collections path, and
with only that path configured (cwd a temporary directory, not the checkout):

- the tarball carries the ``stratus`` package the roles install and none of the checkout's
  sources, tests or virtualenv;
- ``ansible-doc`` renders the inventory plugin ``stratus.cloud.servers`` and every module;
- ``antsibull-docs`` renders the collection's docs (a page per module, the inventory plugin
  and every role) and ``antsibull-docs lint-collection-docs --plugin-docs`` finds nothing
  wrong in the plugins and roles;
- ``ansible-playbook stratus.cloud.site`` / ``stratus.cloud.provision`` are found by FQCN
  (``--syntax-check``).

The deploy from the installed collection is the SQLite deploy of tests/e2e/test_deploy_aio.py.
Takes about 20 s. Files under /tmp carry the prefix zpk.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Roles whose meta/argument_specs.yml gives a Jinja expression as the default of a
# bool/int/dict option, which the docs schema rejects: none (such a default is said in the
# option's description, docs/architecture.md "Checks"). A role named here is not linted.
ROLES_TEMPLATED_DEFAULTS: set[str] = set()


def _tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


class Installed:
    """The built tarball and the collections path it was installed into."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.tarball = next((work / "dist").glob("stratus-cloud-*.tar.gz"))
        self.collections = work / "collections"
        self.root = self.collections / "ansible_collections" / "stratus" / "cloud"
        self.cwd = work / "cwd"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update(ANSIBLE_COLLECTIONS_PATH=str(self.collections), ANSIBLE_NOCOLOR="1",
                   PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        return env

    def run(self, *cmd: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([_tool(cmd[0]), *cmd[1:]], cwd=cwd or self.cwd, env=self.env(),
                              capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("zpk-collection")
    env = {**os.environ, "ANSIBLE_GALAXY": _tool("ansible-galaxy")}
    built = subprocess.run([str(REPO / "scripts" / "build-collection.sh"), str(work / "dist")],
                           env=env, capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    found = Installed(work)
    found.collections.mkdir()
    found.cwd.mkdir()
    done = found.run("ansible-galaxy", "collection", "install", "-p", str(found.collections),
                     str(found.tarball))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (found.root / "galaxy.yml").exists() or (found.root / "MANIFEST.json").exists()
    yield found
    shutil.rmtree(work, ignore_errors=True)


def test_tarball_carries_the_package_and_no_checkout(installed: Installed) -> None:
    with tarfile.open(installed.tarball) as tar:
        names = set(tar.getnames())
    assert "roles/common/files/stratus-src.tar.gz" in names
    for unwanted in ("src", "tests", ".venv", "pyproject.toml", "benchmarks", ".git", "dist"):
        assert not any(n == unwanted or n.startswith(unwanted + "/") for n in names), unwanted
    with tarfile.open(installed.root / "roles/common/files/stratus-src.tar.gz") as tar:
        inner = set(tar.getnames())
    assert {"pyproject.toml", "src/stratus/__init__.py"} <= inner
    # the repository itself stays free of the built artifact
    assert not (REPO / "roles/common/files/stratus-src.tar.gz").exists()


def test_ansible_doc_renders_the_inventory_plugin_and_modules(installed: Installed) -> None:
    inv = installed.run("ansible-doc", "-t", "inventory", "stratus.cloud.servers")
    assert inv.returncode == 0, inv.stderr
    assert "stratus.cloud.servers" in inv.stdout
    for option in ("clouds_yaml_path", "all_projects", "keyed_groups"):
        assert option in inv.stdout, option
    listed = installed.run("ansible-doc", "-t", "module", "-l", "stratus.cloud")
    assert listed.returncode == 0, listed.stderr
    modules = sorted(re.findall(r"^(stratus\.cloud\.\w+)", listed.stdout, re.MULTILINE))
    expected = sorted(f"stratus.cloud.{p.stem}" for p in (REPO / "plugins/modules").glob("*.py")
                      if not p.stem.startswith("_"))
    assert modules == expected
    docs = installed.run("ansible-doc", "-t", "module", *modules)
    assert docs.returncode == 0, docs.stderr
    assert docs.stdout.count("> MODULE ") == len(modules)


def test_antsibull_docs_renders_and_lints(installed: Installed) -> None:
    dest = installed.work / "rst"
    dest.mkdir()
    rendered = installed.run("antsibull-docs", "collection", "--use-current", "--dest-dir",
                             str(dest), "stratus.cloud")
    assert rendered.returncode == 0, rendered.stdout[-3000:] + rendered.stderr[-3000:]
    pages = dest / "collections" / "stratus" / "cloud"
    for module in (REPO / "plugins/modules").glob("cloud_*.py"):
        assert (pages / f"{module.stem}_module.rst").is_file(), module.stem
    assert "clouds_yaml_path" in (pages / "servers_inventory.rst").read_text()
    for role in (REPO / "roles").iterdir():
        if (role / "meta" / "argument_specs.yml").exists():
            assert (pages / f"{role.name}_role.rst").is_file(), role.name

    lint = installed.run("antsibull-docs", "lint-collection-docs", "--plugin-docs",
                         "--skip-rstcheck", ".", cwd=installed.root)
    report = lint.stdout + lint.stderr
    problems = [line for line in report.splitlines()
                if re.match(r"^(plugins|roles|docs|meta|changelogs)/\S+:\d+:\d+: ", line)]
    unexpected = [line for line in problems if not any(
        line.startswith(f"roles/{role}/") for role in ROLES_TEMPLATED_DEFAULTS)]
    assert unexpected == [], report[-6000:]


def test_playbooks_are_found_by_fqcn(installed: Installed) -> None:
    inventory = installed.cwd / "hosts.yml"
    shutil.copy(installed.root / "inventories" / "aio" / "hosts.yml", inventory)
    for playbook in ("site", "provision", "teardown"):
        done = installed.run("ansible-playbook", "-i", str(inventory),
                             f"stratus.cloud.{playbook}", "--syntax-check")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert f"ansible_collections/stratus/cloud/playbooks/{playbook}.yml" in done.stdout
