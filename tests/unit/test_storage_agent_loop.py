"""The storage agent's loop and wiring: registration, long-poll, a pass per new state, reports.

The volume API is a fake in memory (the same calls as ``HttpStorageApi``); the pool is
real (qemu-img in a temp dir) and tgt is the fake of test_storage_agent.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_storage_agent import FakeExports, FakeImages

from stratus.agent.runner import Runner
from stratus.agent.storage.agent import AgentSettings, StorageAgent, build_agent, iqn_prefix
from stratus.agent.storage.pool import Pool
from stratus.agent.storage.reconcile import StorageReconciler
from stratus.agent.storage.tgt import Tgt
from stratus.common.clients import ServiceError
from stratus.common.config import Config, ConfigError
from stratus.contracts.volume import (
    HostRegistration,
    StorageHostState,
    StorageReport,
    VolumeSource,
    VolumeSpec,
)

pytestmark = pytest.mark.unit

V1 = "11111111-0000-4000-8000-00000000000a"


class FakeVolumeApi:
    """The volume API's storage endpoints for one host, with a real long-poll wait."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.doc = StorageHostState(1)
        self.registrations: list[HostRegistration] = []
        self.reports: list[StorageReport] = []
        self.down = False

    def register(self, reg: HostRegistration) -> None:
        if self.down:
            raise ServiceError("volume unreachable", temporary=True)
        self.registrations.append(reg)

    def state(self, since: int | None = None, wait: float = 0.0) -> StorageHostState:
        with self.cond:
            if since is not None and wait > 0:
                self.cond.wait_for(lambda: self.doc.generation != since, timeout=wait)
            return self.doc

    def report(self, report: StorageReport) -> None:
        with self.cond:
            self.reports.append(report)
            self.cond.notify_all()

    def set(self, doc: StorageHostState) -> None:
        with self.cond:
            self.doc = doc
            self.cond.notify_all()

    def wait_report(self, pred: Callable[[StorageReport], bool], timeout: float = 30.0
                    ) -> StorageReport:
        with self.cond:
            ok = self.cond.wait_for(lambda: self.reports and pred(self.reports[-1]),
                                    timeout=timeout)
            assert ok, f"no report matched; last: {self.reports[-1:]}"
            return self.reports[-1]


@pytest.fixture
def agent(tmp_path: Path):
    api = FakeVolumeApi()
    rec = StorageReconciler(Pool(tmp_path / "pool", "tv", Runner(timeout=60)), FakeExports(),
                            FakeImages({}), workers=1, retry_interval=0.0)
    settings = AgentSettings(host="h1", portal="127.0.0.1:3261",
                             iqn_prefix="iqn.2010-10.org.stratus:tv-h1", formats=["raw"],
                             report_interval=1.0, resync_interval=1.0, retry_interval=0.1,
                             poll_wait=1.0)
    return StorageAgent(settings, api, rec), api


def test_loop_registers_converges_each_new_state_and_stops(agent):
    ag, api = agent
    stop = threading.Event()
    thread = threading.Thread(target=ag.run, args=(stop,))
    thread.start()
    try:
        api.wait_report(lambda r: r.volumes == [])
        reg = api.registrations[0]
        assert (reg.host, reg.portal, reg.formats) == ("h1", "127.0.0.1:3261", ["raw"])
        assert reg.capacity_gb >= reg.free_gb >= 0
        api.set(StorageHostState(2, volumes=[VolumeSpec(V1, 1, "raw", VolumeSource())]))
        report = api.wait_report(lambda r: [v.id for v in r.volumes] == [V1])
        assert report.volumes[0].state == "ready"
        api.set(StorageHostState(3))
        api.wait_report(lambda r: r.volumes == [])
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_registration_is_retried_until_the_api_answers(agent):
    ag, api = agent
    api.down = True
    stop = threading.Event()
    thread = threading.Thread(target=ag.run, args=(stop,))
    thread.start()
    try:
        time.sleep(0.3)
        assert api.registrations == [] and api.reports == []
        api.down = False
        api.wait_report(lambda r: True)
        assert api.registrations
    finally:
        stop.set()
        thread.join(timeout=30)


def test_once_waits_for_its_jobs(agent):
    ag, api = agent
    api.set(StorageHostState(5, volumes=[VolumeSpec(V1, 2, "raw", VolumeSource())]))
    assert ag.once()
    assert [(v.id, v.size_gb, v.state) for v in api.reports[-1].volumes] == [(V1, 2, "ready")]
    ag.reconciler.shutdown()


def test_iqn_prefix_is_made_of_allowed_characters():
    assert iqn_prefix("iqn.2010-10.org.stratus", "tv", "Node_1.Example") == \
        "iqn.2010-10.org.stratus:tv-node-1.example"


def test_build_agent_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    conf = tmp_path / "stratus.conf"
    conf.write_text(f"[DEFAULT]\ndeploy_prefix = tv\n[storage_agent]\nhost = h9\n"
                    f"pool_path = {tmp_path}/pool\nportal_ip = 127.0.0.1\nportal_port = 3999\n"
                    "tgt_control_port = 77\n")
    ag = build_agent(Config.load(str(conf)))
    try:
        assert ag.s.portal == "127.0.0.1:3999"
        assert ag.s.iqn_prefix == "iqn.2010-10.org.stratus:tv-h9"
        assert ag.reconciler.pool.prefix == "tv" and (tmp_path / "pool").is_dir()
        tgt = ag.reconciler.exports
        assert isinstance(tgt, Tgt) and tgt.control_port == 77
    finally:
        ag.reconciler.shutdown()
    conf.write_text(f"[storage_agent]\npool_path = {tmp_path}/pool\nvolume_format = vmdk\n")
    with pytest.raises(ConfigError, match="volume_format"):
        build_agent(Config.load(str(conf)))
