"""Password expiry and user options (identity/security.py, views.py) on plain objects."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from stratus.common.config import Config
from stratus.common.errors import BadRequest
from stratus.identity import views
from stratus.identity.app import security_rules
from stratus.identity.security import SecurityRules

pytestmark = pytest.mark.unit

SET = datetime(2026, 1, 1, 12, 0, 0)


def user(options: dict[str, Any] | None = None, password: bool = True) -> Any:
    extra = {"options": options} if options else {}
    return SimpleNamespace(id="u1", name="ztr-u", domain_id="default", enabled=True,
                           extra=extra, password_hash="h" if password else None,
                           password_changed_at=SET, default_project_id=None,
                           description=None, failed_auth_count=0, failed_auth_at=None)


def test_a_password_expires_the_set_number_of_days_after_it_was_set() -> None:
    rules = SecurityRules(password_expires_days=90)
    assert rules.expires_at(user()) == SET + timedelta(days=90)
    assert not rules.expired(user(), SET + timedelta(days=89, hours=23))
    assert rules.expired(user(), SET + timedelta(days=90))


def test_off_by_default_and_for_users_that_ignore_it_or_have_no_password() -> None:
    late = SET + timedelta(days=10_000)
    assert SecurityRules().expires_at(user()) is None
    assert not SecurityRules().expired(user(), late)
    rules = SecurityRules(password_expires_days=1)
    assert rules.expires_at(user({"ignore_password_expiry": True})) is None
    assert not rules.expired(user({"ignore_password_expiry": True}), late)
    assert rules.expired(user({"ignore_password_expiry": False}), late)
    assert rules.expires_at(user(password=False)) is None


def test_ignore_lockout_failure_attempts_never_locks() -> None:
    rules = SecurityRules(lockout_failure_attempts=1, lockout_duration=60)
    locked = user()
    locked.failed_auth_count, locked.failed_auth_at = 5, SET
    assert rules.locked(locked, SET)
    locked.extra = {"options": {"ignore_lockout_failure_attempts": True}}
    assert not rules.locked(locked, SET)


def test_the_user_view_shows_the_expiry_and_the_options_as_keystone() -> None:
    shown = views.user("https://id", user({"ignore_password_expiry": False}), 30)
    assert shown["password_expires_at"] == "2026-01-31T12:00:00.000000"
    assert shown["options"] == {"ignore_password_expiry": False}
    assert views.user("https://id", user(), 0)["password_expires_at"] is None
    assert views.user("https://id", user({"ignore_password_expiry": True}), 30)[
        "password_expires_at"] is None


def test_options_are_merged_unset_by_null_and_checked() -> None:
    current = {"ignore_password_expiry": True}
    assert views.user_options({}, current) == current
    assert views.user_options({"options": {"ignore_lockout_failure_attempts": True}},
                              current) == {**current, "ignore_lockout_failure_attempts": True}
    assert views.user_options({"options": {"ignore_password_expiry": None}}, current) == {}
    with pytest.raises(BadRequest, match=r"Invalid user option 'lock_password'.*supported"):
        views.user_options({"options": {"lock_password": True}}, {})
    with pytest.raises(BadRequest, match="true, false or null"):
        views.user_options({"options": {"ignore_password_expiry": "yes"}}, {})
    with pytest.raises(BadRequest, match="must be an object"):
        views.user_options({"options": ["ignore_password_expiry"]}, {})


def test_the_setting_is_read_from_the_identity_section(tmp_path: Any) -> None:
    conf = tmp_path / "stratus.conf"
    conf.write_text("[identity]\npassword_expires_days = 45\n")
    assert security_rules(Config.load(str(conf))).password_expires_days == 45
    conf.write_text("[identity]\n")
    assert security_rules(Config.load(str(conf))).password_expires_days == 0
