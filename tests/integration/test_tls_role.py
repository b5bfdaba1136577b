"""The common role's certificates (issue 13, roles/common/tasks/tls.yml), run for real.

Two inventory hosts on this machine (local connection, each with its own TLS directory
under /tmp/ztl-*) get their certificates from the cloud's CA, made on the first one:

- the first run makes the CA (its key 0600 in a 0700 directory) and a certificate per host
  naming the host's addresses (127.0.0.1, localhost, the inventory name), signed by the CA;
- a second run changes nothing;
- a certificate within ``common_tls_renew_days`` of its end is issued again on the next
  run; the other host's certificate is kept (same bytes);
- a name added to ``common_tls_extra_names`` re-issues both.

The host trust store is left alone (``common_tls_trust_store: false``). Takes about 30 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOSTS = ("ztla", "ztlb")

PLAYBOOK = """\
- name: Certificates of the common role
  hosts: all
  gather_facts: false
  tasks:
    - name: The TLS tasks
      ansible.builtin.include_role:
        name: common
        tasks_from: tls
"""


@pytest.fixture()
def workdir() -> Iterator[Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    path = Path(tempfile.mkdtemp(prefix="ztl-tls-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run(workdir: Path, **extra: object) -> dict[str, int]:
    """One run of the TLS tasks for both hosts; the recap's counters of each host summed."""
    inventory = {"all": {"hosts": {
        host: {"ansible_connection": "local", "ansible_host": "127.0.0.1",
               "ansible_python_interpreter": sys.executable,
               "common_tls_dir": str(workdir / host / "tls")}
        for host in HOSTS}, "vars": {
        "common_prefix": str(workdir), "common_group": "root",
        "common_tls_ca_dir": str(workdir / "ca"), "common_tls_trust_store": False,
        "common_deploy_prefix": "ztl", **extra}}}
    (workdir / "inventory.json").write_text(json.dumps(inventory))
    (workdir / "play.yml").write_text(PLAYBOOK)
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(workdir / "inventory.json"),
                           str(workdir / "play.yml")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    totals: dict[str, int] = {}
    recap = proc.stdout.split("PLAY RECAP", 1)[1]
    for line in recap.splitlines():
        for key, value in re.findall(r"(\w+)=(\d+)", line):
            totals[key] = totals.get(key, 0) + int(value)
    return totals


def cert(workdir: Path, host: str) -> Path:
    return workdir / host / "tls" / "stratus.crt"


def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True,
                          check=True).stdout


def test_certificates_are_issued_kept_and_renewed(workdir: Path) -> None:
    assert run(workdir)["changed"] > 0
    ca_dir = workdir / "ca"
    assert ca_dir.stat().st_mode & 0o777 == 0o700
    assert (ca_dir / "ca.key").stat().st_mode & 0o777 == 0o600
    for host in HOSTS:
        names = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(cert(workdir, host)))
        assert "IP Address:127.0.0.1" in names and "DNS:localhost" in names, names
        assert f"DNS:{host}" in names, names
        openssl("verify", "-CAfile", str(workdir / host / "tls" / "ca.crt"),
                str(cert(workdir, host)))
        key = workdir / host / "tls" / "stratus.key"
        assert key.stat().st_mode & 0o777 == 0o640
    first = {host: cert(workdir, host).read_bytes() for host in HOSTS}

    assert run(workdir)["changed"] == 0
    assert {host: cert(workdir, host).read_bytes() for host in HOSTS} == first

    # ztla's certificate (as the CA keeps it) now ends in 5 days: inside the 30-day window.
    issued = ca_dir / "issued"
    openssl("req", "-new", "-x509", "-key", str(issued / "ztla.key"), "-out",
            str(issued / "ztla.crt"), "-days", "5", "-subj", "/CN=ztla", "-CA",
            str(ca_dir / "ca.crt"), "-CAkey", str(ca_dir / "ca.key"), "-addext",
            "subjectAltName=DNS:localhost,DNS:ztla,IP:127.0.0.1")
    assert run(workdir)["changed"] > 0
    renewed = cert(workdir, "ztla").read_bytes()
    assert renewed != first["ztla"]
    assert cert(workdir, "ztlb").read_bytes() == first["ztlb"], "a valid certificate was replaced"
    assert subprocess.run(["openssl", "x509", "-noout", "-checkend", str(30 * 86400), "-in",
                           str(cert(workdir, "ztla"))], capture_output=True,
                          check=False).returncode == 0, "the renewed certificate ends soon"

    # A new name: both are issued again, with it.
    assert run(workdir, common_tls_extra_names=["api.ztl.example"])["changed"] > 0
    for host in HOSTS:
        names = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(cert(workdir, host)))
        assert "DNS:api.ztl.example" in names, names
    assert run(workdir, common_tls_extra_names=["api.ztl.example"])["changed"] == 0
