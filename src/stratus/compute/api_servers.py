"""Server routes: create, list, show, update, delete, metadata, interfaces, actions."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Router
from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from stratus.compute import models as m
from stratus.compute import views
from stratus.compute.core import ComputeCore, utcnow
from stratus.compute.servers import CreateRequest, ServerFlow

LOG = logging.getLogger("stratus.compute")
P = "/v2.1/servers"
CREATE_ATTRS = {
    "name", "imageRef", "flavorRef", "networks", "key_name", "user_data", "metadata",
    "security_groups", "availability_zone", "config_drive", "min_count", "max_count",
    "adminPass", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig", "description", "tags",
    "block_device_mapping_v2", "return_reservation_id", "personality",
}
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                     r"[0-9a-fA-F]{12}$")
MAX_USER_DATA = 65535
# action -> (allowed vm_states, new task_state)
ACTIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "os-start": (("stopped",), "powering-on"),
    "os-stop": (("active", "paused", "suspended", "error"), "powering-off"),
    "pause": (("active",), "pausing"),
    "unpause": (("paused",), "unpausing"),
    "suspend": (("active",), "suspending"),
    "resume": (("suspended",), "resuming"),
}
GROUP_ACTIONS = ("addSecurityGroup", "removeSecurityGroup")
DESIRED = {"os-start": "running", "os-stop": "shutdown", "pause": "paused",
           "unpause": "running", "suspend": "suspended", "resume": "running"}


def _uuid(value: Any, what: str) -> str:
    if not isinstance(value, str) or not UUID_RE.match(value):
        raise BadRequest(f"Invalid input for field/attribute {what}: {value!r} is not a UUID.")
    return value


def parse_networks(value: Any) -> list[dict[str, str]] | str:
    if value in ("auto", "none"):
        return str(value)
    if not isinstance(value, list):
        raise BadRequest("Invalid input for field/attribute networks: a list of {uuid}, {port} "
                         "or {uuid, fixed_ip} objects, or 'auto' or 'none', is expected.")
    out = []
    for item in value:
        if not isinstance(item, dict) or not item or set(item) - {"uuid", "port", "fixed_ip",
                                                                   "tag"}:
            raise BadRequest(f"Invalid input for field/attribute networks: {item!r} must have "
                             "'uuid' or 'port', and may have 'fixed_ip'.")
        entry: dict[str, str] = {}
        if item.get("port"):
            entry["port"] = _uuid(item["port"], "port")
        elif "uuid" in item:
            entry["uuid"] = _uuid(item["uuid"], "uuid")
        else:
            raise BadRequest("Invalid input for field/attribute networks: each item needs "
                             "'uuid' or 'port'.")
        if item.get("fixed_ip") is not None:
            import ipaddress
            try:
                ipaddress.ip_address(item["fixed_ip"])
            except (ValueError, TypeError):
                raise BadRequest(f"Invalid input for field/attribute fixed_ip: "
                                 f"{item['fixed_ip']!r} is not an IP address.") from None
            entry["fixed_ip"] = str(item["fixed_ip"])
        out.append(entry)
    return out


def parse_create(req: Req, core: ComputeCore) -> CreateRequest:
    data = views.obj(req.body, "server")
    views.only(data, CREATE_ATTRS, "server")
    name = views.text(data, "name", required=True)
    assert name is not None
    image = data.get("imageRef")
    if not image:
        raise BadRequest("Invalid input: 'imageRef' is required (booting from volume is not "
                         "supported).")
    if isinstance(image, str) and "/" in image:
        image = image.rstrip("/").rsplit("/", 1)[-1]
    image = _uuid(image, "imageRef")
    flavor = data.get("flavorRef")
    if isinstance(flavor, int) and not isinstance(flavor, bool):
        flavor = str(flavor)
    if not isinstance(flavor, str) or not flavor:
        raise BadRequest("Invalid input: 'flavorRef' is a required property (a flavor ID).")
    flavor = flavor.rstrip("/").rsplit("/", 1)[-1]
    nets = parse_networks(data["networks"]) if "networks" in data else None
    user_data = data.get("user_data")
    if user_data is not None:
        if not isinstance(user_data, str):
            raise BadRequest("Invalid input for field/attribute user_data: a base64 string is "
                             "expected.")
        if len(user_data) > MAX_USER_DATA:
            raise BadRequest(f"Invalid input for field/attribute user_data: at most "
                             f"{MAX_USER_DATA} bytes of base64 are allowed.")
        try:
            base64.b64decode(user_data, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("Invalid input for field/attribute user_data: it is not valid "
                             "base64.") from None
    meta = views.metadata(data.get("metadata", {}), core.settings.quotas["metadata_items"])
    groups = data.get("security_groups", [])
    if not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("name"), str) and g["name"]
            for g in groups):
        raise BadRequest("Invalid input for field/attribute security_groups: a list of "
                         "{\"name\": ...} objects is expected.")
    az = views.text(data, "availability_zone")
    force_host = None
    if az and ":" in az:
        if not req.ctx.is_admin:
            raise BadRequest("Policy doesn't allow forcing a host (availability_zone "
                             "'zone:host' is for admins).")
        az, _, force_host = az.partition(":")
        force_host = force_host.split(":", 1)[0] or None
        az = az or None
    min_count = views.integer(data, "min_count", 1, 1, 1000)
    max_count = views.integer(data, "max_count", min_count, 1, 1000)
    if max_count < min_count:
        raise BadRequest("min_count must be <= max_count.")
    hints = req.body.get("os:scheduler_hints") or req.body.get("OS-SCH-HNT:scheduler_hints") \
        or {}
    if not isinstance(hints, dict):
        raise BadRequest("Invalid input for os:scheduler_hints: an object is expected.")

    def hint_list(key: str) -> list[str]:
        raw = hints.get(key, [])
        raw = [raw] if isinstance(raw, str) else raw
        if not isinstance(raw, list):
            raise BadRequest(f"Invalid input for scheduler hint {key}: a server UUID or a list.")
        return [_uuid(x, key) for x in raw]

    group = hints.get("group")
    if group is not None:
        group = _uuid(group, "group")
    extra = set(req.body) - {"server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"}
    if extra:
        raise BadRequest(f"Invalid input: unexpected keys {sorted(extra)} in the body.")
    return CreateRequest(
        name=name, image_id=image, flavor_id=flavor, networks=nets,
        key_name=views.text(data, "key_name"), user_data=user_data, metadata=meta,
        security_groups=[g["name"] for g in groups], availability_zone=az,
        force_host=force_host,
        config_drive=views.boolean(data.get("config_drive", False) or False, "config_drive"),
        min_count=min_count, max_count=max_count, group_id=group,
        same_host=hint_list("same_host"), different_host=hint_list("different_host"),
        networks_required=views.mv(req) >= (2, 37))


def _parse_time(value: str, key: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid filter {key}: {value!r} is not an ISO 8601 time.") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def add_routes(router: Router, core: ComputeCore) -> None:
    flow = ServerFlow(core)

    def ports(s: Session, sid: str) -> list[m.ServerPort]:
        return list(s.scalars(sa.select(m.ServerPort).where(m.ServerPort.server_id == sid)))

    def host_states(s: Session) -> dict[str, str]:
        return {h.host: ("UP" if core.alive(h) else "DOWN") if h.enabled else "MAINTENANCE"
                for h in s.scalars(sa.select(m.ComputeHost))}

    def floating(port_ids: list[str]) -> dict[str, list[str]]:
        """Floating IPs of these ports from the network API; none shown when it fails."""
        try:
            return core.downstream.floating_map(port_ids)
        except ServiceError as exc:
            LOG.warning("floating IPs cannot be read: %s", exc)
            return {}

    def show(req: Req, s: Session, srv: m.Server, states: dict[str, str] | None = None,
             fips: dict[str, list[str]] | None = None) -> dict[str, Any]:
        hs = None
        if req.ctx.is_admin:
            hs = (states if states is not None else host_states(s)).get(srv.host or "", "")
        mine = ports(s, srv.id)
        if fips is None:
            fips = floating([p.port_id for p in mine])
        return views.server(req, srv, mine, req.ctx.is_admin, hs, fips)

    @router.add("POST", P, status=202)
    def create(req: Req) -> Any:
        core.require_member(req.ctx, "os_compute_api:servers:create")
        parsed = parse_create(req, core)
        ids = flow.create(req.ctx, parsed)
        body: dict[str, Any] = {"server": {
            "id": ids[0], "links": views.link(req, f"servers/{ids[0]}"),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": n} for n in (parsed.security_groups or ["default"])],
            "adminPass": ""}}
        if req.body["server"].get("return_reservation_id"):
            body = {"reservation_id": f"r-{ids[0][:8]}"}
        return JSONResponse(body, status_code=202,
                            headers={"Location": f"{req.base_url}/v2.1/servers/{ids[0]}"})

    def listing(req: Req, detail: bool) -> dict[str, Any]:
        ctx = req.ctx
        q = req.query
        allowed = {"name", "status", "host", "image", "flavor", "changes-since", "all_tenants",
                   "project_id", "tenant_id", "limit", "marker", "deleted", "sort_key",
                   "sort_dir", "ip", "availability_zone", "reservation_id", "changes-before",
                   "user_id", "key_name", "vm_state", "task_state", "power_state", "locked",
                   "config_drive", "created_at", "launched_at", "terminated_at", "uuid",
                   "hostname", "node", "tags", "not-tags", "tags-any", "not-tags-any",
                   "description", "ip6"}
        stmt = sa.select(m.Server)
        all_tenants = "all_tenants" in q and q.get("all_tenants", "").lower() not in (
            "0", "false", "off", "no")
        if not ctx.is_admin:
            # Nova ignores the filters a non-admin may not use (host, all_tenants, deleted)
            stmt = stmt.where(m.Server.project_id == ctx.project_id)
            all_tenants = False
        project = q.get("project_id") or q.get("tenant_id")
        if ctx.is_admin and project:
            stmt = stmt.where(m.Server.project_id == project)
        elif ctx.is_admin and not all_tenants:
            stmt = stmt.where(m.Server.project_id == ctx.project_id)
        deleted = ctx.is_admin and q.get("deleted", "").lower() in ("true", "1", "yes")
        stmt = stmt.where(m.Server.deleted.is_(deleted))
        for key in q:
            if key not in allowed:
                raise BadRequest(f"Invalid filter {key!r}; filters allowed: "
                                 f"{', '.join(sorted(allowed))}.")
        if "changes-since" in q:
            since = _parse_time(q["changes-since"], "changes-since")
            stmt = stmt.where(m.Server.updated_at >= since)
        with core.db.session() as s:
            core.expire_dead_builds(s)
            rows = list(s.scalars(stmt.order_by(m.Server.created_at.desc(),
                                                m.Server.id.desc())))
            if "changes-since" in q and not deleted:
                rows += list(s.scalars(sa.select(m.Server).where(
                    m.Server.deleted.is_(True),
                    m.Server.updated_at >= _parse_time(q["changes-since"], "changes-since"),
                    *([m.Server.project_id == ctx.project_id] if not (
                        ctx.is_admin and all_tenants) else []))))
            if "name" in q:
                try:
                    pattern = re.compile(q["name"])
                except re.error:
                    raise BadRequest(f"Invalid filter name: {q['name']!r} is not a regular "
                                     "expression.") from None
                rows = [r for r in rows if pattern.search(r.name)]
            if "status" in q:
                wanted = {x.upper() for x in q.getlist("status")}
                rows = [r for r in rows if views.status(r) in wanted]
            if "host" in q and ctx.is_admin:
                rows = [r for r in rows if r.host == q["host"]]
            if "image" in q:
                img = q["image"].rstrip("/").rsplit("/", 1)[-1]
                rows = [r for r in rows if r.image_id == img]
            if "flavor" in q:
                fl = q["flavor"].rstrip("/").rsplit("/", 1)[-1]
                rows = [r for r in rows if r.flavor_id == fl]
            if "availability_zone" in q:
                rows = [r for r in rows if r.availability_zone == q["availability_zone"]]
            if "ip" in q:
                try:
                    ip_re = re.compile(q["ip"])
                except re.error:
                    raise BadRequest("Invalid filter ip: not a regular expression.") from None
                with_ip = {a.server_id for a in s.scalars(sa.select(m.ServerAddress))
                           if ip_re.search(a.ip_address)}
                rows = [r for r in rows if r.id in with_ip]
            if "marker" in q:
                ids = [r.id for r in rows]
                if q["marker"] not in ids:
                    raise BadRequest(f"marker [{q['marker']}] not found")
                rows = rows[ids.index(q["marker"]) + 1:]
            limit = None
            if "limit" in q:
                limit = views.integer({"limit": q["limit"]}, "limit", minimum=0)
            more = limit is not None and len(rows) > limit
            rows = rows[:limit] if limit is not None else rows
            states = host_states(s) if detail and ctx.is_admin else {}
            fips: dict[str, list[str]] = {}
            if detail and rows:
                fips = floating(list(s.scalars(sa.select(m.ServerPort.port_id).where(
                    m.ServerPort.server_id.in_([r.id for r in rows])))))
            items = [show(req, s, r, states, fips) if detail else views.brief(req, r)
                     for r in rows]
        key = "servers"
        body: dict[str, Any] = {key: items}
        if more and rows:
            path = "servers/detail" if detail else "servers"
            body["servers_links"] = [{"rel": "next", "href": (
                f"{req.base_url}/v2.1/{path}?limit={limit}&marker={rows[-1].id}")}]
        return body

    @router.add("GET", P)
    def list_servers(req: Req) -> Any:
        return listing(req, False)

    @router.add("GET", P + "/detail")
    def list_detail(req: Req) -> Any:
        return listing(req, True)

    @router.add("GET", P + "/{id}")
    def get(req: Req) -> Any:
        with core.db.session() as s:
            core.expire_dead_builds(s)
            srv = core.server(s, req.ctx, req.params["id"])
            return {"server": show(req, s, srv)}

    @router.add("PUT", P + "/{id}")
    def update(req: Req) -> Any:
        data = views.obj(req.body, "server")
        views.only(data, {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig",
                          "description"}, "server")
        core.require_member(req.ctx, "os_compute_api:servers:update")

        def work(s: Session) -> dict[str, Any]:
            srv = core.server(s, req.ctx, req.params["id"])
            name = views.text(data, "name")
            if name is not None:
                srv.name = name
            srv.updated_at = utcnow()
            s.flush()
            return {"server": show(req, s, srv)}

        return core.transaction(work)

    @router.add("DELETE", P + "/{id}")
    def delete(req: Req) -> None:
        core.require_member(req.ctx, "os_compute_api:servers:delete")
        flow.delete(req.ctx, req.params["id"])

    # ---- metadata -----------------------------------------------------------------------

    def meta_change(req: Req, fn: Any) -> Any:
        core.require_member(req.ctx, "os_compute_api:server-metadata")

        def work(s: Session) -> Any:
            srv = core.server(s, req.ctx, req.params["id"])
            if srv.task_state == "deleting":
                raise Conflict(f"Cannot change the metadata of instance {srv.id} while it is "
                               "being deleted.")
            result, new = fn(dict(srv.meta))
            views.metadata(new, core.quota_limits(s, srv.project_id)["metadata_items"])
            srv.meta, srv.updated_at = new, utcnow()
            return result

        return core.transaction(work)

    @router.add("GET", P + "/{id}/metadata")
    def meta_list(req: Req) -> Any:
        with core.db.session() as s:
            return {"metadata": dict(core.server(s, req.ctx, req.params["id"]).meta)}

    @router.add("POST", P + "/{id}/metadata")
    def meta_merge(req: Req) -> Any:
        new = views.metadata(views.obj(req.body, "metadata") if isinstance(req.body, dict)
                             else None, -1)
        return meta_change(req, lambda cur: ({"metadata": {**cur, **new}}, {**cur, **new}))

    @router.add("PUT", P + "/{id}/metadata")
    def meta_replace(req: Req) -> Any:
        new = views.metadata(views.obj(req.body, "metadata"), -1)
        return meta_change(req, lambda cur: ({"metadata": new}, new))

    @router.add("GET", P + "/{id}/metadata/{key}")
    def meta_get(req: Req) -> Any:
        with core.db.session() as s:
            meta = core.server(s, req.ctx, req.params["id"]).meta
        if req.params["key"] not in meta:
            raise NotFound("Metadata item was not found")
        return {"meta": {req.params["key"]: meta[req.params["key"]]}}

    @router.add("PUT", P + "/{id}/metadata/{key}")
    def meta_put(req: Req) -> Any:
        item = views.metadata(views.obj(req.body, "meta"), -1)
        key = req.params["key"]
        if list(item) != [key]:
            raise BadRequest("Request body and URI mismatch: the body must hold exactly the "
                             "key of the URI.")
        return meta_change(req, lambda cur: ({"meta": item}, {**cur, **item}))

    @router.add("DELETE", P + "/{id}/metadata/{key}")
    def meta_delete(req: Req) -> None:
        key = req.params["key"]

        def fn(cur: dict[str, str]) -> Any:
            if key not in cur:
                raise NotFound("Metadata item was not found")
            cur.pop(key)
            return None, cur

        meta_change(req, fn)

    # ---- interfaces, ips, password -----------------------------------------------------

    @router.add("GET", P + "/{id}/os-interface")
    def interfaces(req: Req) -> Any:
        with core.db.session() as s:
            srv = core.server(s, req.ctx, req.params["id"])
            return {"interfaceAttachments": [{
                "port_id": p.port_id, "net_id": p.network_id, "mac_addr": p.mac_address,
                "port_state": "ACTIVE" if srv.vm_state == "active" else "DOWN",
                "fixed_ips": [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
                              for ip in p.fixed_ips]} for p in ports(s, srv.id)]}

    @router.add("GET", P + "/{id}/os-interface/{port}")
    def interface(req: Req) -> Any:
        found = [i for i in interfaces(req)["interfaceAttachments"]
                 if i["port_id"] == req.params["port"]]
        if not found:
            raise NotFound(f"Port {req.params['port']} is not attached to the instance.")
        return {"interfaceAttachment": found[0]}

    @router.add("GET", P + "/{id}/ips")
    def ips(req: Req) -> Any:
        with core.db.session() as s:
            srv = core.server(s, req.ctx, req.params["id"])
            return {"addresses": {k: [{"version": a["version"], "addr": a["addr"]} for a in v]
                                  for k, v in views.addresses(ports(s, srv.id)).items()}}

    @router.add("GET", P + "/{id}/ips/{network}")
    def ips_of(req: Req) -> Any:
        found = ips(req)["addresses"]
        if req.params["network"] not in found:
            raise NotFound("Instance is not a member of specified network")
        return {req.params["network"]: found[req.params["network"]]}

    @router.add("GET", P + "/{id}/os-security-groups")
    def security_groups(req: Req) -> Any:
        return {"security_groups": flow.server_security_groups(req.ctx, req.params["id"])}

    @router.add("GET", P + "/{id}/os-server-password")
    def password(req: Req) -> Any:
        with core.db.session() as s:
            return {"password": core.server(s, req.ctx, req.params["id"]).password or ""}

    @router.add("DELETE", P + "/{id}/os-server-password")
    def password_clear(req: Req) -> None:
        core.require_member(req.ctx, "os_compute_api:os-server-password:clear")

        def work(s: Session) -> None:
            core.server(s, req.ctx, req.params["id"]).password = None

        core.transaction(work)

    # ---- actions ------------------------------------------------------------------------

    @router.add("POST", P + "/{id}/action", status=202)
    def action(req: Req) -> Any:
        if not isinstance(req.body, dict) or len(req.body) != 1:
            raise BadRequest("Invalid input: the body must hold exactly one action.")
        name, arg = next(iter(req.body.items()))
        known = {*ACTIONS, "reboot", "os-getConsoleOutput", "createImage", *GROUP_ACTIONS}
        if name not in known:
            raise BadRequest(f"There is no such action: {name}; supported: "
                             f"{', '.join(sorted(known))}.")
        ctx = req.ctx
        if name == "os-getConsoleOutput":
            return console(req, arg)
        core.require_member(ctx, f"os_compute_api:servers:{name}")
        if name == "createImage":
            return create_image(req, arg)
        if name in GROUP_ACTIONS:
            if not isinstance(arg, dict) or set(arg) != {"name"} \
                    or not isinstance(arg["name"], str) or not arg["name"].strip():
                raise BadRequest(f"Invalid input for {name}: {{\"name\": \"<security group "
                                 "name or ID>\"} is expected.")
            flow.change_security_group(ctx, req.params["id"], arg["name"],
                                       add=name == "addSecurityGroup")
            return Response(status_code=202)
        if name == "reboot":
            if not isinstance(arg, dict) or arg.get("type") not in ("SOFT", "HARD") \
                    or set(arg) - {"type"}:
                raise BadRequest("Invalid input for reboot: {\"type\": \"SOFT\"|\"HARD\"} is "
                                 "expected.")
        elif arg is not None and not isinstance(arg, dict):
            raise BadRequest(f"Invalid input for {name}: null or an object is expected.")

        def work(s: Session) -> None:
            srv = core.server(s, ctx, req.params["id"])
            if name == "reboot":
                hard = arg["type"] == "HARD"
                states = ("active", "stopped", "paused", "suspended", "error") if hard \
                    else ("active",)
                busy = srv.task_state not in (None, "rebooting") if hard else \
                    srv.task_state is not None
                check_state(srv, "reboot", states, busy)
                srv.task_state = "rebooting_hard" if hard else "rebooting"
                srv.reboot_generation += 1
                srv.reboot_type = arg["type"]
                srv.desired_power = "running"
            else:
                allowed, task = ACTIONS[name]
                check_state(srv, name, allowed, srv.task_state is not None)
                srv.task_state = task
                srv.desired_power = DESIRED[name]
            srv.updated_at = utcnow()
            core.bump(s, srv.host)

        core.transaction(work)
        return Response(status_code=202)

    def check_state(srv: m.Server, action_name: str, states: tuple[str, ...], busy: bool
                    ) -> None:
        if srv.host is None:
            raise Conflict(f"Cannot '{action_name}' instance {srv.id} while it is in vm_state "
                           f"{srv.vm_state} (it has no host).")
        if srv.vm_state not in states:
            raise Conflict(f"Cannot '{action_name}' instance {srv.id} while it is in vm_state "
                           f"{srv.vm_state}")
        if busy:
            raise Conflict(f"Cannot '{action_name}' instance {srv.id} while it is in "
                           f"task_state {srv.task_state}")

    def console(req: Req, arg: Any) -> Any:
        if arg is not None and not isinstance(arg, dict):
            raise BadRequest("Invalid input for os-getConsoleOutput: an object is expected.")
        length = (arg or {}).get("length")
        if length is not None:
            length = views.integer({"length": length}, "length", minimum=-1)
        with core.db.session() as s:
            srv = core.server(s, req.ctx, req.params["id"])
            if srv.vm_state == "building" and not srv.console_tail:
                raise Conflict(f"Cannot 'get_console_output' instance {srv.id} while it is in "
                               "vm_state building")
            text = srv.console_tail
        lines = text.splitlines(keepends=True)
        if length is not None and length >= 0:
            lines = lines[-length:] if length else []
        return JSONResponse({"output": "".join(lines)}, status_code=200)

    def create_image(req: Req, arg: Any) -> Any:
        if not isinstance(arg, dict):
            raise BadRequest("Invalid input for createImage: an object with 'name' is expected.")
        views.only(arg, {"name", "metadata"}, "createImage")
        name = views.text(arg, "name", required=True)
        extra = views.metadata(arg.get("metadata", {}), 128)
        ctx = req.ctx

        def check(s: Session) -> m.Server:
            srv = core.server(s, ctx, req.params["id"])
            check_state(srv, "createImage", ("active", "stopped", "paused", "suspended"),
                        srv.task_state is not None)
            return srv

        srv = core.transaction(check)
        props = {k: v for k, v in srv.image.get("properties", {}).items()
                 if isinstance(v, str)}
        body = {**props, **extra, "name": name, "disk_format": "qcow2",
                "container_format": "bare", "visibility": "private",
                "instance_uuid": srv.id, "image_type": "snapshot",
                "base_image_ref": srv.image_id, "min_disk": srv.flavor["disk"],
                "min_ram": int(srv.image.get("min_ram") or 0)}
        try:
            image = core.downstream.create_image(ctx.token, body)
        except ServiceError as exc:
            if exc.temporary:
                raise ServiceUnavailable(f"The image service failed: {exc}") from None
            raise BadRequest(f"The image service refused the snapshot: {exc}") from None

        def record(s: Session) -> bool:
            fresh = core.server(s, ctx, srv.id)
            if fresh.task_state is not None:
                return False
            fresh.snapshots = [*fresh.snapshots, {"image_id": image["id"], "name": str(name)}]
            fresh.task_state, fresh.updated_at = "image_uploading", utcnow()
            core.bump(s, fresh.host)
            return True

        if not core.transaction(record):
            with contextlib.suppress(ServiceError):
                core.downstream.delete_image(ctx.token, image["id"])
            raise Conflict(f"Cannot 'createImage' instance {srv.id} while it is in "
                           "task_state busy")
        location = f"{getattr(core.downstream, 'image_url', '')}/v2/images/{image['id']}"
        body_out = {"image_id": image["id"]} if views.mv(req) >= (2, 45) else None
        return JSONResponse(body_out, status_code=202, headers={"Location": location})


def context_project(ctx: AuthContext) -> str:
    return ctx.project_id or ""
