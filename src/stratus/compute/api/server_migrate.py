"""The ``migrate`` server action (dispatched from ``api/server_actions.py``): Nova's
checks (``compute/server_migrate.py``), then an honest 501: moving a server between
hosts is not built (docs/compute-api.md)."""

from __future__ import annotations

from typing import Any, NoReturn

from stratus.common.app import Req
from stratus.common.errors import BadRequest
from stratus.compute import views
from stratus.compute.api.usage import NotImplementedByDriver
from stratus.compute.core import ComputeCore
from stratus.compute.server_migrate import migration_targets


def migrate(req: Req, svc: ComputeCore, arg: Any) -> NoReturn:
    """``{"migrate": null}``; from 2.56 also ``{"migrate": {"host": name or null}}``."""
    host = None
    if arg is not None:
        allowed = {"host"} if views.mv(req) >= (2, 56) else set()
        if not isinstance(arg, dict) or set(arg) - allowed:
            raise BadRequest("Invalid input for migrate: null is expected" + (
                ", or {\"host\": <host name or null>}." if allowed else
                " (a target host needs microversion 2.56)."))
        host = arg.get("host")
        if host is not None and (not isinstance(host, str) or not host.strip()
                                 or len(host) > 255):
            raise BadRequest("Invalid input for migrate: host must be a host name of 1 to "
                             "255 characters, or null.")
    targets = migration_targets(svc, req.ctx, req.params["id"], host)
    raise NotImplementedByDriver(
        f"Cold migration between hosts is not implemented by this cloud: the server "
        f"cannot be moved to {', '.join(targets)} (its disks and domain stay on its "
        "host). Resize keeps a server on its host.")
