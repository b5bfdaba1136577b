"""The common role's certificates (issue 13, roles/common/tasks/tls.yml), run for real.

Two inventory hosts on this machine (local connection, each with its own TLS directory
under /tmp/ztl-*) get their certificates from the cloud's CA, made on the first one:

- the first run makes the CA (its key 0600 in a 0700 directory) and a certificate per host
  naming the host's addresses (127.0.0.1, localhost, the inventory name), signed by the CA;
- a second run changes nothing;
- a certificate within ``common_tls_renew_days`` of its end is issued again on the next
  run; the other host's certificate is kept (same bytes);
- a name added to ``common_tls_extra_names`` re-issues both;
- on the multinode inventory each host's certificate names its own names and address
  (ztlb is 127.0.0.2), not the other's, and both chain to the one CA;
- the CA's own renewal: a CA that ends within ``common_tls_ca_renew_days`` is replaced on the
  next run, the old one stays in each host's CA bundle (a rollover), every host certificate is
  issued again from the new CA, and a further run changes nothing.

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
ADDRESSES = {"ztla": "127.0.0.1", "ztlb": "127.0.0.2"}

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
        host: {"ansible_connection": "local", "ansible_host": ADDRESSES[host],
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
    check_own_names_and_one_ca(workdir)
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


def names_of(path: Path) -> set[str]:
    text = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(path))
    return {part.strip() for part in text.splitlines()[-1].split(",")}


def issuer_of(path: Path) -> str:
    return openssl("x509", "-noout", "-issuer", "-in", str(path)).strip()


def check_own_names_and_one_ca(workdir: Path) -> None:
    """The multinode inventory: each host's certificate names its own names and address,
    not the other's, and both chain to the one CA (same issuer, same CA bundle)."""
    ca = workdir / "ca" / "ca.crt"
    for host in HOSTS:
        other = next(h for h in HOSTS if h != host)
        names = names_of(cert(workdir, host))
        assert {f"DNS:{host}", f"IP Address:{ADDRESSES[host]}"} <= names, names
        assert f"DNS:{other}" not in names, names
        if ADDRESSES[other] != "127.0.0.1":
            assert f"IP Address:{ADDRESSES[other]}" not in names, names
        openssl("verify", "-CAfile", str(ca), str(cert(workdir, host)))
        assert (workdir / host / "tls" / "ca.crt").read_bytes() == ca.read_bytes()
    assert issuer_of(cert(workdir, "ztla")) == issuer_of(cert(workdir, "ztlb"))


def test_a_ca_near_its_end_is_renewed_with_a_rollover_and_every_host_reissued(
    workdir: Path,
) -> None:
    run(workdir)
    ca_dir = workdir / "ca"
    # The CA as if made long ago: same key and name (the host certificates still chain to
    # it), but it ends in 100 days, inside the 365-day window.
    openssl("req", "-x509", "-new", "-key", str(ca_dir / "ca.key"), "-sha256", "-days", "100",
            "-subj", "/CN=Stratus ztl CA/O=Stratus",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(ca_dir / "ca.crt"))
    old_ca = (ca_dir / "ca.crt").read_bytes()
    old_key = (ca_dir / "ca.key").read_bytes()
    before = {host: cert(workdir, host).read_bytes() for host in HOSTS}
    for host in HOSTS:
        openssl("verify", "-CAfile", str(ca_dir / "ca.crt"), str(cert(workdir, host)))

    assert run(workdir)["changed"] > 0  # the renewal
    new_ca = (ca_dir / "ca.crt").read_bytes()
    assert new_ca != old_ca and (ca_dir / "ca.key").read_bytes() != old_key
    assert (ca_dir / "ca-previous.crt").read_bytes() == old_ca
    assert (ca_dir / "ca.key").stat().st_mode & 0o777 == 0o600
    assert not list(ca_dir.glob("ca-next*")), "the renewal left its temporary files"
    assert subprocess.run(["openssl", "x509", "-noout", "-checkend", str(365 * 86400), "-in",
                           str(ca_dir / "ca.crt")], capture_output=True,
                          check=False).returncode == 0, "the new CA ends within the window"
    for host in HOSTS:
        bundle = (workdir / host / "tls" / "ca.crt").read_text()
        assert bundle.count("BEGIN CERTIFICATE") == 2, "the CA bundle lacks the old or new CA"
        assert bundle.startswith(new_ca.decode().strip())
        assert old_ca.decode().strip() in bundle
        assert cert(workdir, host).read_bytes() != before[host], f"{host} was not re-issued"
        # Signed by the new CA alone; a client that still trusts only the old CA fails.
        openssl("verify", "-CAfile", str(ca_dir / "ca.crt"), str(cert(workdir, host)))
        old_only = workdir / "old-ca.crt"
        old_only.write_bytes(old_ca)
        assert subprocess.run(["openssl", "verify", "-CAfile", str(old_only),
                               str(cert(workdir, host))], capture_output=True,
                              check=False).returncode != 0

    assert run(workdir)["changed"] == 0  # the rollover is stable
    assert (ca_dir / "ca.crt").read_bytes() == new_ca


def test_an_interrupted_ca_renewal_is_finished_by_the_next_run(workdir: Path) -> None:
    run(workdir)
    ca_dir = workdir / "ca"
    # Killed after the new key was moved in, before the new certificate was: ca.key is the
    # new key, ca.crt still the old CA, ca-next.crt waiting.
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
            str(ca_dir / "ca.key"))
    openssl("req", "-x509", "-new", "-key", str(ca_dir / "ca.key"), "-sha256", "-days", "3650",
            "-subj", "/CN=Stratus ztl CA next/O=Stratus", "-out", str(ca_dir / "ca-next.crt"))
    waiting = (ca_dir / "ca-next.crt").read_bytes()
    assert run(workdir)["changed"] > 0
    assert (ca_dir / "ca.crt").read_bytes() == waiting
    assert not (ca_dir / "ca-next.crt").exists()
    for host in HOSTS:
        openssl("verify", "-CAfile", str(ca_dir / "ca.crt"), str(cert(workdir, host)))
    assert run(workdir)["changed"] == 0
