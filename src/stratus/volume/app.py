"""stratus-volume: builds the volume ASGI app (the Cinder v3 subset) from configuration and
runs it; a sweeper thread re-derives statuses from the storage agents' last reports at
start and every ``[volume] sweep_interval`` seconds."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratus.common.app import Router, create_app, run_service, setup_logging
from stratus.common.auth import AuthContext, RemoteTokenValidator
from stratus.common.config import Config
from stratus.common.db import Database
from stratus.common.errors import nova_error
from stratus.volume import views
from stratus.volume.api import (
    attachments,
    quotas,
    services,
    snapshots,
    storage_hosts,
    types,
    versions,
    volume_actions,
    volume_metadata,
    volumes,
)
from stratus.volume.core import SECTION, Settings, VolumeCore
from stratus.volume.images import HttpImageApi

LOG = logging.getLogger("stratus.volume")

# The storage hosts' table comes first: /v3/storage/... before /v3/{project_id}/...;
# a literal segment (volumes/detail) before a parameter (volumes/{id}) in each table.
API_TABLES = (storage_hosts.routes, versions.routes, volumes.routes, volume_actions.routes,
              volume_metadata.routes, attachments.routes, snapshots.routes, types.routes,
              quotas.routes, services.routes)


class MicroversionMiddleware:
    """Negotiates ``OpenStack-API-Version: volume X.Y`` on /v3 paths (3.0 when absent,
    ``latest`` the newest; 400 when malformed, 406 outside 3.0..3.60), stores it in the
    request state, and answers it in ``OpenStack-API-Version`` with ``Vary``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v3/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        wanted = ""
        for part in headers.get("openstack-api-version", "").split(","):
            service, _, value = part.strip().partition(" ")
            if service.lower() in ("volume", "block-storage"):
                wanted = value.strip()
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
        extra = [(b"openstack-api-version", f"volume {views.version_text(version)}".encode()),
                 (b"vary", b"OpenStack-API-Version")]
        if error is not None:
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


class Sweeper:
    """Runs ``core.sweep()`` now and every ``interval`` seconds in a daemon thread."""

    def __init__(self, core: VolumeCore, interval: float) -> None:
        self.core = core
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="volume-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self.thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                self.core.sweep()
            except Exception:  # a database outage: the next sweep tries again
                LOG.exception("volume status sweep failed")
            if self.stopped.wait(self.interval):
                return

    def stop(self) -> None:
        self.stopped.set()


def build_core(config: Config) -> VolumeCore:
    return VolumeCore(Database(config.get(SECTION, "database_url"), "volume"),
                      Settings.from_config(config), HttpImageApi(config.get(SECTION, "image_url")))


def build_app(core: VolumeCore, authenticate: Callable[[str], AuthContext],
              public_url: str = "", sweep: bool = False) -> Starlette:
    router = Router(authenticate=authenticate)
    for table in API_TABLES:
        router.include(table, core)
    shutdown = []
    if sweep:
        sweeper = Sweeper(core, core.settings.sweep_interval).start()
        shutdown.append(sweeper.stop)
    app = create_app("volume", router.routes, nova_error, db=core.db, public_url=public_url,
                     on_shutdown=shutdown)
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
    return build_app(build_core(config), validator.validate, config.get(SECTION, "public_url"),
                     sweep=True)


def main(argv: list[str] | None = None) -> int:
    return run_service("stratus-volume", __doc__, SECTION,
                       "stratus.volume.app:create_app_from_config",
                       lambda config: build_core(config).db.dispose(), argv)
