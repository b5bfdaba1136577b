"""stratus.tools.tempest_conf: the tempest.conf generator (issue 12).

``render`` is checked against Tempest's own option table (the pinned Tempest of the test
extra): every key written is an option Tempest knows in that section, so a misspelt key
cannot silently fall back to Tempest's default. ``discover`` is checked against a fake
cloud (httpx.MockTransport: the real cloud is the e2e module test_tempest_aio.py's).
"""

from __future__ import annotations

import configparser
import dataclasses
import json
import ssl
import stat
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stratus.tools import tempest_conf as tc

pytestmark = pytest.mark.unit

BASE = "http://cloud.example:5000"
ENTRY = {"auth": {"auth_url": f"{BASE}/v3", "username": "admin", "password": "pw",
                  "project_name": "admin", "user_domain_id": "default",
                  "project_domain_id": "default"},
         "region_name": "RegionOne", "interface": "public"}


def facts(**changes: Any) -> tc.CloudFacts:
    base: dict[str, Any] = dict(
        auth_url=f"{BASE}/v3", region="RegionOne", admin_username="admin",
        admin_password="pw", admin_project="admin", admin_domain="Default",
        services=frozenset({"identity", "compute", "network", "image", "block-storage"}),
        image_ref="img-1", image_alt_ref="img-1", flavor_ref="1", flavor_alt_ref="2",
        public_network_id="net-ext", public_network_name="public",
        network_extensions=("external-net", "port-security", "router"),
        compute_microversions=("2.1", "2.47"), volume_catalog_type="block-storage",
        volume_microversions=("3.0", "3.60"))
    base.update(changes)
    return tc.CloudFacts(**base)


def parse(text: str) -> configparser.ConfigParser:
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str  # type: ignore[assignment,method-assign]
    conf.read_string(text)
    return conf


def tempest_options() -> dict[str, set[str]]:
    import tempest.config

    known: dict[str, set[str]] = {}
    for group, opts in tempest.config._opts:
        name = "DEFAULT" if group is None else getattr(group, "name", group)
        known.setdefault(name, set()).update(o.dest for o in opts)
    return known


def test_every_key_written_is_an_option_tempest_knows() -> None:
    known = tempest_options()
    known["DEFAULT"] |= {"log_file", "debug"}  # oslo.log's options, registered by Tempest
    conf = parse(tc.render(facts(ssh_user="root", dashboard_url="http://h:8000",
                                 ca_file="/etc/stratus/tls/ca.crt")))
    assert "dashboard" in conf.sections()
    for section in conf.sections():
        assert section in known, f"tempest has no section [{section}]"
        unknown = set(conf[section]) - set(conf.defaults()) - known[section]
        assert not unknown, f"[{section}] keys tempest does not know: {sorted(unknown)}"


def test_the_conf_describes_the_cloud() -> None:
    conf = parse(tc.render(facts()))
    assert conf["identity"]["uri_v3"] == f"{BASE}/v3"
    assert conf["compute"]["image_ref"] == "img-1"
    assert (conf["compute"]["min_microversion"], conf["compute"]["max_microversion"]) == (
        "2.1", "2.47")
    assert conf["network"]["public_network_id"] == "net-ext"
    assert conf["network"]["floating_network_name"] == "public"
    assert conf["network-feature-enabled"]["api_extensions"] == "external-net,port-security,router"
    assert conf["network-feature-enabled"]["port_security"] == "true"
    assert conf["identity-feature-enabled"]["api_extensions"] == "OS-EC2,OS-TRUST"
    assert conf["service_available"]["cinder"] == "true"
    assert conf["service_available"]["swift"] == "false"
    assert conf["service_available"]["horizon"] == "false"
    assert conf["volume"]["catalog_type"] == "block-storage"
    assert conf["volume"]["max_microversion"] == "3.60"
    assert conf["validation"]["run_validation"] == "false"


def test_without_a_volume_service_cinder_is_unavailable_and_volume_sections_absent() -> None:
    conf = parse(tc.render(facts(volume_catalog_type=None, volume_microversions=None,
                                 services=frozenset({"identity", "compute"}))))
    assert conf["service_available"]["cinder"] == "false"
    assert conf["service_available"]["neutron"] == "false"
    assert "volume" not in conf and "volume-feature-enabled" not in conf


def test_a_dashboard_url_turns_horizon_on() -> None:
    conf = parse(tc.render(facts(dashboard_url="http://h:8000")))
    assert conf["service_available"]["horizon"] == "true"
    assert conf["dashboard"]["dashboard_url"] == "http://h:8000/"
    assert "dashboard" not in parse(tc.render(facts()))


def test_a_tls_cloud_is_verified_with_its_cacert(tmp_path: Path) -> None:
    """clouds.yaml's ``cacert`` (TLS on, the default deploy) becomes Tempest's CA bundle;
    certificate validation is never turned off, with or without it."""
    got = tc.discover({**ENTRY, "cacert": "/etc/stratus/tls/ca.crt"}, fake_cloud())
    assert got.ca_file == "/etc/stratus/tls/ca.crt"
    conf = parse(tc.render(dataclasses.replace(got, dashboard_url="https://h:8000")))
    assert conf["identity"]["ca_certificates_file"] == "/etc/stratus/tls/ca.crt"
    assert conf["identity"]["disable_ssl_certificate_validation"] == "false"
    assert conf["dashboard"]["disable_ssl_certificate_validation"] == "false"
    plain = parse(tc.render(facts()))
    assert "ca_certificates_file" not in plain["identity"]
    assert plain["identity"]["disable_ssl_certificate_validation"] == "false"
    assert tc.discover(ENTRY, fake_cloud()).ca_file is None
    # the discovery's client: a context with the CA, or the default trust
    ca = tmp_path / "ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp_path / "ca.key"),
                    "-days", "1", "-subj", "/CN=ztd CA", "-out", str(ca)],
                   check=True, capture_output=True)
    verify = tc.verify_for({**ENTRY, "cacert": str(ca)})
    assert isinstance(verify, ssl.SSLContext) and verify.verify_mode == ssl.CERT_REQUIRED
    assert any(c["subject"] == ((("commonName", "ztd CA"),),)
               for c in verify.get_ca_certs())
    assert tc.verify_for(ENTRY) is True and tc.verify_for({**ENTRY, "verify": False}) is False


def test_an_ssh_user_turns_validation_on_with_it() -> None:
    conf = parse(tc.render(facts(ssh_user="cirros")))
    assert conf["validation"]["run_validation"] == "true"
    assert conf["validation"]["image_ssh_user"] == "cirros"


def test_extra_settings_override_and_add() -> None:
    conf = parse(tc.render(facts(extra={"compute": {"build_timeout": "900"},
                                        "debug": {"trace_requests": ".*"}})))
    assert conf["compute"]["build_timeout"] == "900"
    assert conf["debug"]["trace_requests"] == ".*"


# ---- discovery against a fake cloud ---------------------------------------------------------

def catalog(*types: str) -> list[dict[str, Any]]:
    urls = {"identity": f"{BASE}/v3", "compute": "http://c:8774/v2.1",
            "network": "http://n:9696", "image": "http://i:9292",
            "block-storage": "http://v:8776/v3/p1", "volumev3": "http://v:8776/v3/p1"}
    return [{"type": t, "endpoints": [
        {"interface": "public", "region": "RegionOne", "url": urls[t]},
        {"interface": "internal", "region": "RegionOne", "url": "http://internal/"},
        {"interface": "public", "region": "Other", "url": "http://other/"}]} for t in types]


def fake_cloud(types: tuple[str, ...] = ("identity", "compute", "network", "image",
                                         "block-storage"),
               externals: int = 1, login: int = 201) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        url, path = str(request.url), request.url.path
        if request.method == "POST" and path == "/v3/auth/tokens":
            body = json.loads(request.content)["auth"]
            assert body["identity"]["password"]["user"]["domain"] == {"id": "default"}
            assert body["scope"]["project"]["name"] == "admin"
            return httpx.Response(login, headers={"X-Subject-Token": "tok"},
                                  json={"token": {"catalog": catalog(*types)}})
        assert request.headers["X-Auth-Token"] == "tok"
        if url.startswith("http://c:8774/v2.1/flavors/detail"):
            return httpx.Response(200, json={"flavors": [
                {"id": "3", "name": "m1.medium", "ram": 2048, "disk": 20, "vcpus": 1},
                {"id": "1", "name": "m1.tiny", "ram": 512, "disk": 1, "vcpus": 1},
                {"id": "2", "name": "m1.small", "ram": 1024, "disk": 10, "vcpus": 1}]})
        if url.startswith("http://c:8774/v2.1/os-hypervisors"):
            return httpx.Response(200, json={"hypervisors": [{"id": 1}, {"id": 2}]})
        if url == "http://c:8774/":
            return httpx.Response(200, json={"versions": [
                {"id": "v2.0", "version": "", "min_version": ""},
                {"id": "v2.1", "version": "2.47", "min_version": "2.1"}]})
        if url == "http://v:8776/":
            return httpx.Response(300, json={"versions": [
                {"id": "v3.0", "version": "3.60", "min_version": "3.0"}]})
        if path == "/v2/images":
            assert request.url.params["status"] == "active"
            images = [{"id": "big", "name": "tiny", "size": 900, "visibility": "public"},
                      {"id": "small", "name": "tiny", "size": 20, "visibility": "public"},
                      {"id": "smaller", "name": "tiny", "size": 10, "visibility": "private"}]
            if request.url.params.get("name") == "absent":
                images = []
            if request.url.params.get("name") == "mine":
                images = [{"id": "p", "name": "mine", "visibility": "private"}]
            return httpx.Response(200, json={"images": images})
        if path == "/v2.0/networks":
            assert request.url.params["router:external"] == "true"
            nets = [{"id": f"ext-{i}", "name": f"public{i}"} for i in range(externals)]
            return httpx.Response(200, json={"networks": nets})
        if path == "/v2.0/extensions":
            return httpx.Response(200, json={"extensions": [{"alias": "router"},
                                                            {"alias": "external-net"}]})
        return httpx.Response(404, json={"error": url})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_discover_reads_the_cloud() -> None:
    got = tc.discover(ENTRY, fake_cloud(), image="tiny", ssh_user="root")
    assert got.flavor_ref == "1" and got.flavor_alt_ref == "2"
    assert got.image_ref == got.image_alt_ref == "small"
    assert (got.public_network_id, got.public_network_name) == ("ext-0", "public0")
    assert got.network_extensions == ("external-net", "router")
    assert got.compute_microversions == ("2.1", "2.47")
    assert got.volume_catalog_type == "block-storage"
    assert got.volume_microversions == ("3.0", "3.60")
    assert got.compute_nodes == 2
    assert got.services == {"identity", "compute", "network", "image", "block-storage"}
    assert got.admin_domain == "Default" and got.ssh_user == "root"


def test_discover_takes_the_flavors_named() -> None:
    got = tc.discover(ENTRY, fake_cloud(), flavors=("m1.small", "3"))
    assert (got.flavor_ref, got.flavor_alt_ref) == ("2", "3")
    got = tc.discover(ENTRY, fake_cloud(), flavors=(None, "m1.medium"))
    assert (got.flavor_ref, got.flavor_alt_ref) == ("1", "3")


def test_discover_without_volume_service() -> None:
    got = tc.discover(ENTRY, fake_cloud(types=("identity", "compute", "network", "image")))
    assert got.volume_catalog_type is None and got.volume_microversions is None


def test_discover_takes_the_older_volume_catalog_type() -> None:
    got = tc.discover(ENTRY, fake_cloud(types=("identity", "compute", "network", "image",
                                               "volumev3")))
    assert got.volume_catalog_type == "volumev3"


@pytest.mark.parametrize(("kwargs", "cloud", "message"), [
    ({}, {"externals": 0}, "no external network"),
    ({"flavors": ("m1.huge", None)}, {}, r"no flavor named 'm1.huge' \(the cloud has: "),
    ({"image": "absent"}, {}, "no active image named 'absent'"),
    ({"image": "mine"}, {}, "the image 'mine' is private: Tempest's projects cannot boot it"),
    ({}, {"login": 401}, "POST http://cloud.example:5000/v3/auth/tokens: 401"),
    ({}, {"types": ("identity", "network", "image")}, "no public compute endpoint"),
])
def test_discover_says_what_is_missing(kwargs: dict[str, Any], cloud: dict[str, Any],
                                       message: str) -> None:
    with pytest.raises(tc.DiscoveryError, match=message):
        tc.discover(ENTRY, fake_cloud(**cloud), **kwargs)


def test_load_cloud_names_the_file_and_cloud(tmp_path: Path) -> None:
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"stratus": ENTRY}}))
    assert tc.load_cloud(path, "stratus")["auth"]["username"] == "admin"
    with pytest.raises(tc.DiscoveryError, match=r"no cloud 'other'"):
        tc.load_cloud(path, "other")
    with pytest.raises(tc.DiscoveryError, match="No such file"):
        tc.load_cloud(tmp_path / "absent.yaml", "stratus")


def test_main_writes_a_private_file_or_one_line_why_not(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "ws" / "etc" / "tempest.conf"
    assert tc.main(["--clouds-yaml", str(tmp_path / "absent.yaml"), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tempest_conf: ") and "absent.yaml" in err and not out.exists()
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"stratus": ENTRY}}))
    client = fake_cloud()  # made before httpx.Client is replaced by a factory of it
    monkeypatch.setattr(tc.httpx, "Client", lambda **_: client)
    assert tc.main(["--clouds-yaml", str(path), "--output", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert parse(out.read_text())["compute"]["flavor_ref"] == "1"
