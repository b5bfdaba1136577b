"""Fixtures for the guest-image tests: host tools, the built images, a guest."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_vm import QemuGuest, build_image, ensure_host_tools, make_ssh_key


@pytest.fixture(scope="session")
def host_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("the image builds need root (apt-get install, mknod)")
    reason = ensure_host_tools()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_image(host_tools: None) -> Path:
    """tests/images/cache/tiny.qcow2, built now unless the cache is current."""
    return build_image("build-tiny.sh")


@pytest.fixture(scope="session")
def debian_image(host_tools: None) -> Path:
    """tests/images/cache/debian.qcow2, built now unless the cache is current."""
    return build_image("build-debian.sh")


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ssh_key(tmp_path_factory.mktemp("ssh-key"))


@pytest.fixture
def guest(tmp_path: Path) -> Iterator[QemuGuest]:
    """A guest (not started yet); QEMU is stopped by pid when the test ends and
    its disk overlay deleted (the console logs stay in tmp_path for debugging)."""
    vm = QemuGuest(tmp_path)
    try:
        yield vm
    finally:
        vm.stop()
        for overlay in tmp_path.glob("*-disk.qcow2"):
            overlay.unlink()
