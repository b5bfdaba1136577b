"""Which CAs of killed e2e runs the e2e session removes from the trust store
(e2e_support.stale_test_cas), on files in a temporary directory (openssl makes the CAs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from e2e_support import stale_test_cas

pytestmark = pytest.mark.unit


def make_ca(path: Path, cn: str) -> bytes:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(path) + ".key",
                    "-days", "1", "-subj", f"/CN={cn}/O=Stratus", "-out", str(path)],
                   check=True, capture_output=True)
    return path.read_bytes()


def test_only_test_prefixes_without_a_deploy_are_stale(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    trust = tmp_path / "trust"
    trust.mkdir()
    live = tmp_path / "sdep-live" / "etc" / "stratus" / "tls"
    live.mkdir(parents=True)
    gone = trust / "stratus-z1a2-ca.crt"  # a killed boot-module run: removed
    make_ca(gone, "Stratus z1a2 CA")
    up = trust / "stratus-z3b4-ca.crt"  # its deploy is still there: kept
    (live / "ca.crt").write_bytes(make_ca(up, "Stratus z3b4 CA"))
    make_ca(trust / "stratus-st-ca.crt", "Stratus st CA")  # a real deploy's prefix: kept
    make_ca(trust / "stratus-y12s-ca.crt", "Stratus y12s CA")  # test_deploy_aio's: removed
    make_ca(trust / "stratus-zab-ca.crt", "Someone else")  # not a Stratus CA: kept
    # a renewed CA: the deploy's bundle holds the new and the previous CA, both kept
    new = make_ca(trust / "stratus-z5c6-ca.crt", "Stratus z5c6 CA")
    previous = make_ca(trust / "stratus-z5c6-ca-previous.crt", "Stratus z5c6 CA")
    renewed = tmp_path / "sdep-renewed" / "etc" / "stratus" / "tls"
    renewed.mkdir(parents=True)
    (renewed / "ca.crt").write_bytes(new + previous)
    make_ca(trust / "stratus-z7d8-ca-previous.crt", "Stratus z7d8 CA")  # its deploy is gone
    found = stale_test_cas(trust, (f"{tmp_path}/*/etc/stratus/tls/ca.crt",))
    assert [p.name for p in found] == ["stratus-y12s-ca.crt", "stratus-z1a2-ca.crt",
                                       "stratus-z7d8-ca-previous.crt"]
