"""Ordering of the e2e modules (issue 16): the boot module's cloud is the bystander.

test_boot_aio.py deploys its cloud once per session, and its last test boots a guest that
stays up with a snapshot of the cloud's host objects. The other e2e modules then deploy,
churn and tear down their own clouds beside it; the tests marked ``e2e_last`` (the
bystander's final check, which also tears it down) are moved after every other test of
this directory, so that they see what the other deploys did, and the bystander is gone
before the integration tests start.

The cloud itself is the session fixture ``cloud`` defined here (from test_boot_aio.py's
deploy_cloud), so that other modules use the same deploy: their tests, marked
``e2e_boot_cloud`` (test_volumes_aio.py), are moved before the bystander's guest is booted
(test_bystander_guest_answers_on_its_floating_ip), so that what they create and delete is
not part of the bystander's snapshot.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from e2e_support import remove_stale_test_cas
from test_boot_aio import deploy_cloud

HERE = Path(__file__).resolve().parent
BYSTANDER_SETUP = "test_bystander_guest_answers_on_its_floating_ip"

cloud = pytest.fixture(scope="session", name="cloud")(deploy_cloud)


@pytest.fixture(scope="session", autouse=True)
def _stale_test_cas(request: pytest.FixtureRequest) -> None:
    """TLS is on by default: a killed e2e run leaves its deploy's CA in the host's trust
    store (/usr/local/share/ca-certificates/stratus-<prefix>-ca.crt). Before the e2e tests,
    those of test prefixes whose deploy is gone are removed (e2e_support.stale_test_cas)."""
    if os.geteuid() != 0 or not any(item.get_closest_marker("e2e")
                                    for item in request.session.items):
        return
    removed = remove_stale_test_cas()
    if removed:
        print(f"removed stale test CAs from the trust store: {[p.name for p in removed]}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e_last: runs after every other test of tests/e2e (the bystander check)")
    config.addinivalue_line(
        "markers", "e2e_boot_cloud: uses the boot module's cloud; runs before its bystander")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    shared = [item for item in items if item.get_closest_marker("e2e_boot_cloud")]
    setup = [i for i, item in enumerate(items) if item.name == BYSTANDER_SETUP]
    if shared and setup:
        before = [item for item in items[:setup[0]] if item not in shared]
        after = [item for item in items[setup[0]:] if item not in shared]
        items[:] = before + shared + after
    last = [item for item in items if item.get_closest_marker("e2e_last")]
    if not last:
        return
    rest = [item for item in items if not item.get_closest_marker("e2e_last")]
    here = [i for i, item in enumerate(rest) if HERE in Path(str(item.path)).resolve().parents]
    at = (here[-1] + 1) if here else len(rest)
    items[:] = rest[:at] + last + rest[at:]
