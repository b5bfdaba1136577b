"""stratus-compute: builds the compute ASGI app from configuration and runs it."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette

from stratus.common.app import Router, create_app, run_service, setup_logging
from stratus.common.auth import AuthContext, RemoteTokenValidator
from stratus.common.clients import PasswordAuth
from stratus.common.config import Config
from stratus.common.crashpoints import arm
from stratus.common.db import Database
from stratus.common.errors import nova_error
from stratus.common.microversion import MicroversionMiddleware
from stratus.compute import recovery, views
from stratus.compute.api import agents as agents_api
from stratus.compute.api import (
    aggregates,
    assisted_volume_snapshots,
    availability_zones,
    consoles,
    extensions,
    external_events,
    flavor_access,
    flavor_extra_specs,
    flavors,
    floating_ips,
    hypervisors,
    images,
    instance_actions,
    keypairs,
    limits,
    networks,
    quota_classes,
    quotas,
    security_groups,
    server_actions,
    server_groups,
    server_interfaces,
    server_metadata,
    server_password,
    server_resize,
    server_security_groups,
    server_tags,
    servers,
    services,
    usage,
    versions,
    volume_attachments,
    volumes_proxy,
)
from stratus.compute.core import SECTION, ComputeCore, Settings
from stratus.compute.downstream import Downstream, HttpDownstream, HttpVolumes
from stratus.compute.instance_actions import RequestBinding

# Every route table of the Nova-compatible API, bound to the one ComputeCore.
API_TABLES = (
    versions.routes, flavors.routes, flavor_access.routes, flavor_extra_specs.routes,
    keypairs.routes, server_groups.routes, quotas.routes, quota_classes.routes,
    limits.routes,
    availability_zones.routes, hypervisors.routes, services.routes, servers.routes,
    server_metadata.routes, server_interfaces.routes, server_security_groups.routes,
    server_password.routes, server_actions.routes, volume_attachments.routes,
    external_events.routes,
    security_groups.routes, usage.routes, consoles.routes,
    server_resize.routes, instance_actions.routes, images.routes,
    floating_ips.routes, networks.routes, aggregates.routes,
    assisted_volume_snapshots.routes, server_tags.routes, volumes_proxy.routes,
    extensions.routes,
)


def build_core(config: Config, downstream: Downstream | None = None) -> ComputeCore:
    if downstream is None:
        service_auth = None
        if config.get(SECTION, "username"):
            service_auth = PasswordAuth(
                config.get(SECTION, "identity_url"), config.get(SECTION, "username"),
                config.get(SECTION, "password"), config.get(SECTION, "project_name"))
        volumes = HttpVolumes(config.get(SECTION, "identity_url"),
                              config.get(SECTION, "volume_url"), service_auth) \
            if service_auth is not None else None
        downstream = HttpDownstream(config.get(SECTION, "image_url"),
                                    config.get(SECTION, "network_url"), service_auth, volumes)
    return ComputeCore(Database(config.get(SECTION, "database_url"), "compute"),
                       Settings.from_config(config), downstream)


def build_app(
    core: ComputeCore, authenticate: Callable[[str], AuthContext], public_url: str = ""
) -> Starlette:
    router = Router(authenticate=authenticate)
    # A path with a literal segment (flavors/detail) comes before the same path with a
    # parameter (flavors/{id}) within each table.
    for table in API_TABLES:
        router.include(table, core)
    router.include(agents_api.routes, core)
    app = create_app("compute", router.routes, nova_error, db=core.db, public_url=public_url)
    # ``OpenStack-API-Version: compute X.Y`` or the legacy header, on every path; a bad
    # version is answered with its 400/406 only under /v2.
    app.add_middleware(MicroversionMiddleware, service="compute",
                       legacy_header="X-OpenStack-Nova-API-Version",
                       min_version=views.MIN_VERSION, max_version=views.MAX_VERSION,
                       version_re=views.VERSION_RE, error_prefix="/v2")
    # the request's id for the instance actions its service calls record
    app.add_middleware(RequestBinding)
    return app


def create_app_from_config() -> Starlette:
    """uvicorn factory: reads the configuration named by STRATUS_CONFIG_FILE."""
    config = Config.load()
    setup_logging(config.get_bool("DEFAULT", "debug"))
    validator = RemoteTokenValidator(
        config.get(SECTION, "identity_url"),
        cache_seconds=float(config.get("identity", "token_cache_seconds")),
    )
    arm(config)  # [debug] crash_at: test only, inert when empty
    core = build_core(config)
    # Unfinished builds and deletes no live request owns, at start and periodically.
    recovery.start(core, config.get_int(SECTION, "recovery_interval", 0),
                   config.get_int(SECTION, "recovery_stale_after", 1))
    return build_app(core, validator.validate, config.get(SECTION, "public_url"))


def main(argv: list[str] | None = None) -> int:
    return run_service("stratus-compute", __doc__, SECTION,
                       "stratus.compute.app:create_app_from_config",
                       lambda config: build_core(config).db.dispose(), argv)
