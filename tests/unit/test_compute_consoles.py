"""Remote consoles in the compute API (in-process, fake image/network APIs): Nova's
shapes, the one-time token rules (hashed, expiring, one server, spent by its first
use), the agent's display report, and the proxy's query parsing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import sqlalchemy as sa

from compute_api import ALICE, BOB, ComputeApi, in_process
from stratus.agent.compute.virt.domain_xml import build_domain
from stratus.agent.compute.virt.libvirt import parse_vncdisplay
from stratus.compute import models as m
from stratus.compute.consoles import token_hash
from stratus.compute.novncproxy import token_and_instance
from stratus.contracts.compute import ContractError, ServerReport

pytestmark = pytest.mark.unit
VNC = {"host": "192.0.2.10", "port": 5901}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def running(api: ComputeApi, vnc: dict[str, Any] | None = VNC) -> str:
    sid = str(api.boot()["server"]["id"])
    api.report("cmp1", sid, vm_state="active", power_state=1, vnc=vnc)
    return sid


def console(api: ComputeApi, sid: str, token: str = ALICE, version: str = "2.6") -> Any:
    return api.call("POST", f"/v2.1/servers/{sid}/remote-consoles", token, version=version,
                    json={"remote_console": {"protocol": "vnc", "type": "novnc"}})


def token_of(url: str) -> tuple[str, str]:
    path = unquote(parse_qs(urlparse(url).query)["path"][0])
    token, instance = token_and_instance(path)
    assert token and instance
    return token, instance


def consume(api: ComputeApi, token: str, instance: str | None) -> Any:
    return api.call("POST", f"/v2.1/stratus/console-tokens/{token}/consume",
                    json={"instance": instance})


def test_remote_console_answers_nova_shape_and_a_token_stored_hashed(api: ComputeApi) -> None:
    sid = running(api)
    resp = console(api, sid)
    assert resp.status_code == 200, resp.text
    body = resp.json()["remote_console"]
    assert body["protocol"] == "vnc" and body["type"] == "novnc"
    assert body["url"].startswith("http://127.0.0.1:6080/vnc_lite.html?path=")
    token, instance = token_of(body["url"])
    assert instance == sid and len(token) >= 32
    with api.core.db.session() as s:
        rows = s.scalars(sa.select(m.ConsoleToken)).all()
    assert [r.token_hash for r in rows] == [token_hash(token)]
    assert token not in {r.token_hash for r in rows}
    shown = api.ok("GET", f"/v2.1/os-console-auth-tokens/{token}")["console"]
    assert shown == {"instance_uuid": sid, "host": "192.0.2.10", "port": 5901,
                     "internal_access_path": None}
    got = consume(api, token, sid)
    assert got.status_code == 200 and got.json()["console"]["port"] == 5901


def test_a_token_is_refused_after_first_use_expiry_and_for_another_server(
        api: ComputeApi) -> None:
    a, b = running(api), running(api, {"host": "192.0.2.10", "port": 5902})
    token, _ = token_of(console(api, a).json()["remote_console"]["url"])
    other = consume(api, token, b)
    assert other.status_code == 404 and f"not for instance {b}" in other.text
    assert consume(api, token, a).status_code == 200
    again = consume(api, token, a)
    assert again.status_code == 404 and "used already" in again.text
    assert api.call("GET", f"/v2.1/os-console-auth-tokens/{token}").status_code == 404
    late, _ = token_of(console(api, a).json()["remote_console"]["url"])

    def expire(s: Any) -> None:
        row = s.get(m.ConsoleToken, token_hash(late))
        assert row is not None
        row.expires_at = row.expires_at - timedelta(seconds=3600)

    api.core.db.transaction(expire)
    expired = consume(api, late, a)
    assert expired.status_code == 404 and "expired" in expired.text
    assert consume(api, "not-a-token", a).status_code == 404


def test_console_needs_a_display_a_visible_server_and_a_known_type(api: ComputeApi) -> None:
    sid = running(api, vnc=None)
    resp = console(api, sid)
    assert resp.status_code == 409 and "no VNC display" in resp.text
    api.report("cmp1", sid, vm_state="active", power_state=1, vnc=VNC)
    assert console(api, sid, BOB).status_code == 404  # another project's server
    assert console(api, sid, version="2.5").status_code == 404
    spice = api.call("POST", f"/v2.1/servers/{sid}/remote-consoles", ALICE, version="2.6",
                     json={"remote_console": {"protocol": "spice", "type": "spice-html5"}})
    assert spice.status_code == 400 and "Unavailable console type spice" in spice.text
    bad = api.call("POST", f"/v2.1/servers/{sid}/remote-consoles", ALICE, version="2.6",
                   json={"remote_console": {"protocol": "vnc", "type": "xvpvnc"}})
    assert bad.status_code == 400 and "novnc" in bad.text
    # the agent reports the display gone (stopped): no console, old tokens refused
    token, _ = token_of(console(api, sid).json()["remote_console"]["url"])
    api.report("cmp1", sid, vm_state="stopped", power_state=4, vnc=None)
    assert console(api, sid).status_code == 409
    assert consume(api, token, sid).status_code == 404


def test_get_vnc_console_action_below_2_6(api: ComputeApi) -> None:
    sid = running(api)
    resp = api.call("POST", f"/v2.1/servers/{sid}/action", ALICE, version="2.1",
                    json={"os-getVNCConsole": {"type": "novnc"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["console"]["type"] == "novnc"
    assert token_of(resp.json()["console"]["url"])[1] == sid
    gone = api.call("POST", f"/v2.1/servers/{sid}/action", ALICE, version="2.6",
                    json={"os-getVNCConsole": {"type": "novnc"}})
    assert gone.status_code == 404


def test_only_admins_spend_or_show_tokens(api: ComputeApi) -> None:
    sid = running(api)
    token, _ = token_of(console(api, sid).json()["remote_console"]["url"])
    assert api.call("POST", f"/v2.1/stratus/console-tokens/{token}/consume", ALICE,
                    json={"instance": sid}).status_code == 403
    assert api.call("GET", f"/v2.1/os-console-auth-tokens/{token}", ALICE).status_code == 403
    assert consume(api, token, sid).status_code == 200  # still unspent after the 403s


def test_report_vnc_contract_and_agent_parsing() -> None:
    assert ServerReport.from_dict({"vnc": VNC}).vnc == VNC
    assert ServerReport.from_dict({"vnc": None}).vnc is None
    for bad in ({"host": "", "port": 5900}, {"host": "h", "port": 0}, {"host": "h"},
                {"host": "h", "port": True}, "h:5900"):
        with pytest.raises(ContractError) as exc:
            ServerReport.from_dict({"vnc": bad})
        assert exc.value.field == "vnc"
    assert parse_vncdisplay("192.0.2.10:3\n", "192.0.2.10") == {"host": "192.0.2.10",
                                                               "port": 5903}
    assert parse_vncdisplay(":0", "10.0.0.5") == {"host": "10.0.0.5", "port": 5900}
    assert parse_vncdisplay("", "10.0.0.5") is None
    assert token_and_instance("/websockify?token=abc&instance=s1") == ("abc", "s1")
    assert token_and_instance("/websockify") == (None, None)


def test_domain_xml_vnc_listens_on_the_given_address_only() -> None:
    from stratus.agent.compute.virt.base import InstanceSpec

    spec = InstanceSpec(server_id="s1", name="n", vcpus=1, memory_mb=64, disk_gb=1,
                        image_path="/b", image_format="qcow2")
    dom = build_domain(spec, domain_name="d", virt_type="qemu", disk_path="/x",
                       config_drive_path=None, console_path="/c", vnc_listen="192.0.2.10")
    g = dom.find("devices/graphics")
    assert g is not None and g.get("type") == "vnc" and g.get("autoport") == "yes"
    assert g.get("listen") == "192.0.2.10"
    assert dom.find("devices/graphics/listen").get("address") == "192.0.2.10"  # type: ignore[union-attr]
    none = build_domain(spec, domain_name="d", virt_type="qemu", disk_path="/x",
                        config_drive_path=None, console_path="/c")
    assert none.find("devices/graphics") is None
