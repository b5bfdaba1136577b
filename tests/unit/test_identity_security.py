"""SecurityRules (identity/security.py) with plain objects in place of user rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from stratus.common.config import Config, ConfigError
from stratus.common.errors import BadRequest
from stratus.identity.app import security_rules
from stratus.identity.security import SecurityRules

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, 12, 0, 0)


def user(count: int, at: datetime | None) -> Any:
    return SimpleNamespace(id="", failed_auth_count=count, failed_auth_at=at)


def test_locked_only_after_the_attempts_and_until_the_duration_ends() -> None:
    rules = SecurityRules(lockout_failure_attempts=3, lockout_duration=60)
    assert not rules.locked(user(2, NOW), NOW)
    assert rules.locked(user(3, NOW), NOW + timedelta(seconds=59))
    assert not rules.locked(user(3, NOW), NOW + timedelta(seconds=60))
    assert not SecurityRules().locked(user(100, NOW), NOW)  # off by default


def test_clear_forgets_the_failures() -> None:
    u = user(5, NOW)
    SecurityRules.clear(u)
    assert (u.failed_auth_count, u.failed_auth_at) == (0, None)


def test_password_rules_answer_400_with_the_description() -> None:
    rules = SecurityRules(password_min_length=6, password_regex=r"[a-z]+\d",
                          password_regex_description="Lower-case letters then one digit.")
    with pytest.raises(BadRequest, match="at least 6"):
        rules.check_password(None, user(0, None), "ab1")  # type: ignore[arg-type]
    with pytest.raises(BadRequest, match="Lower-case letters then one digit"):
        rules.check_password(None, user(0, None), "abcdef")  # type: ignore[arg-type]
    rules.check_password(None, user(0, None), "abcdef1")  # type: ignore[arg-type]


def test_settings_are_read_and_a_bad_regex_is_a_config_error(tmp_path: Any) -> None:
    conf = tmp_path / "stratus.conf"
    conf.write_text("[identity]\nlockout_failure_attempts = 10\nlockout_duration = 300\n")
    rules = security_rules(Config.load(str(conf)))
    assert (rules.lockout_failure_attempts, rules.lockout_duration) == (10, 300)
    conf.write_text("[identity]\npassword_regex = ([a-z\n")
    with pytest.raises(ConfigError, match="password_regex"):
        security_rules(Config.load(str(conf)))
