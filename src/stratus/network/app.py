"""stratus-network: builds the network ASGI app from configuration and runs it."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette

from stratus.common.app import Router, create_app, run_service, setup_logging
from stratus.common.auth import AuthContext, RemoteTokenValidator
from stratus.common.config import Config
from stratus.common.crashpoints import arm
from stratus.common.db import Database
from stratus.common.errors import neutron_error
from stratus.network import recovery
from stratus.network.api import (
    agent_hosts,
    agents,
    extensions,
    extraroutes,
    floatingips,
    networks,
    port_wait,
    ports,
    quotas,
    routers,
    security_group_rules,
    security_groups,
    subnetpools,
    subnets,
    versions,
)
from stratus.network.core import SECTION, NetworkCore, Settings


def build_network(config: Config) -> NetworkCore:
    return NetworkCore(
        Database(config.get(SECTION, "database_url"), "network"), Settings.from_config(config)
    )


def build_app(
    core: NetworkCore, authenticate: Callable[[str], AuthContext], public_url: str = ""
) -> Starlette:
    router = Router(authenticate=authenticate)
    for module in (versions, extensions, networks, subnets, quotas, ports, routers, floatingips,
                   security_groups, security_group_rules, agent_hosts, subnetpools, agents,
                   extraroutes, port_wait):
        router.include(module.routes, core)
    return create_app("network", router.routes, neutron_error, db=core.db, public_url=public_url)


def create_app_from_config() -> Starlette:
    """uvicorn factory: reads the configuration named by STRATUS_CONFIG_FILE."""
    config = Config.load()
    setup_logging(config.get_bool("DEFAULT", "debug"))
    validator = RemoteTokenValidator(
        config.get(SECTION, "identity_url"),
        cache_seconds=float(config.get("identity", "token_cache_seconds")),
    )
    arm(config)  # [debug] crash_at: test only, inert when empty
    core = build_network(config)
    # Ports, IPs and router interfaces without their owner, at start and periodically.
    recovery.start(core, config.get_int(SECTION, "recovery_interval", 0))
    return build_app(core, validator.validate, config.get(SECTION, "public_url"))


def main(argv: list[str] | None = None) -> int:
    return run_service("stratus-network", __doc__, SECTION,
                       "stratus.network.app:create_app_from_config",
                       lambda config: build_network(config).db.dispose(), argv)
