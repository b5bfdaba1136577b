"""stratus-identity: builds the identity ASGI app from configuration and runs it."""

from __future__ import annotations

from starlette.applications import Starlette

from stratus.common.app import Router, create_app, run_service, setup_logging
from stratus.common.config import Config, ConfigError
from stratus.common.db import Database
from stratus.common.errors import keystone_error
from stratus.identity.api import (
    app_credentials,
    assignments,
    auth,
    credentials,
    domains,
    ec2_credentials,
    endpoints,
    groups,
    policies,
    project_tags,
    projects,
    regions,
    roles,
    services,
    tokens,
    trusts,
    users,
    versions,
)
from stratus.identity.core import Identity
from stratus.identity.passwords import ALGORITHMS, dummy_hash
from stratus.identity.security import SecurityRules
from stratus.identity.tokens import KeyRepository, TokenSealer

SECTION = "identity"


def build_identity(config: Config) -> Identity:
    algorithm = config.get(SECTION, "password_hash_algorithm")
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"[identity] password_hash_algorithm={algorithm!r}: use one of {', '.join(ALGORITHMS)}"
        )
    repo = KeyRepository(
        config.get(SECTION, "fernet_key_repository"),
        config.get_int(SECTION, "fernet_max_active_keys", minimum=2),
    )
    return Identity(
        Database(config.get(SECTION, "database_url"), "identity"),
        TokenSealer(repo),
        token_ttl=config.get_int(SECTION, "token_expiration", minimum=60),
        hash_algorithm=algorithm,
        validation_cache_seconds=config.get_int(SECTION, "validation_cache_seconds", minimum=0),
        security=security_rules(config),
    )


def security_rules(config: Config) -> SecurityRules:
    """The lockout and password rules from ``[identity]`` (security.py)."""
    try:
        return SecurityRules(
            lockout_failure_attempts=config.get_int(
                SECTION, "lockout_failure_attempts", minimum=0),
            lockout_duration=config.get_int(SECTION, "lockout_duration", minimum=1),
            password_min_length=config.get_int(SECTION, "password_min_length", minimum=0),
            password_regex=config.get(SECTION, "password_regex"),
            password_regex_description=config.get(SECTION, "password_regex_description"),
            unique_last_password_count=config.get_int(
                SECTION, "unique_last_password_count", minimum=0),
            password_expires_days=config.get_int(SECTION, "password_expires_days", minimum=0),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def build_app(identity: Identity, public_url: str = "") -> Starlette:
    """The identity app: every API module's routes bound to ``identity`` (in this
    order, which is the order Starlette tries them in)."""
    # Made before the first request, so an unknown user's first login costs what every
    # other does (stratus-manage, which serves no logins, never makes it).
    dummy_hash()
    router = Router(authenticate=identity.context)
    for module in (versions, tokens, auth, domains, project_tags, projects, users, groups,
                   app_credentials, roles, assignments, regions, services, endpoints,
                   credentials, ec2_credentials, policies, trusts):
        router.include(module.routes, identity)
    return create_app(
        "identity", router.routes, keystone_error, db=identity.db, public_url=public_url
    )


def create_app_from_config() -> Starlette:
    """uvicorn factory: reads the configuration named by STRATUS_CONFIG_FILE."""
    config = Config.load()
    setup_logging(config.get_bool("DEFAULT", "debug"))
    return build_app(build_identity(config), config.get(SECTION, "public_url"))


def main(argv: list[str] | None = None) -> int:
    return run_service("stratus-identity", __doc__, SECTION,
                       "stratus.identity.app:create_app_from_config", build_identity, argv)
