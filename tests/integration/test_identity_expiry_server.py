"""Password expiry (``[identity] password_expires_days``) against the real identity app on
SQLite and PostgreSQL, in-process (starlette TestClient) as test_identity_lockout.py.

A password "gets old" by moving its ``password_changed_at`` back in the database (the
row the service reads), not by waiting.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from helpers import Postgres
from identity_api import PASSWORD, Api
from stratus.common import db
from stratus.common.db import Database
from stratus.common.timeutil import utcnow
from stratus.identity import models as m
from stratus.identity.app import build_app
from stratus.identity.bootstrap import bootstrap
from stratus.identity.core import Identity
from stratus.identity.security import SecurityRules
from stratus.identity.tokens import KeyRepository, TokenSealer

pytestmark = [pytest.mark.integration]

DAYS = 30


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Api, Identity]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/ztr-expiry.sqlite"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"ztr_expiry_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    db.sync("stratus.identity", url)
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    ident = Identity(Database(url, "identity"), TokenSealer(repo),
                     security=SecurityRules(password_expires_days=DAYS))
    bootstrap(ident, password=PASSWORD, public_url="http://identity.test:5000")
    # The bootstrap admin is a service account here: it ignores the expiry, as Keystone
    # advises for the accounts the cloud runs on.
    with ident.db.session() as s:
        admin = s.scalar(sa.select(m.User).where(m.User.name == "admin"))
        assert admin is not None
        admin.extra = {**(admin.extra or {}), "options": {"ignore_password_expiry": True}}
    with TestClient(build_app(ident), raise_server_exceptions=False) as client:
        yield Api(client), ident
    ident.db.dispose()


def age(ident: Identity, user_id: str, days: int) -> None:
    """Move the user's password ``days`` days into the past."""
    with ident.db.session() as s:
        user = s.get(m.User, user_id)
        assert user is not None
        user.password_changed_at = utcnow(precise=True) - timedelta(days=days)


def test_an_expired_password_fails_with_keystones_answer_until_the_user_changes_it(
    api: tuple[Api, Identity],
) -> None:
    client, ident = api
    user = client.member("ztr-dora", password="old-pw-1")["user"]
    # The answer shows when the password expires, as Keystone's.
    expires = user["password_expires_at"]
    assert expires is not None and len(expires) == len("2026-01-31T12:00:00.000000")
    shown = client.call("GET", f"/v3/users/{user['id']}").json()["user"]
    assert shown["password_expires_at"] == expires
    assert shown["options"] == {}

    age(ident, user["id"], DAYS + 1)
    expired = client.issue("ztr-dora", "old-pw-1", "ztr-dora")
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == (
        f"The password is expired and needs to be changed for user: {user['id']}.")
    # A wrong password still gets the ordinary answer (nothing tells it was expired).
    wrong = client.issue("ztr-dora", "not-it", "ztr-dora")
    assert wrong.status_code == 401 and "expired" not in wrong.text

    # The user changes it without a token (it cannot get one), then authenticates.
    resp = client.client.post(f"/v3/users/{user['id']}/password", json={
        "user": {"original_password": "old-pw-1", "password": "new-pw-2"}})
    assert resp.status_code == 204, resp.text
    assert client.issue("ztr-dora", "new-pw-2", "ztr-dora").status_code == 201
    renewed = client.call("GET", f"/v3/users/{user['id']}").json()["user"]
    assert renewed["password_expires_at"] > expires


def test_ignore_password_expiry_exempts_a_user_and_can_be_unset(
    api: tuple[Api, Identity],
) -> None:
    client, ident = api
    created = client.create("user", name="ztr-svc", password="svc-pw-1",
                            options={"ignore_password_expiry": True})
    assert created["options"] == {"ignore_password_expiry": True}
    assert created["password_expires_at"] is None
    age(ident, created["id"], DAYS * 10)
    assert client.issue("ztr-svc", "svc-pw-1").status_code == 201

    unset = client.call("PATCH", f"/v3/users/{created['id']}",
                        json={"user": {"options": {"ignore_password_expiry": None}}})
    assert unset.status_code == 200, unset.text
    assert unset.json()["user"]["options"] == {}
    assert unset.json()["user"]["password_expires_at"] is not None
    assert client.issue("ztr-svc", "svc-pw-1").status_code == 401

    bad = client.call("PATCH", f"/v3/users/{created['id']}",
                      json={"user": {"options": {"no_such_option": True}}})
    assert bad.status_code == 400 and "ignore_password_expiry" in bad.json()["error"]["message"]
