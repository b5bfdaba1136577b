"""The host boot identity the compute agent's resume_guests_state_on_host_boot compares
(agent/compute/bootresume.py): the kernel's boot id and PID 1's start time, so a host that
is a container restarted on the same kernel counts as booted (issue 11: the molecule aio
scenario's reboot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratus.agent.compute.bootresume import BootResume, boot_identity, read_init_start

pytestmark = pytest.mark.unit


def _stat(start: int, comm: str = "systemd") -> str:
    # the fields of /proc/<pid>/stat up to starttime (22nd), then a few more
    return (f"1 ({comm}) S 0 1 1 0 -1 4194560 14000 9000000 90 4000 30 50 6000 3000 20 0 "
            f"1 0 {start} 170000000 3000 18446744073709551615 1 1 0 0 0 0 671173123\n")


class Host:
    """A host's /proc files the agent reads: the kernel's boot id and PID 1's stat line."""

    def __init__(self, tmp_path: Path) -> None:
        self.boot_id = tmp_path / "boot_id"
        self.init_stat = tmp_path / "init_stat"
        self.state = tmp_path / "instances"
        self.state.mkdir()

    def now(self, kernel: str, init_start: int | None) -> None:
        self.boot_id.write_text(kernel + "\n")
        if init_start is None:
            self.init_stat.unlink(missing_ok=True)
        else:
            self.init_stat.write_text(_stat(init_start))

    def agent_starts(self, enabled: bool = True) -> BootResume:
        return BootResume(str(self.state), enabled, str(self.boot_id), str(self.init_stat))

    @property
    def recorded(self) -> str:
        return (self.state / "_boot_id").read_text().strip()


def test_pid1_start_time_is_field_22_even_with_spaces_and_parentheses_in_its_name(
        tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(_stat(4242, comm="my init) (x"))
    assert read_init_start(str(stat)) == "4242"
    stat.write_text("1 (systemd) S 0 1\n")  # cut short: not a number where field 22 is
    assert read_init_start(str(stat)) == ""
    assert read_init_start(str(tmp_path / "missing")) == ""


def test_identity_is_the_kernel_boot_id_and_the_init_start(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.now("k-1", 77)
    assert boot_identity(str(host.boot_id), str(host.init_stat)) == "k-1 init=77"
    host.now("k-1", None)  # PID 1 unreadable (hidepid): the kernel's id alone
    assert boot_identity(str(host.boot_id), str(host.init_stat)) == "k-1"


def test_a_container_restart_on_the_same_kernel_is_a_boot(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.now("k-1", 100)
    first = host.agent_starts()
    assert not first.booted  # a first start resumes nothing
    assert host.recorded == "k-1 init=100"
    assert not host.agent_starts().booted  # the agent restarted, the host did not
    host.now("k-1", 9000)  # podman stop + start: a new init, the kernel's boot id unchanged
    again = host.agent_starts()
    assert again.booted
    assert host.recorded == "k-1 init=100"  # recorded only once the servers are handled
    again.decide([])
    assert host.recorded == "k-1 init=9000"
    host.now("k-2", 9000)  # a real reboot (the start time may even repeat)
    assert host.agent_starts().booted


def test_an_older_agents_record_is_compared_on_the_kernel_id_only(tmp_path: Path) -> None:
    host = Host(tmp_path)
    (host.state / "_boot_id").write_text("k-1\n")  # written before PID 1's start was recorded
    host.now("k-1", 100)
    assert not host.agent_starts().booted  # an upgrade on the same boot is no boot
    assert host.recorded == "k-1 init=100"
    (host.state / "_boot_id").write_text("k-1\n")
    host.now("k-2", 100)
    assert host.agent_starts().booted
    host.now("k-3", 100)
    assert not host.agent_starts(enabled=False).booted
