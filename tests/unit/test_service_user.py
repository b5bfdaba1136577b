"""stratus-manage service-user ensure: the user services call each other as."""

from __future__ import annotations

import pytest

from stratus.identity.bootstrap import ensure_service_user
from stratus.identity.core import Identity

pytestmark = pytest.mark.unit


def _scoped_roles(identity: Identity, name: str, password: str) -> set[str]:
    _token, valid = identity.authenticate({"auth": {"identity": {
        "methods": ["password"], "password": {"user": {
            "name": name, "domain": {"id": "default"}, "password": password}}},
         "scope": {"project": {"name": "service", "domain": {"id": "default"}}}}})
    return {r.name for r in valid.roles}


def test_service_user_is_created_once_and_repaired(identity: Identity) -> None:
    assert ensure_service_user(identity, name="stratus-compute", password="pw-1") is True
    assert ensure_service_user(identity, name="stratus-compute", password="pw-1") is False
    assert "admin" in _scoped_roles(identity, "stratus-compute", "pw-1")
    # a changed password is applied (and reported as a change)
    assert ensure_service_user(identity, name="stratus-compute", password="pw-2") is True
    assert "admin" in _scoped_roles(identity, "stratus-compute", "pw-2")
