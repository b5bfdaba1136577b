"""stratus-volume: builds the volume ASGI app (the Cinder v3 subset) from configuration and
runs it; a sweeper thread re-derives statuses from the storage agents' last reports at
start and every ``[volume] sweep_interval`` seconds, and a sender thread delivers the
``volume-extended`` events owed to the compute API (``volume/server_events.py``)."""

from __future__ import annotations

import logging
import threading
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
from stratus.volume.server_events import HttpComputeEvents

LOG = logging.getLogger("stratus.volume")

# The storage hosts' table comes first: /v3/storage/... before /v3/{project_id}/...;
# a literal segment (volumes/detail) before a parameter (volumes/{id}) in each table.
API_TABLES = (storage_hosts.routes, versions.routes, volumes.routes, volume_actions.routes,
              volume_metadata.routes, attachments.routes, snapshots.routes, types.routes,
              quotas.routes, services.routes)


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


class EventSender:
    """Sends the server events owed to the compute API (``volume/server_events.py``) when
    woken (a report finished an extend of an attached volume) and every ``interval``
    seconds (what a killed process committed and did not send)."""

    def __init__(self, core: VolumeCore, interval: float) -> None:
        self.core = core
        self.interval = interval
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="volume-events", daemon=True)

    def start(self) -> EventSender:
        self.thread.start()
        return self

    def _run(self) -> None:
        events = self.core.server_events
        while not self.stopped:
            events.woken.wait(self.interval)
            events.woken.clear()
            if self.stopped:
                return
            try:
                events.flush()
            except Exception:  # a database outage: the next round tries again
                LOG.exception("sending server events failed")

    def stop(self) -> None:
        self.stopped = True
        self.core.server_events.wake()


def compute_events(config: Config) -> HttpComputeEvents | None:
    """The compute API's external events as ``[volume]`` describes them (None: no
    ``compute_url``)."""
    url = config.get(SECTION, "compute_url").strip()
    if not url:
        return None
    auth = None
    if config.get(SECTION, "username"):
        auth = PasswordAuth(config.get(SECTION, "identity_url"), config.get(SECTION, "username"),
                            config.get(SECTION, "password"), config.get(SECTION, "project_name"))
    return HttpComputeEvents(url, auth)


def build_core(config: Config) -> VolumeCore:
    return VolumeCore(Database(config.get(SECTION, "database_url"), "volume"),
                      Settings.from_config(config), HttpImageApi(config.get(SECTION, "image_url")),
                      compute_events(config))


def build_app(core: VolumeCore, authenticate: Callable[[str], AuthContext],
              public_url: str = "", sweep: bool = False) -> Starlette:
    router = Router(authenticate=authenticate)
    for table in API_TABLES:
        router.include(table, core)
    shutdown = []
    if sweep:
        sweeper = Sweeper(core, core.settings.sweep_interval).start()
        shutdown.append(sweeper.stop)
        sender = EventSender(core, core.settings.sweep_interval).start()
        shutdown.append(sender.stop)
    app = create_app("volume", router.routes, nova_error, db=core.db, public_url=public_url,
                     on_shutdown=shutdown)
    # ``OpenStack-API-Version: volume X.Y`` (or block-storage) on /v3 paths only.
    app.add_middleware(MicroversionMiddleware, service="volume",
                       aliases=("volume", "block-storage"), min_version=views.MIN_VERSION,
                       max_version=views.MAX_VERSION, version_re=views.VERSION_RE,
                       path_prefix="/v3/")
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
    return build_app(build_core(config), validator.validate, config.get(SECTION, "public_url"),
                     sweep=True)


def main(argv: list[str] | None = None) -> int:
    return run_service("stratus-volume", __doc__, SECTION,
                       "stratus.volume.app:create_app_from_config",
                       lambda config: build_core(config).db.dispose(), argv)
