"""Atomic host claims under concurrency on PostgreSQL (the SQLite runs are unit tests in
tests/unit/test_compute_scheduler.py): the same scenarios against the session's real
PostgreSQL server."""

from __future__ import annotations

from typing import Any

import pytest

from compute_api import concurrent_creates, concurrent_group_members

pytestmark = pytest.mark.integration


def test_concurrent_creates_never_overcommit_postgresql(postgres: Any) -> None:
    url = postgres.create_database("scfu_claims")
    concurrent_creates(url, n=12, room=5)


def test_concurrent_members_of_an_anti_affinity_group_get_distinct_hosts_postgresql(
        postgres: Any) -> None:
    concurrent_group_members(postgres.create_database("scfu_groups"))
