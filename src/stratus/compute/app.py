"""stratus-compute: builds the compute ASGI app from configuration and runs it."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratus.common.app import Router, create_app, run_service, setup_logging
from stratus.common.auth import AuthContext, RemoteTokenValidator
from stratus.common.clients import PasswordAuth
from stratus.common.config import Config
from stratus.common.crashpoints import arm
from stratus.common.db import Database
from stratus.common.errors import nova_error
from stratus.compute import recovery, views
from stratus.compute.api import agents as agents_api
from stratus.compute.api import (
    availability_zones,
    flavor_access,
    flavor_extra_specs,
    flavors,
    hypervisors,
    keypairs,
    limits,
    quotas,
    security_groups,
    server_actions,
    server_groups,
    server_interfaces,
    server_metadata,
    server_password,
    server_security_groups,
    servers,
    services,
    usage,
    versions,
    volume_attachments,
)
from stratus.compute.core import SECTION, ComputeCore, Settings
from stratus.compute.downstream import Downstream, HttpDownstream, HttpVolumes

# Every route table of the Nova-compatible API, bound to the one ComputeCore.
API_TABLES = (
    versions.routes, flavors.routes, flavor_access.routes, flavor_extra_specs.routes,
    keypairs.routes, server_groups.routes, quotas.routes, limits.routes,
    availability_zones.routes, hypervisors.routes, services.routes, servers.routes,
    server_metadata.routes, server_interfaces.routes, server_security_groups.routes,
    server_password.routes, server_actions.routes, volume_attachments.routes,
    security_groups.routes, usage.routes,
)


class MicroversionMiddleware:
    """Negotiates ``OpenStack-API-Version: compute X.Y`` (or the legacy
    ``X-OpenStack-Nova-API-Version``), stores it in the request state, and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        wanted = ""
        for part in headers.get("openstack-api-version", "").split(","):
            service, _, value = part.strip().partition(" ")
            if service.lower() == "compute":
                wanted = value.strip()
        if not wanted:
            wanted = headers.get("x-openstack-nova-api-version", "").strip()
        version = views.MIN_VERSION
        error: tuple[int, str] | None = None
        if wanted.lower() == "latest":
            version = views.MAX_VERSION
        elif wanted:
            match = views.VERSION_RE.match(wanted)
            if not match:
                error = (400, f"API Version String {wanted} is of invalid format. Must be of "
                              "format MajorNum.MinorNum.")
            else:
                version = (int(match.group(1)), int(match.group(2)))
                if not views.MIN_VERSION <= version <= views.MAX_VERSION:
                    error = (406, f"Version {wanted} is not supported by the API. Minimum is "
                                  f"{views.version_text(views.MIN_VERSION)} and maximum is "
                                  f"{views.version_text(views.MAX_VERSION)}.")
        scope.setdefault("state", {})["microversion"] = version
        text = views.version_text(version)
        extra = [(b"openstack-api-version", f"compute {text}".encode()),
                 (b"x-openstack-nova-api-version", text.encode()),
                 (b"vary", b"OpenStack-API-Version, X-OpenStack-Nova-API-Version")]
        if error is not None and scope["path"].startswith("/v2"):
            body = json.dumps(nova_error(error[0], "", error[1])).encode()
            await send({"type": "http.response.start", "status": error[0], "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()), *extra]})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_version)


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
    app.add_middleware(MicroversionMiddleware)
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
