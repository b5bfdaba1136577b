"""The network agent with fake drivers: model, two-way convergence, restart, errors."""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from stratus.agent.network.drivers.base import DriverError
from stratus.agent.network.drivers.fake import (
    FakeDhcp,
    FakeFirewall,
    FakeHost,
    FakeL2,
    FakeMetadata,
    FakeRouters,
)
from stratus.agent.network.metadata_proxy import main as proxy_main
from stratus.agent.network.metadata_proxy import sign
from stratus.agent.network.naming import Naming
from stratus.agent.network.reconcile import NetworkAgent, NetworkDrivers
from stratus.agent.network.sources import JsonFileSource, StaticSource
from stratus.contracts.network import HostState, MetadataSettings, ModelError

pytestmark = pytest.mark.unit

NET_A = "11111111-aaaa-4aaa-8aaa-000000000001"
NET_B = "22222222-bbbb-4bbb-8bbb-000000000002"
PUBLIC = "33333333-cccc-4ccc-8ccc-000000000003"
NAMES = Naming()  # the default deploy prefix, st
TAP_A1, TAP_B1 = NAMES.tap("port-a1-0000"), NAMES.tap("port-b1-0000")
BR_A, BR_B, BR_PUB = (NAMES.network_bridge(n) for n in (NET_A, NET_B, PUBLIC))


def state_doc(with_b: bool = True) -> dict:
    def net(i: str, vni: int) -> dict:
        return {"id": i, "segmentation_type": "vxlan", "segmentation_id": vni, "mtu": 1450,
                "subnets": [{"id": "sub-" + i[:4], "cidr": "10.0.0.0/24",
                             "gateway_ip": "10.0.0.1"}]}
    networks = [net(NET_A, 10), {"id": PUBLIC, "segmentation_type": "flat",
                                 "physical_network": "public", "external": True,
                                 "subnets": [{"id": "pub", "cidr": "203.0.113.0/24"}]}]
    ports = [{"id": "port-a1-0000", "network_id": NET_A, "mac_address": "FA:16:3E:00:00:01",
              "fixed_ips": [{"subnet_id": "sub-1111", "ip_address": "10.0.0.11"}],
              "security_groups": ["sg"]}]
    dhcp = [{"network_id": NET_A, "port_id": "dhcp-a-0000", "mac_address": "fa:16:3e:00:00:02",
             "fixed_ips": [{"subnet_id": "sub-1111", "ip_address": "10.0.0.2"}],
             "hosts": [{"mac_address": "fa:16:3e:00:00:01", "ip_address": "10.0.0.11"}]}]
    if with_b:
        networks.append(net(NET_B, 11))
        ports.append({"id": "port-b1-0000", "network_id": NET_B,
                      "mac_address": "fa:16:3e:00:00:03", "port_security_enabled": False})
        dhcp.append({"network_id": NET_B, "port_id": "dhcp-b-0000",
                     "mac_address": "fa:16:3e:00:00:04",
                     "fixed_ips": [{"subnet_id": "sub-2222", "ip_address": "10.0.0.2"}]})
    return {
        "host": "cmp1", "tunnel_peers": ["192.0.2.1", "192.0.2.2"], "networks": networks,
        "ports": ports, "dhcp_servers": dhcp,
        "routers": [{"id": "router-1", "interfaces": [
            {"port_id": "r-a-0000", "network_id": NET_A, "subnet_id": "sub-1111",
             "mac_address": "fa:16:3e:00:00:05", "ip_address": "10.0.0.1", "prefixlen": 24}],
            "gateway": {"port_id": "r-gw-0000", "network_id": PUBLIC,
                        "mac_address": "fa:16:3e:00:00:06", "ip_address": "203.0.113.10",
                        "prefixlen": 24, "gateway_ip": "203.0.113.1"},
            "floating_ips": [{"floating_ip_address": "203.0.113.20",
                              "fixed_ip_address": "10.0.0.11"}]}],
        "security_groups": [{"id": "sg", "member_ips": ["10.0.0.11"], "rules": [
            {"direction": "egress"}, {"direction": "ingress", "remote_group_id": "sg"}]}],
        "metadata": {"upstream_url": "http://127.0.0.1:8775", "shared_secret": "s3cret"},
    }


def make_agent(host: FakeHost, doc: dict, defaults: MetadataSettings | None = None
               ) -> tuple[NetworkAgent, StaticSource]:
    source = StaticSource(HostState.from_dict(doc))
    drivers = NetworkDrivers(FakeL2(host), FakeDhcp(host), FakeRouters(host),
                             FakeFirewall(host), FakeMetadata(host))
    return NetworkAgent(drivers, source, defaults), source


def fake_host() -> FakeHost:
    host = FakeHost()
    host.devices |= {TAP_A1, TAP_B1}
    return host


# --- the model -----------------------------------------------------------------------
def test_model_round_trips_through_json() -> None:
    state = HostState.from_dict(state_doc())
    again = HostState.from_json(state.to_json())
    assert again == state
    assert state.ports[0].mac_address == "fa:16:3e:00:00:01"  # normalised
    assert state.ports[0].device == "tapport-a1-000"  # the contract's legacy default
    assert state.ports[0].device_name is None  # the agent plugs NAMES.tap(...) then
    assert state.networks[0].subnets[0].enable_dhcp is True  # default


def test_model_ignores_unknown_keys() -> None:
    doc = state_doc()
    doc["future_field"] = 1
    doc["networks"][0]["qos"] = {}
    assert HostState.from_dict(doc).host == "cmp1"


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["networks"][0].update(segmentation_type="vlan"), "segmentation_type 'vlan'"),
    (lambda d: d["networks"][0].update(segmentation_id=0), "segmentation_id 0"),
    (lambda d: d["networks"][0]["subnets"][0].update(cidr="10.0.0.0/33"), "10.0.0.0/33"),
    (lambda d: d["ports"][0].update(mac_address="nope"), "is not a MAC"),
    (lambda d: d["ports"][0].update(network_id="missing"), "not in networks"),
    (lambda d: d["ports"][0].pop("mac_address"), "'mac_address' is missing"),
    (lambda d: d.update(tunnel_peers=["300.1.1.1"]), "not a valid IP"),
    (lambda d: d["security_groups"][0]["rules"][0].update(direction="up"), "direction"),
    (lambda d: d["ports"][0].update(port_security_enabled="yes"), "true or false"),
])
def test_model_rejects_bad_documents_saying_what_is_wrong(mutate, message) -> None:  # type: ignore[no-untyped-def]
    doc = state_doc()
    mutate(doc)
    with pytest.raises(ModelError, match=message):
        HostState.from_dict(doc)


# --- convergence ----------------------------------------------------------------------
def test_converges_everything_desired() -> None:
    host = fake_host()
    agent, _ = make_agent(host, state_doc())
    report = agent.reconcile_once()
    assert report.ok and not report.waiting_devices
    assert set(host.segments) == {BR_A, BR_B, BR_PUB}
    assert host.segments[BR_A] == (10, ("192.0.2.1", "192.0.2.2"))
    assert set(host.dhcp) == {NET_A, NET_B}
    assert set(host.routers) == {"router-1"}
    assert host.plugged[TAP_A1] == BR_A
    assert host.plugged[NAMES.tap("r-a-0000")] == BR_A
    assert host.plugged[NAMES.tap("r-gw-0000")] == BR_PUB
    assert set(host.firewall) == {"port-a1-0000"}  # port-b1 has port security off
    assert set(host.proxies) == {NAMES.dhcp_netns(NET_A), NAMES.dhcp_netns(NET_B),
                                 NAMES.router_netns("router-1")}
    # The router's proxy serves the networks behind it, chosen by the client's subnet.
    assert host.proxy_subnets[NAMES.router_netns("router-1")] == {"10.0.0.0/24": NET_A}
    assert host.proxies[NAMES.router_netns("router-1")][0] == ""
    assert host.proxies[NAMES.dhcp_netns(NET_A)][0] == NET_A


def test_a_second_pass_and_a_restart_recreate_nothing() -> None:
    host = fake_host()
    agent, _ = make_agent(host, state_doc())
    agent.reconcile_once()
    created = copy.deepcopy(host.created)
    agent.reconcile_once()
    restarted, _ = make_agent(host, state_doc())  # same host, new process
    assert restarted.reconcile_once().ok
    assert host.created == created
    assert not host.reloads


def test_removes_what_is_ours_and_no_longer_desired() -> None:
    host = fake_host()
    agent, source = make_agent(host, state_doc())
    agent.reconcile_once()
    source.state = HostState.from_dict(state_doc(with_b=False))
    assert agent.reconcile_once().ok
    assert BR_B not in host.segments
    assert NET_B not in host.dhcp
    assert NAMES.dhcp_netns(NET_B) not in host.proxies
    assert TAP_B1 not in host.plugged
    source.state = HostState.from_dict({"host": "cmp1"})
    assert agent.reconcile_once().ok
    assert not host.segments and not host.dhcp and not host.routers
    assert not host.firewall and not host.proxies and not host.plugged


def test_changed_dhcp_hosts_reload_without_recreating() -> None:
    host = fake_host()
    agent, source = make_agent(host, state_doc())
    agent.reconcile_once()
    doc = state_doc()
    doc["dhcp_servers"][0]["hosts"].append({"mac_address": "fa:16:3e:00:00:09",
                                            "ip_address": "10.0.0.9"})
    source.state = HostState.from_dict(doc)
    agent.reconcile_once()
    assert host.created[f"dhcp:{NET_A}"] == 1
    assert host.reloads[NET_A] == 1


def test_a_missing_device_waits_and_is_plugged_when_it_appears() -> None:
    host = FakeHost()
    agent, _ = make_agent(host, state_doc())
    report = agent.reconcile_once()
    assert report.waiting_devices == [TAP_A1, TAP_B1]
    assert "port-a1-0000" not in host.firewall
    host.devices.add(TAP_A1)
    report = agent.reconcile_once()
    assert report.waiting_devices == [TAP_B1]
    assert "port-a1-0000" in host.firewall


def test_temporary_errors_are_retried_and_do_not_block_the_rest() -> None:
    host = fake_host()
    host.fail_next.append(DriverError("ovsdb busy", temporary=True))
    agent, _ = make_agent(host, state_doc())
    report = agent.reconcile_once()
    assert list(report.temporary) == [f"network {NET_A}"]
    assert set(host.dhcp) == {NET_A, NET_B}  # the rest converged anyway
    assert agent.reconcile_once().ok
    assert BR_A in host.segments


def test_permanent_errors_are_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    host = fake_host()
    agent, _ = make_agent(host, state_doc())
    host.broken[PUBLIC] = DriverError("no mapping for physnet")
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            report = agent.reconcile_once()
            assert report.permanent
    assert sum("no mapping for physnet" in r.message for r in caplog.records) == 1


def test_the_metadata_proxy_refuses_an_empty_secret() -> None:
    host = fake_host()
    doc = state_doc()
    doc["metadata"]["shared_secret"] = ""
    agent, _ = make_agent(host, doc)
    report = agent.reconcile_once()
    assert any("secret is empty" in msg for msg in report.permanent.values())
    assert not host.proxies
    # the configured secret is the fallback
    agent, _ = make_agent(fake_host(), doc, MetadataSettings(shared_secret="from-config"))
    assert agent.reconcile_once().ok


def test_json_file_source(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state_doc()))
    assert JsonFileSource(path).get().host == "cmp1"
    path.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        JsonFileSource(path).get()
    with pytest.raises(DriverError) as err:
        JsonFileSource(tmp_path / "missing.json").get()
    assert err.value.temporary


def test_a_bad_desired_state_is_a_permanent_error_and_touches_nothing() -> None:
    host = fake_host()
    agent, _ = make_agent(host, state_doc())
    agent.reconcile_once()

    class Broken:
        def get(self) -> HostState:
            raise ModelError("network x: mtu 9 must be 68..65535")

    agent.source = Broken()
    report = agent.reconcile_once()
    assert "desired state" in report.permanent
    assert set(host.dhcp) == {NET_A, NET_B}  # nothing torn down on a bad document


# --- the metadata proxy's signature ------------------------------------------------------
def test_signature_is_hmac_sha256_of_network_and_ip() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"net-1\n10.0.0.5", hashlib.sha256).hexdigest()
    assert sign("k", "net-1", "10.0.0.5") == expected
    with pytest.raises(ValueError, match="must not be empty"):
        sign("", "net-1", "10.0.0.5")


def test_proxy_process_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    conf = tmp_path / "p.json"
    conf.write_text(json.dumps({"network_id": "n", "upstream_url": "http://127.0.0.1:1",
                                "shared_secret": "", "listen_host": "127.0.0.1",
                                "listen_port": 0}))
    assert proxy_main(["--config", str(conf)]) == 2


def test_http_source_authenticates_and_unwraps_the_host_state() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from stratus.agent.network.sources import HttpSource
    from stratus.common.clients import PasswordAuth

    seen: list[str] = []
    puts: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = json.loads(body)["auth"]["identity"]["password"]["user"]["password"] == "pw"
            self.send_response(201 if ok else 401)
            self.send_header("X-Subject-Token", "tok-1")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def do_PUT(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            puts.append((self.path, body))
            self.send_response(200 if self.headers.get("X-Auth-Token") == "tok-1" else 401)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def do_GET(self) -> None:
            seen.append(self.path)
            if self.headers.get("X-Auth-Token") != "tok-1":
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps({"host_state": state_doc()}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        auth = PasswordAuth(base, "agent", "pw", "service")
        source = HttpSource(base + "/v2.0/stratus/host-state?host={host}", "cmp1", auth)
        assert source.get().host == "cmp1"
        assert seen == ["/v2.0/stratus/host-state?host=cmp1"]
        # The same API takes the host's registration and its port statuses.
        reporter = HttpSource(base + "/v2.0/stratus/host-state?host={host}", "cmp1", auth,
                              underlay_ip="192.0.2.5", network_node=True)
        reporter.register()
        reporter.report_ports(["p2", "p1"], ["p3"])
        assert puts == [
            ("/v2.0/stratus-agent/hosts/cmp1",
             {"host": {"underlay_ip": "192.0.2.5", "network_node": True}}),
            ("/v2.0/stratus-agent/hosts/cmp1/ports",
             {"ports": {"active": ["p1", "p2"], "down": ["p3"]}})]
        with pytest.raises(DriverError, match="refused the credentials"):
            HttpSource(base + "/x", "cmp1", PasswordAuth(base, "agent", "bad", "p")).get()
        with pytest.raises(DriverError, match="answered 401"):
            HttpSource(base + "/x", "cmp1").get()
    finally:
        server.shutdown()
        server.server_close()


def test_the_loop_retries_soon_after_a_temporary_error() -> None:
    import threading

    host = fake_host()
    host.fail_next.append(DriverError("ovsdb busy", temporary=True))
    agent, _ = make_agent(host, state_doc())
    stop = threading.Event()
    passes = []
    original = agent.reconcile_once

    def counted(**kw):  # type: ignore[no-untyped-def]
        report = original(**kw)
        passes.append(report.ok)
        if report.ok:
            stop.set()
        return report

    agent.reconcile_once = counted  # type: ignore[method-assign]
    thread = threading.Thread(target=agent.run, args=(3600.0, 0.01, stop))
    thread.start()
    thread.join(timeout=10)
    assert passes == [False, True]  # retried after retry_interval, not resync_interval
    assert BR_A in host.segments


class RecordingReporter:
    def __init__(self) -> None:
        self.registrations = 0
        self.reports: list[tuple[list[str], list[str]]] = []

    def register(self) -> None:
        self.registrations += 1

    def report_ports(self, active: list[str], down: list[str]) -> None:
        self.reports.append((sorted(active), sorted(down)))


def test_every_pass_registers_the_host_and_reports_port_status() -> None:
    host = FakeHost()
    host.devices.add(TAP_A1)  # port-b1's tap is not there yet
    source = StaticSource(HostState.from_dict(state_doc()))
    drivers = NetworkDrivers(FakeL2(host), FakeDhcp(host), FakeRouters(host),
                             FakeFirewall(host), FakeMetadata(host))
    reporter = RecordingReporter()
    agent = NetworkAgent(drivers, source, None, reporter)
    agent.reconcile_once()
    infra = ["dhcp-a-0000", "dhcp-b-0000", "r-a-0000", "r-gw-0000"]
    assert reporter.registrations == 1
    assert reporter.reports[-1] == (sorted(["port-a1-0000", *infra]), ["port-b1-0000"])
    host.devices.add(TAP_B1)  # the compute agent created it
    agent.reconcile_once()
    assert reporter.registrations == 2
    assert reporter.reports[-1] == (sorted(["port-a1-0000", "port-b1-0000", *infra]), [])
    # Security groups that cannot be applied keep the secured port DOWN (not b1: no
    # port security), and a failed router keeps its ports DOWN.
    host.broken["firewall"] = DriverError("nft failed")

    def broken_router(*args: object) -> None:
        raise DriverError("ip netns add failed", temporary=True)

    setattr(drivers.routers, "ensure_router", broken_router)  # noqa: B010
    report = agent.reconcile_once()
    active, down = reporter.reports[-1]
    assert "port-b1-0000" in active and "port-a1-0000" in down, report
    assert {"r-a-0000", "r-gw-0000"} <= set(down) and "dhcp-a-0000" in active


def test_cleanup_removes_everything_without_the_api() -> None:
    host = fake_host()
    agent, source = make_agent(host, state_doc())
    agent.reconcile_once()
    source.state = None  # type: ignore[assignment]  # the API is gone at teardown
    assert agent.cleanup("cmp1")
    assert not host.segments and not host.dhcp and not host.routers
    assert not host.proxies and not host.firewall and not host.plugged


def test_a_router_proxy_picks_the_network_by_the_client_subnet() -> None:
    import ipaddress

    from stratus.agent.network.metadata_proxy import network_of

    subnets = [(ipaddress.IPv4Network("10.0.0.0/24"), "net-a"),
               (ipaddress.IPv4Network("10.0.0.0/16"), "net-wide"),
               (ipaddress.IPv4Network("192.168.5.0/24"), "net-b")]
    assert network_of("10.0.0.7", "", subnets) == "net-a"  # most specific
    assert network_of("10.0.9.7", "", subnets) == "net-wide"
    assert network_of("192.168.5.9", "", subnets) == "net-b"
    assert network_of("172.16.0.1", "", subnets) is None
    assert network_of("10.0.0.7", "net-dhcp", []) == "net-dhcp"  # a DHCP namespace's own


class WatchedSource:
    """A desired state with a generation, watched like the network API's long-poll."""

    def __init__(self, state: HostState):
        import threading

        self.state = state
        self.generation: int | None = None
        self._current = 1
        self.cond = threading.Condition()
        self.watches = 0

    def get(self) -> HostState:
        with self.cond:
            self.generation = self._current
            return self.state

    def change(self, state: HostState | None = None) -> None:
        with self.cond:
            self.state = state or self.state
            self._current += 1
            self.cond.notify_all()

    def watch(self, since: int, timeout: float) -> int | None:
        with self.cond:
            self.watches += 1
            self.cond.wait_for(lambda: self._current != since, timeout=timeout)
            return self._current


def run_in_thread(agent: NetworkAgent, **kw: float):  # type: ignore[no-untyped-def]
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=agent.run, kwargs={
        "resync_interval": 3600.0, "retry_interval": 3600.0, "stop": stop, **kw})
    thread.start()
    return stop, thread


def eventually(check, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def test_a_change_of_the_state_wakes_the_loop_long_before_the_resync() -> None:
    host = fake_host()
    agent, _ = make_agent(host, state_doc())
    source = WatchedSource(HostState.from_dict(state_doc()))
    agent.source = source
    stop, thread = run_in_thread(agent)
    try:
        eventually(lambda: agent.passes == 1 and source.watches >= 1, "the first pass")
        assert BR_B in host.segments
        source.change(HostState.from_dict(state_doc(with_b=False)))
        eventually(lambda: BR_B not in host.segments,
                   "network B removed on the change, not after resync_interval (1 h)")
        assert agent.passes == 2
        # A wake-up for a state equal to the one converged is not a pass on the host.
        created = dict(host.created)
        source.change()
        eventually(lambda: agent.skipped == 1, "the woken pass skipped")
        assert agent.passes == 2 and dict(host.created) == created
    finally:
        stop.set()
        agent.wake.set()
        source.change()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_without_long_poll_the_loop_waits_for_the_resync() -> None:
    host = fake_host()
    agent, _ = make_agent(host, state_doc())
    source = WatchedSource(HostState.from_dict(state_doc()))
    agent.source = source
    stop, thread = run_in_thread(agent, long_poll_wait=0)
    try:
        eventually(lambda: agent.passes == 1, "the first pass")
        source.change(HostState.from_dict(state_doc(with_b=False)))
        import time
        time.sleep(0.3)
        assert source.watches == 0 and agent.passes == 1
    finally:
        stop.set()
        agent.wake.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_missing_device_is_plugged_as_soon_as_it_appears() -> None:
    host = FakeHost()  # no tap yet: the compute agent has not made it
    agent, _ = make_agent(host, state_doc())
    stop, thread = run_in_thread(agent)
    try:
        eventually(lambda: agent.passes == 1, "the first pass")
        assert TAP_A1 not in host.plugged
        host.devices |= {TAP_A1, TAP_B1}
        eventually(lambda: TAP_A1 in host.plugged,
                   "the tap plugged when it appears, not after retry_interval (1 h)")
    finally:
        stop.set()
        agent.wake.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_http_source_long_polls_and_keeps_the_changed_state() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    from stratus.agent.network.sources import HttpSource

    seen: list[dict[str, list[str]]] = []
    generation: dict[str, int | None] = {"value": 7}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            seen.append(query)
            doc = dict(state_doc())
            if generation["value"] is not None:
                doc["generation"] = generation["value"]
            data = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        source = HttpSource(base + "/v2.0/stratus/host-state?host={host}", "cmp1")
        source.get()
        assert source.generation == 7
        assert source.watch(7, 99) == 7  # the API's answer after its wait: no change
        assert seen[-1] == {"host": ["cmp1"], "since": ["7"], "wait": ["30"]}
        generation["value"] = 8
        assert source.watch(7, 5) == 8
        requests = len(seen)
        assert source.get().host == "cmp1" and source.generation == 8
        assert len(seen) == requests  # the watched document served that pass
        source.get()
        assert len(seen) == requests + 1
        generation["value"] = None  # an API without generations cannot long-poll
        assert source.watch(8, 5) is None
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("setting", "message"), [
    ("resync_interval = often", "setting [agent] resync_interval='often' is not an integer"),
    ("l2_backend = vlan", "[agent] l2_backend='vlan' is not ovs or linuxbridge"),
])
def test_a_bad_setting_is_one_line_and_exit_status_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        setting: str, message: str) -> None:
    from stratus.agent.network.agent import main

    monkeypatch.delenv("STRATUS_CONFIG_FILE", raising=False)
    conf = tmp_path / "stratus.conf"
    backend = "" if setting.startswith("l2_backend") else "l2_backend = linuxbridge\n"
    conf.write_text(f"[agent]\n{backend}state_dir = {tmp_path}/state\n"
                    f"network_state_url = {tmp_path}/state.json\n{setting}\n")
    assert main(["--config-file", str(conf), "--once"]) == 1
    err = capsys.readouterr().err
    assert err == f"stratus-network-agent: {message}\n"


def test_http_source_reports_an_unreachable_api_as_temporary() -> None:
    import socket

    from stratus.agent.network.sources import HttpSource

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = HttpSource(f"http://127.0.0.1:{port}/v2.0/stratus/host-state?host={{host}}",
                        "cmp1", timeout=2.0)
    for call in (source.get, source.register, lambda: source.watch(3, 0)):
        with pytest.raises(DriverError, match="network API unreachable") as err:
            call()
        assert err.value.temporary


def test_the_pass_that_makes_ports_active_logs_them_once_with_its_cost(
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue 17: the network agent's part of a boot, read from its log."""
    host = FakeHost()
    host.devices.add(TAP_A1)
    agent, _ = make_agent(host, state_doc())
    with caplog.at_level(logging.INFO, logger="stratus.agent.network.reconcile"):
        agent.reconcile_once()
        host.devices.add(TAP_B1)
        agent.reconcile_once(woken=True)
        agent.reconcile_once()  # nothing new: no line
    lines = [r.getMessage() for r in caplog.records if " ACTIVE: pass " in r.getMessage()]
    assert len(lines) == 2, lines
    assert re.fullmatch(r"port\(s\) port-a1-0000 ACTIVE: pass 1 \(periodic\) took [\d.]+s",
                        lines[0]), lines
    assert re.fullmatch(r"port\(s\) port-b1-0000 ACTIVE: pass 2 \(woken\) took [\d.]+s",
                        lines[1]), lines


class FakeDeviceWatch:
    """The link monitor, driven by the test: ``appear`` is a netlink "new link" event."""

    alive = True

    def __init__(self, wake: Any) -> None:
        self.wake = wake
        self.waiting: set[str] = set()

    def expect(self, devices: Any) -> None:
        self.waiting = set(devices)

    def appear(self, host: FakeHost, dev: str) -> None:
        host.devices.add(dev)
        if dev in self.waiting:
            self.waiting.discard(dev)
            self.wake.set()


def test_a_device_wake_plugs_filters_and_reports_without_a_full_pass() -> None:
    """Issue 17: the pass between a compute agent's new tap and its port's ACTIVE does
    only that: no read of the state, no DHCP/router/segment work."""
    host = FakeHost()  # no tap yet
    source = WatchedSource(HostState.from_dict(state_doc()))
    drivers = NetworkDrivers(FakeL2(host), FakeDhcp(host), FakeRouters(host),
                             FakeFirewall(host), FakeMetadata(host))
    reporter = RecordingReporter()
    agent = NetworkAgent(drivers, source, None, reporter)
    dhcp_calls: list[str] = []
    ensure_dhcp = drivers.dhcp.ensure_dhcp

    def counting_dhcp(server: Any, *args: Any) -> None:
        dhcp_calls.append(server.network_id)
        ensure_dhcp(server, *args)

    setattr(drivers.dhcp, "ensure_dhcp", counting_dhcp)  # noqa: B010
    watch = FakeDeviceWatch(agent.wake)
    agent.devwatch = watch
    stop, thread = run_in_thread(agent)
    try:
        # (the long-poll starts on its own thread after the first pass: wait for it)
        eventually(lambda: agent.passes == 1 and watch.waiting == {TAP_A1, TAP_B1}
                   and source.watches == 1,
                   "the first pass, waiting for both taps, the long-poll in place")
        reads, dhcp = source.generation, list(dhcp_calls)
        gets = source.watches
        watch.appear(host, TAP_A1)
        eventually(lambda: TAP_A1 in host.plugged and "port-a1-0000" in host.firewall,
                   "the tap plugged and filtered on its appearance")
        eventually(lambda: reporter.reports and "port-a1-0000" in reporter.reports[-1][0],
                   "port-a1 reported ACTIVE")
        assert agent.passes == 2
        assert dhcp_calls == dhcp  # DHCP, routers, segments: left as the first pass made them
        assert reporter.registrations == 1  # no registration, no read of the state
        assert source.generation == reads and source.watches == gets
        assert "port-b1-0000" in reporter.reports[-1][1]  # still waiting for its tap
        watch.appear(host, TAP_B1)
        eventually(lambda: "port-b1-0000" in reporter.reports[-1][0], "port-b1 ACTIVE")
        assert agent.passes == 3 and dhcp_calls == dhcp
        # Every port ACTIVE, nothing wrong: a wake-up for the same state (the status
        # change the report made) is skipped, not a full pass while the guest boots.
        source.change()
        eventually(lambda: agent.skipped == 1, "the woken pass skipped")
        assert agent.passes == 3 and dhcp_calls == dhcp
        # A change of the state is a full pass again, even with a device still awaited.
        source.change(HostState.from_dict(state_doc(with_b=False)))
        eventually(lambda: BR_B not in host.segments, "the changed state converged")
        assert len(dhcp_calls) > len(dhcp)  # (registered: first, skipped, this pass)
        assert reporter.registrations == 3
    finally:
        stop.set()
        agent.wake.set()
        source.change()
        thread.join(timeout=10)
    assert not thread.is_alive()
