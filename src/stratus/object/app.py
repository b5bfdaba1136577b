"""stratus-object: builds the Swift v1 API (the proxy) from configuration and runs it.

Errors are Swift's small HTML bodies; every answer carries ``X-Trans-Id`` (and the same
value as ``X-Openstack-Request-Id``).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratus.common.app import Router, create_app, run_service, setup_logging
from stratus.common.auth import AuthContext, RemoteTokenValidator
from stratus.common.config import Config
from stratus.common.crashpoints import arm
from stratus.common.db import Database
from stratus.common.errors import ApiError, glance_error
from stratus.object import views
from stratus.object.api import accounts, containers, info, objects
from stratus.object.core import SECTION, ObjectService, Settings
from stratus.object.migrate import try_migrate

# The most specific path first: objects, then containers, then accounts.
API_TABLES = (info.routes, objects.routes, containers.routes, accounts.routes)


class TransIdMiddleware:
    """``X-Trans-Id``, ``X-Openstack-Request-Id`` and a ``Content-Type`` on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tx = views.trans_id().encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"x-openstack-request-id"]
                headers += [(b"x-trans-id", tx), (b"x-openstack-request-id", tx)]
                if not any(k.lower() == b"content-type" for k, _ in headers):
                    # Swift types every answer, an empty 204 or 202 too (Tempest checks it)
                    headers.append((b"content-type", b"text/html; charset=UTF-8"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return views.error_response(exc.status, exc.message, exc.headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "The resource could not be found.",
               405: "The method is not allowed for this resource."}.get(
        exc.status_code, str(exc.detail))
    return views.error_response(exc.status_code, message, dict(exc.headers or {}))


def build_core(config: Config, here: tuple[str, int] | None = None) -> ObjectService:
    """The service layer; ``here``: this host's object server (see Settings)."""
    return ObjectService(Database(config.get(SECTION, "database_url"), "object"),
                         Settings.from_config(config, here))


def build_app(core: ObjectService, authenticate: Callable[[str], AuthContext],
              public_url: str = "") -> Starlette:
    router = Router(authenticate=authenticate)
    for table in API_TABLES:
        router.include(table, core)
    app = create_app("object", router.routes, glance_error, db=core.db, public_url=public_url)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(TransIdMiddleware)
    return app


def create_app_from_config() -> Starlette:
    """uvicorn factory: reads the configuration named by STRATUS_CONFIG_FILE."""
    config = Config.load()
    setup_logging(config.get_bool("DEFAULT", "debug"))
    arm(config)  # [debug] crash_at: test only, inert when empty
    validator = RemoteTokenValidator(
        config.get(SECTION, "identity_url"),
        cache_seconds=float(config.get("identity", "token_cache_seconds")),
    )
    core = build_core(config)
    try_migrate(core)  # an existing deploy's central listings, once (see object/migrate.py)
    return build_app(core, validator.validate, config.get(SECTION, "public_url"))


def main(argv: list[str] | None = None) -> int:
    return run_service("stratus-object", __doc__, SECTION,
                       "stratus.object.app:create_app_from_config",
                       lambda config: build_core(config).db.dispose(), argv)
