"""Nova's os-server-external-events on the compute API in-process (the volume API faked):
the request's checks, per-event codes, admin only, and ``volume-extended`` handing the
attached volume's new size to the host's agent at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_compute_volumes_api import VOL, FakeVolumes, active, assigned, vols

from compute_api import ALICE, ComputeApi, in_process
from stratus.common.errors import BadRequest
from stratus.compute import views
from stratus.compute.api.external_events import parse
from stratus.compute.external_events import Event, deliver

pytestmark = pytest.mark.unit
P = "/v2.1/os-server-external-events"
MISSING = "99999999-9999-4999-8999-999999999999"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1", host_ip="192.0.2.10")
        fake = FakeVolumes()
        fake.volume(VOL)
        client.fake.volumes = fake
        yield client


@pytest.mark.parametrize(("body", "text"), [
    ({}, "events"),
    ({"events": []}, "non-empty"),
    ({"events": [{"name": "bogus", "server_uuid": "x"}]}, "bogus"),
    ({"events": [{"name": "network-changed"}]}, "server_uuid"),
    ({"events": [{"name": "network-changed", "server_uuid": "x", "status": "done"}]},
     "status"),
    ({"events": [{"name": "network-changed", "server_uuid": "x", "extra": 1}]}, "extra"),
    ({"events": [{"name": "network-changed", "server_uuid": "x", "tag": 5}]}, "tag"),
    ({"events": ["network-changed"]}, "object"),
])
def test_bad_requests_say_what_is_wrong(body: dict[str, Any], text: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse(body, (2, 93))
    assert text in str(err.value)


def test_event_names_follow_the_microversion() -> None:
    with pytest.raises(BadRequest, match="network-vif-plugged"):
        parse({"events": [{"name": "volume-extended", "server_uuid": "x"}]}, (2, 50))
    ev = parse({"events": [{"name": "volume-extended", "server_uuid": "x", "tag": VOL}]},
               (2, 51))
    assert ev == [Event("volume-extended", "x", "completed", VOL)]


def test_codes_per_event_and_admin_only(api: ComputeApi) -> None:
    sid = active(api)
    body = {"events": [{"name": "network-vif-plugged", "server_uuid": sid, "tag": "port"},
                       {"name": "network-changed", "server_uuid": MISSING}]}
    got = api.ok("POST", P, status=207, json=body)["events"]
    assert got == [{"name": "network-vif-plugged", "server_uuid": sid, "tag": "port",
                    "status": "completed", "code": 200},
                   {"name": "network-changed", "server_uuid": MISSING, "status": "failed",
                    "code": 404}]
    assert api.ok("POST", P, json={"events": body["events"][:1]})["events"][0]["code"] == 200
    assert api.call("POST", P, json={"events": body["events"][1:]}).status_code == 404
    assert api.call("POST", P, ALICE, json=body).status_code == 403


def test_volume_extended_hands_the_new_size_to_the_agent(api: ComputeApi) -> None:
    sid = active(api)
    vols(api).volumes[VOL]["size"] = 1
    api.ok("POST", f"/v2.1/servers/{sid}/os-volume_attachments", ALICE,
           json={"volumeAttachment": {"volumeId": VOL}})
    att_id = assigned(api, sid)["block_devices"][0]["attachment_id"]
    api.report("cmp1", sid, vm_state="active", power_state=1, volumes=[att_id])
    vols(api).volumes[VOL]["size"] = 3  # os-extend while in-use, then Cinder's event
    event = {"name": "volume-extended", "server_uuid": sid, "tag": VOL}
    if views.MAX_VERSION >= (2, 51):
        got = api.ok("POST", P, version="2.51", json={"events": [event]})["events"]
        assert got[0]["code"] == 200
    else:  # this API's microversions do not reach 2.51 yet: the service layer directly
        assert deliver(api.core, [Event("volume-extended", sid, tag=VOL)])[0].code == 200
    assert assigned(api, sid)["block_devices"][0]["size_gb"] == 3
    # an event for a volume the server does not have changes nothing
    deliver(api.core, [Event("volume-extended", sid, tag=MISSING)])
    assert assigned(api, sid)["block_devices"][0]["size_gb"] == 3
