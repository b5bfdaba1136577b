"""stratus-dashboard: Horizon's project panels as server-rendered pages over the Stratus
APIs, called with the signed-in user's own token (no database, no service user).

The wiring: :func:`build_app` binds every panel's ``routes`` table (``dashboard/api/``)
to one :class:`~stratus.dashboard.web.Dashboard` (the pages' service layer
:class:`~stratus.dashboard.core.DashboardCore`, the sessions, the identity client),
serves the package's static files, and puts the security headers
(:mod:`stratus.dashboard.views`) on every answer. Sessions live in the process, so
``[dashboard] workers`` must be 1 (docs/dashboard.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from stratus.common.app import Router, create_app, run_service, setup_logging
from stratus.common.config import Config, ConfigError
from stratus.common.errors import nova_error
from stratus.dashboard import views
from stratus.dashboard.api import (
    admin,
    auth,
    containers,
    images,
    instances,
    keypairs,
    network,
    overview,
    server_groups,
    volumes,
)
from stratus.dashboard.cloud import Cloud
from stratus.dashboard.core import DashboardCore
from stratus.dashboard.sessions import SessionStore
from stratus.dashboard.web import Dashboard

SECTION = "dashboard"
TABLES = (auth.routes, overview.routes, instances.routes, images.routes, volumes.routes,
          network.routes, keypairs.routes, server_groups.routes,
          containers.routes, admin.routes)


def build_app(dashboard: Dashboard, on_shutdown: list[Callable[[], Any]] | None = None
              ) -> Starlette:
    router = Router()
    for table in TABLES:
        router.include(table, dashboard)
    routes = [*router.routes, Mount("/static", StaticFiles(directory=str(views.STATIC)),
                                    name="static")]
    app = create_app("dashboard", routes, nova_error, on_shutdown=on_shutdown)
    app.add_middleware(views.SecurityHeaders)
    app.state.dashboard = dashboard
    return app


def build_dashboard(config: Config) -> Dashboard:
    timeout = float(config.get(SECTION, "api_timeout"))
    cloud = Cloud(config.get(SECTION, "identity_url"), config.get(SECTION, "interface"),
                  config.get("DEFAULT", "region_name"), timeout=timeout)
    sessions = SessionStore(idle_timeout=float(config.get(SECTION, "session_timeout")))
    return Dashboard(DashboardCore(cloud), sessions, cloud,
                     secure_cookies=config.get_bool(SECTION, "secure_cookies"),
                     region=config.get("DEFAULT", "region_name"))


def create_app_from_config() -> Starlette:
    """uvicorn factory: reads the configuration named by STRATUS_CONFIG_FILE."""
    config = Config.load()
    setup_logging(config.get_bool("DEFAULT", "debug"))
    dashboard = build_dashboard(config)
    return build_app(dashboard, on_shutdown=[dashboard.cloud.close])


def _check(config: Config) -> None:
    """Fail fast on a bad setting before uvicorn starts."""
    if config.get_int(SECTION, "workers", minimum=1) != 1:
        raise ConfigError(f"setting [{SECTION}] workers must be 1: the sessions live in the "
                          "process")
    for key in ("session_timeout", "api_timeout"):
        if float(config.get(SECTION, key)) <= 0:
            raise ConfigError(f"setting [{SECTION}] {key} must be positive")
    if config.get(SECTION, "interface") not in ("public", "internal", "admin"):
        raise ConfigError(f"setting [{SECTION}] interface must be public, internal or admin")
    build_dashboard(config).cloud.close()


def main(argv: list[str] | None = None) -> int:
    return run_service("stratus-dashboard", (__doc__ or "").split("\n")[0], SECTION,
                       "stratus.dashboard.app:create_app_from_config", _check, argv)
