"""Server actions (``POST /servers/{id}/action``): os-start, os-stop, pause, unpause,
suspend, resume, reboot, os-getConsoleOutput, createImage, addSecurityGroup,
removeSecurityGroup, addFixedIp and removeFixedIp (below 2.44), the admin actions
os-resetState and injectNetworkInfo (``api/admin_actions.py``), addFloatingIp and
removeFloatingIp (below 2.44, ``api/server_floating_ips.py``), restore and forceDelete
(``api/deferred_delete.py``), rebuild
(``api/server_rebuild.py``), resize, confirmResize and revertResize
(``api/server_resize.py``), migrate (``api/server_migrate.py``: Nova's checks, then 501),
createBackup (``compute/server_backup.py``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import server_lock, views
from stratus.compute.api import consoles
from stratus.compute.api.admin_actions import ACTIONS as ADMIN_ACTIONS
from stratus.compute.api.admin_actions import admin_action
from stratus.compute.api.deferred_delete import ACTIONS as DEFERRED_DELETE_ACTIONS
from stratus.compute.api.deferred_delete import deferred_delete_action
from stratus.compute.api.server_floating_ips import ACTIONS as FLOATING_ACTIONS
from stratus.compute.api.server_floating_ips import floating_ip_action
from stratus.compute.api.server_migrate import migrate
from stratus.compute.api.server_rebuild import rebuild
from stratus.compute.api.server_resize import ACTIONS as RESIZE_ACTIONS
from stratus.compute.api.server_resize import resize_action
from stratus.compute.core import ComputeCore
from stratus.compute.server_actions import ACTIONS
from stratus.compute.server_backup import create_backup as start_backup

routes = Routes()
GROUP_ACTIONS = ("addSecurityGroup", "removeSecurityGroup")
FIXED_IP_ACTIONS = {"addFixedIp": "networkId", "removeFixedIp": "address"}  # below 2.44
KNOWN = {*ACTIONS, "reboot", "os-getConsoleOutput", "createImage", *GROUP_ACTIONS,
         *FIXED_IP_ACTIONS, "os-getVNCConsole"}

KNOWN.add("rebuild")  # api/server_rebuild.py
KNOWN.update(ADMIN_ACTIONS)  # api/admin_actions.py
KNOWN.update(FLOATING_ACTIONS)  # api/server_floating_ips.py (below 2.44)
KNOWN.update(DEFERRED_DELETE_ACTIONS)  # api/deferred_delete.py
KNOWN.update(RESIZE_ACTIONS)  # api/server_resize.py
KNOWN.add("migrate")  # api/server_migrate.py (Nova's checks, then 501)
KNOWN.add("createBackup")  # compute/server_backup.py
KNOWN.update(("lock", "unlock"))  # compute/server_lock.py
# Nova's check_instance_lock: these refuse a locked server to non-admins (409), after
# the policy check (the power actions and reboot in ServerActions.act, in the same
# transaction; injectNetworkInfo too, but it is admin-only and admins pass a lock)
LOCK_CHECKED = {"rebuild", *RESIZE_ACTIONS, *FIXED_IP_ACTIONS}
# Nova's actions this API does not build: as in Nova, the server is looked up first (an
# unknown one is 404), then the action is refused (400); any other name is a 400 at once.
NOT_BUILT = {"migrate", "os-migrateLive", "createBackup", "shelve", "shelveOffload",
             "unshelve", "evacuate", "lock", "unlock", "rescue", "unrescue",
             "trigger_crash_dump", "changePassword", "os-getSPICEConsole",
             "os-getRDPConsole", "os-getSerialConsole"} - KNOWN


@routes.add("POST", "/v2.1/servers/{id}/action", status=202)
def server_action(req: Req, svc: ComputeCore) -> Response:
    if not isinstance(req.body, dict) or len(req.body) != 1:
        raise BadRequest("Invalid input: the body must hold exactly one action.")
    name, arg = next(iter(req.body.items()))
    if name in NOT_BUILT:
        with svc.db.session() as s:
            svc.server(s, req.ctx, req.params["id"])  # 404 for an unknown server
        raise BadRequest(f"There is no such action: {name} (a Nova action this cloud has "
                         f"not built); supported: {', '.join(sorted(KNOWN))}.")
    if name not in KNOWN:
        raise BadRequest(f"There is no such action: {name}; supported: "
                         f"{', '.join(sorted(KNOWN))}.")
    ctx = req.ctx
    sid = req.params["id"]
    if name in ("lock", "unlock"):
        return lock_action(req, svc, name, arg)
    if name == "os-getConsoleOutput":
        return console_output(req, svc, arg)
    if name == "os-getVNCConsole":
        return consoles.get_vnc_console(req, svc, arg)  # api/consoles.py
    if name in ADMIN_ACTIONS:
        return admin_action(req, svc, name, arg)  # api/admin_actions.py (admin policy)
    if name in FLOATING_ACTIONS:
        return floating_ip_action(req, svc, name, arg)  # api/server_floating_ips.py
    if name == "forceDelete":
        server_lock.refuse_if_locked(svc, ctx, sid)
    if name in DEFERRED_DELETE_ACTIONS:
        return deferred_delete_action(req, svc, name, arg)  # api/deferred_delete.py
    if name == "migrate":
        migrate(req, svc, arg)  # api/server_migrate.py (admin policy)
    if name == "createBackup":
        return create_backup(req, svc, arg)  # its own policy (compute/server_backup.py)
    svc.require_member(ctx, f"os_compute_api:servers:{name}")
    if name in LOCK_CHECKED:
        server_lock.refuse_if_locked(svc, ctx, sid)
    if name == "createImage":
        return create_image(req, svc, arg)
    if name == "rebuild":
        return rebuild(req, svc, arg)
    if name in RESIZE_ACTIONS:
        return resize_action(req, svc, name, arg)
    if name in FIXED_IP_ACTIONS:
        return fixed_ip_action(req, svc, name, arg)
    if name in GROUP_ACTIONS:
        if not isinstance(arg, dict) or set(arg) != {"name"} \
                or not isinstance(arg["name"], str) or not arg["name"].strip():
            raise BadRequest(f"Invalid input for {name}: {{\"name\": \"<security group "
                             "name or ID>\"} is expected.")
        svc.servers.change_security_group(ctx, sid, arg["name"],
                                          add=name == "addSecurityGroup")
        return Response(status_code=202)
    reboot_type = None
    if name == "reboot":
        if not isinstance(arg, dict) or arg.get("type") not in ("SOFT", "HARD") \
                or set(arg) - {"type"}:
            raise BadRequest("Invalid input for reboot: {\"type\": \"SOFT\"|\"HARD\"} is "
                             "expected.")
        reboot_type = arg["type"]
    elif arg is not None and not isinstance(arg, dict):
        raise BadRequest(f"Invalid input for {name}: null or an object is expected.")
    svc.servers.act(ctx, sid, name, reboot_type)
    return Response(status_code=202)


def lock_action(req: Req, svc: ComputeCore, name: str, arg: Any) -> Response:
    """lock (from 2.73 ``{"locked_reason"}`` of at most 255 characters, or null) and
    unlock (null); 202."""
    svc.require_member(req.ctx, f"os_compute_api:os-lock-server:{name}")
    reason = None
    if name == "lock" and views.mv(req) >= (2, 73) and arg is not None:
        if not isinstance(arg, dict):
            raise BadRequest("Invalid input for lock: null or {\"locked_reason\": \"...\"} "
                             "is expected.")
        views.only(arg, {"locked_reason"}, "lock")
        reason = views.text(arg, "locked_reason")
    if name == "lock":
        server_lock.lock(svc, req.ctx, req.params["id"], reason)
    else:
        server_lock.unlock(svc, req.ctx, req.params["id"])
    return Response(status_code=202)


def fixed_ip_action(req: Req, svc: ComputeCore, name: str, arg: Any) -> Response:
    """addFixedIp ``{"networkId"}`` / removeFixedIp ``{"address"}`` (404 from 2.44)."""
    if views.mv(req) >= (2, 44):
        raise NotFound(f"The {name} action is gone from microversion 2.44; use the network "
                       "API's ports.")
    key = FIXED_IP_ACTIONS[name]
    if not isinstance(arg, dict) or set(arg) != {key} or not isinstance(arg[key], str) \
            or not arg[key].strip():
        raise BadRequest(f"Invalid input for {name}: {{\"{key}\": \"...\"}} is expected.")
    if name == "addFixedIp":
        svc.servers.add_fixed_ip(req.ctx, req.params["id"], arg[key])
    else:
        svc.servers.remove_fixed_ip(req.ctx, req.params["id"], arg[key])
    return Response(status_code=202)


def console_output(req: Req, svc: ComputeCore, arg: Any) -> JSONResponse:
    if arg is not None and not isinstance(arg, dict):
        raise BadRequest("Invalid input for os-getConsoleOutput: an object is expected.")
    length = (arg or {}).get("length")
    if length is not None:
        length = views.integer({"length": length}, "length", minimum=-1)
    text = svc.servers.console_output(req.ctx, req.params["id"])
    return JSONResponse({"output": console_tail(text, length)}, status_code=200)


def console_tail(text: str, length: int | None) -> str:
    """The last ``length`` pieces of ``text`` split at newlines, joined again (as Nova
    tails the log: a text ending in a newline has an empty last piece, so it gives
    ``length - 1`` full lines and the final newline); all of it for None or -1."""
    if length is None or length < 0:
        return text
    return "\n".join(text.split("\n")[-length:]) if length else ""


def create_image(req: Req, svc: ComputeCore, arg: Any) -> JSONResponse:
    if not isinstance(arg, dict):
        raise BadRequest("Invalid input for createImage: an object with 'name' is expected.")
    views.only(arg, {"name", "metadata"}, "createImage")
    name = views.text(arg, "name", required=True)
    assert name is not None
    extra = views.metadata(arg.get("metadata", {}), 128)
    image_id, location = svc.servers.create_image(req.ctx, req.params["id"], name, extra)
    body_out = {"image_id": image_id} if views.mv(req) >= (2, 45) else None
    return JSONResponse(body_out, status_code=202, headers={"Location": location})


def create_backup(req: Req, svc: ComputeCore, arg: Any) -> JSONResponse:
    """createBackup ``{"name", "backup_type", "rotation", "metadata"?}``: 202; from 2.45
    ``{"image_id"}`` with no Location, below it no body and a Location unless rotation is 0
    (as Nova)."""
    if not isinstance(arg, dict):
        raise BadRequest("Invalid input for createBackup: an object with 'name', "
                         "'backup_type' and 'rotation' is expected.")
    views.only(arg, {"name", "backup_type", "rotation", "metadata"}, "createBackup")
    name = views.text(arg, "name", required=True)
    backup_type = views.text(arg, "backup_type", required=True)
    rotation = views.integer(arg, "rotation", minimum=0)
    assert name is not None and backup_type is not None
    extra = views.metadata(arg.get("metadata", {}), 128)
    image_id, location = start_backup(svc, svc.servers, req.ctx, req.params["id"], name,
                                      backup_type, rotation, extra)
    if views.mv(req) >= (2, 45):
        return JSONResponse({"image_id": image_id}, status_code=202)
    return JSONResponse(None, status_code=202,
                        headers={"Location": location} if rotation > 0 else {})
