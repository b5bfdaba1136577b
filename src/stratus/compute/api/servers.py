"""Servers: create, list (with Nova's filters, marker and limit), show, rename, delete.

The request parsing of a create lives here (``parse_create``); what it names is checked
and the server made by the service layer (``ComputeCore.servers``, stratus/compute/
servers.py).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse

from stratus.common.app import Req, Routes
from stratus.common.auth import require_project_scope
from stratus.common.errors import BadRequest, Forbidden
from stratus.common.listing import href
from stratus.compute import models as m
from stratus.compute import server_tags, views
from stratus.compute.boot_volumes import local_root_image, parse_bdm_v2
from stratus.compute.core import ComputeCore
from stratus.compute.server_checks import CreateRequest
from stratus.compute.server_reads import ServerQuery, ServerShown

routes = Routes()
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
LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
HOSTNAME_RE = re.compile(rf"^{LABEL}$")  # 2.90: one label (RFC 1123)
FQDN_RE = re.compile(rf"^{LABEL}(?:\.{LABEL})*$")  # 2.94: a fully qualified name


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
            try:
                ipaddress.ip_address(item["fixed_ip"])
            except (ValueError, TypeError):
                raise BadRequest(f"Invalid input for field/attribute fixed_ip: "
                                 f"{item['fixed_ip']!r} is not an IP address.") from None
            entry["fixed_ip"] = str(item["fixed_ip"])
        out.append(entry)
    return out


def parse_create(req: Req, svc: ComputeCore) -> CreateRequest:
    data = views.obj(req.body, "server")
    v = views.mv(req)
    views.only(data, create_attrs(v), "server")
    refuse_unsupported(data)
    name = views.text(data, "name", required=True)
    assert name is not None
    if v < (2, 67) and isinstance(data.get("block_device_mapping_v2"), list) and any(
            isinstance(b, dict) and "volume_type" in b for b in data["block_device_mapping_v2"]):
        raise BadRequest("Invalid input for field/attribute block_device_mapping_v2: "
                         "volume_type is allowed from microversion 2.67.")
    devices = parse_bdm_v2(data.get("block_device_mapping_v2"), views.boolean)
    local_image = local_root_image(data.get("block_device_mapping_v2"))
    image = data.get("imageRef") or local_image
    boots_from_volume = any(b.boot_index == 0 for b in devices)
    if local_image and boots_from_volume:
        raise BadRequest("Invalid input: only one block device may have boot_index 0.")
    if local_image and isinstance(image, str) \
            and image.rstrip("/").rsplit("/", 1)[-1] != local_image:
        raise BadRequest("Invalid input: imageRef and the block_device_mapping_v2 entry "
                         "with destination_type local and boot_index 0 name different "
                         "images.")
    if not image and not boots_from_volume:
        raise BadRequest("Invalid input: 'imageRef' is required, or a "
                         "block_device_mapping_v2 entry with boot_index 0 (boot from volume).")
    if isinstance(image, str) and "/" in image:
        image = image.rstrip("/").rsplit("/", 1)[-1]
    image = "" if boots_from_volume else _uuid(image, "imageRef")
    flavor = data.get("flavorRef")
    if isinstance(flavor, int) and not isinstance(flavor, bool):
        flavor = str(flavor)
    if not isinstance(flavor, str) or not flavor:
        raise BadRequest("Invalid input: 'flavorRef' is a required property (a flavor ID).")
    flavor = flavor.rstrip("/").rsplit("/", 1)[-1]
    nets = parse_networks(data["networks"]) if "networks" in data else None
    user_data = check_user_data(data.get("user_data"))
    # the metadata_items quota is checked in the service layer (the project's limit)
    meta = views.metadata(data.get("metadata", {}), -1)
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
    if "host" in data or "hypervisor_hostname" in data:  # 2.74: admins only
        if not req.ctx.is_admin:
            raise Forbidden("Policy doesn't allow compute:servers:create:requested_destination "
                            "to be performed (host and hypervisor_hostname are for admins).")
        host = views.text(data, "host")
        node = views.text(data, "hypervisor_hostname")
        if host and node and host != node:
            raise BadRequest(f"Compute host {host} and node {node} do not match (a Stratus "
                             "host is its own hypervisor).")
        force_host = host or node
    min_count = views.integer(data, "min_count", 1, 1, 1000)
    max_count = views.integer(data, "max_count", min_count, 1, 1000)
    if max_count < min_count:
        raise BadRequest("min_count must be <= max_count.")
    hint_map = req.body.get("os:scheduler_hints") or req.body.get("OS-SCH-HNT:scheduler_hints") \
        or {}
    if not isinstance(hint_map, dict):
        raise BadRequest("Invalid input for os:scheduler_hints: an object is expected.")

    def hint_list(key: str) -> list[str]:
        raw = hint_map.get(key, [])
        raw = [raw] if isinstance(raw, str) else raw
        if not isinstance(raw, list):
            raise BadRequest(f"Invalid input for scheduler hint {key}: a server UUID or a list.")
        return [_uuid(x, key) for x in raw]

    group = hint_map.get("group")
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
        networks_required=views.mv(req) >= (2, 37), block_devices=devices,
        access_ip_v4=access_ip(data, 4), access_ip_v6=access_ip(data, 6),
        description=description(data), tags=parse_tags(data.get("tags")),
        hostname=parse_hostname(data, v, max_count),
        disk_config=views.disk_config(data) or "MANUAL")


def parse_hostname(data: dict[str, Any], v: tuple[int, int], count: int = 1) -> str | None:
    """2.90's ``hostname`` (an RFC 1123 label of at most 63 characters; from 2.94 a fully
    qualified name of at most 255), None when absent."""
    if "hostname" not in data:
        return None
    value = data["hostname"]
    fqdn = v >= (2, 94)
    pattern = FQDN_RE if fqdn else HOSTNAME_RE
    if not isinstance(value, str) or not pattern.match(value) \
            or len(value) > (255 if fqdn else 63):
        allowed = ("a fully qualified domain name of at most 255 characters (labels of "
                   "letters, digits and '-', not starting or ending with '-', joined by '.')"
                   if fqdn else "1-63 letters, digits and '-', not starting or ending with "
                   "'-' (a fully qualified name from microversion 2.94)")
        raise BadRequest(f"Invalid input for field/attribute hostname. Value: {value!r}. "
                         f"It must be {allowed}.")
    if count > 1:
        raise BadRequest("Invalid input: hostname cannot be given when several servers are "
                         "created at once (max_count > 1): each needs its own.")
    return value


def create_attrs(v: tuple[int, int]) -> set[str]:
    """The create attributes Nova's schema allows at microversion ``v``."""
    out = set(CREATE_ATTRS)
    if v < (2, 19):
        out.discard("description")
    if v < (2, 52):
        out.discard("tags")
    if v >= (2, 57):
        out.discard("personality")
    if v >= (2, 63):
        out.add("trusted_image_certificates")
    if v >= (2, 74):
        out.update({"host", "hypervisor_hostname"})
    if v >= (2, 90):
        out.add("hostname")
    return out


def refuse_unsupported(data: dict[str, Any]) -> None:
    """400 for what Stratus cannot honour: file injection (``personality``, before 2.57)
    and image certificate validation (``trusted_image_certificates``, from 2.63)."""
    if data.get("personality"):
        raise BadRequest("Personality file injection is not supported; give the files in "
                         "user_data (cloud-init) instead.")
    if data.get("trusted_image_certificates") is not None:
        raise BadRequest("Image certificate validation is not supported: Stratus verifies "
                         "no image signatures, so trusted_image_certificates cannot be "
                         "honoured (omit it or give null).")


def description(data: dict[str, Any]) -> str | None:
    """A create's or update's ``description`` (2.19): up to 255 characters, or null."""
    if data.get("description") is None:
        return None
    return views.text(data, "description", maxlen=255, allow_empty=True)


def parse_tags(value: Any) -> list[str]:
    """The ``tags`` of a create (2.52): the rules of compute/server_tags.py."""
    return [] if value is None else server_tags.check_tag_list(value)


def parsed_admin_pass(data: dict[str, Any]) -> str:
    """The ``adminPass`` a create gives, echoed in its answer as Nova does (a string;
    ``""`` when none is given: Stratus sets no password in the guest, so it makes none
    up)."""
    value = data.get("adminPass")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest("Invalid input for field/attribute adminPass: a string is "
                         "expected.")
    return value


def check_user_data(user_data: Any) -> str | None:
    """``user_data`` of a create or rebuild body: base64 of at most 65535 characters, or
    None."""
    if user_data is None:
        return None
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
    return user_data


def access_ip(data: dict[str, Any], family: int) -> str | None:
    """``accessIPv4``/``accessIPv6`` of a create or update body: an address of that family
    (kept as given, shown back), or None when absent."""
    key = f"accessIPv{family}"
    if key not in data:
        return None
    value = data[key]
    try:
        addr = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        addr = None
    if addr is None or addr.version != family:
        raise BadRequest(f"Invalid input for field/attribute {key}: {value!r} is not an "
                         f"IPv{family} address.")
    return str(addr)


def parse_time(value: str, key: str) -> datetime:
    """An ISO 8601 time of a filter as naive UTC; 400 when it is not one."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid filter {key}: {value!r} is not an ISO 8601 time.") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def server_view(req: Req, shown: ServerShown) -> dict[str, Any]:
    """One server as a show, update or rebuild answers it (``server_groups`` from 2.71,
    which a listing does not show)."""
    out = views.server(req, shown.server, shown.ports, req.ctx.is_admin, shown.host_state,
                       shown.floating, shown.volumes)
    if views.mv(req) >= (2, 71):
        out["server_groups"] = [shown.server.group_id] if shown.server.group_id else []
    return out


@routes.add("POST", P, status=202)
def create_server(req: Req, svc: ComputeCore) -> JSONResponse:
    svc.require_member(req.ctx, "os_compute_api:servers:create")
    require_project_scope(req.ctx, "os_compute_api:servers:create")
    parsed = parse_create(req, svc)
    admin_pass = parsed_admin_pass(req.body["server"])  # checked before anything is made
    ids = svc.servers.create(req.ctx, parsed)
    body: dict[str, Any] = {"server": {
        "id": ids[0], "links": views.link(req, f"servers/{ids[0]}"),
        "OS-DCF:diskConfig": parsed.disk_config,
        "security_groups": [{"name": n} for n in (parsed.security_groups or ["default"])],
        "adminPass": admin_pass}}
    if req.body["server"].get("return_reservation_id"):
        body = {"reservation_id": f"r-{ids[0][:8]}"}
    return JSONResponse(body, status_code=202,
                        headers={"Location": f"{views.root(req)}/v2.1/servers/{ids[0]}"})


LIST_FILTERS = {
    "name", "status", "host", "image", "flavor", "changes-since", "all_tenants", "project_id",
    "tenant_id", "limit", "marker", "deleted", "sort_key", "sort_dir", "ip",
    "availability_zone", "reservation_id", "changes-before", "user_id", "key_name",
    "vm_state", "task_state", "power_state", "locked", "config_drive", "created_at",
    "launched_at", "terminated_at", "uuid", "hostname", "node", "tags", "not-tags",
    "tags-any", "not-tags-any", "description", "ip6", "progress"}
# Filters Nova lets owners use from 2.83 (below, only admins: an owner's are ignored)
OWNER_FILTERS_2_83 = ("availability_zone", "config_drive", "key_name", "created_at",
                      "launched_at", "terminated_at", "power_state", "task_state", "vm_state",
                      "progress", "user_id")


def parse_listing(req: Req) -> ServerQuery:
    """The rows a listing asks for. Nova ignores the filters a non-admin may not use
    (host, all_tenants, deleted); an unknown filter is a 400."""
    ctx = req.ctx
    q = req.query
    all_tenants = "all_tenants" in q and q.get("all_tenants", "").lower() not in (
        "0", "false", "off", "no")
    if not ctx.is_admin:
        all_tenants = False
    query = ServerQuery(project=ctx.project_id)
    # as in Nova, project_id/tenant_id filter only with all_tenants (else: the caller's)
    project = q.get("project_id") or q.get("tenant_id")
    if ctx.is_admin and all_tenants and project:
        query.project = project
    elif ctx.is_admin and all_tenants:
        query.all_projects = True
    query.deleted = ctx.is_admin and q.get("deleted", "").lower() in ("true", "1", "yes")
    for key in q:
        if key not in LIST_FILTERS:
            raise BadRequest(f"Invalid filter {key!r}; filters allowed: "
                             f"{', '.join(sorted(LIST_FILTERS))}.")
    if "changes-since" in q:
        query.changes_since = parse_time(q["changes-since"], "changes-since")
        query.deleted_project = ctx.project_id
        query.deleted_all_projects = ctx.is_admin and all_tenants
    tests: list[Callable[[m.Server], object]] = []
    if "changes-before" in q and views.mv(req) >= (2, 66):
        before = parse_time(q["changes-before"], "changes-before")
        if query.changes_since is not None and query.changes_since > before:
            raise BadRequest("The value of changes-since must be less than or equal to "
                             "changes-before.")
        if query.changes_since is None:  # the deleted ones come too, as with changes-since
            query.changes_since = datetime(1970, 1, 1)
            query.deleted_project = ctx.project_id
            query.deleted_all_projects = ctx.is_admin and all_tenants
        tests.append(lambda r: r.updated_at <= before)
    if "name" in q:
        try:
            pattern = re.compile(q["name"])
        except re.error:
            raise BadRequest(f"Invalid filter name: {q['name']!r} is not a regular "
                             "expression.") from None
        tests.append(lambda r: pattern.search(r.name))
    if "status" in q:
        wanted = {x.upper() for x in q.getlist("status")}
        tests.append(lambda r: views.status(r) in wanted)
    if "host" in q and ctx.is_admin:
        tests.append(lambda r: r.host == q["host"])
    if "image" in q:
        img = q["image"].rstrip("/").rsplit("/", 1)[-1]
        tests.append(lambda r: r.image_id == img)
    if "flavor" in q:
        fl = q["flavor"].rstrip("/").rsplit("/", 1)[-1]
        tests.append(lambda r: r.flavor_id == fl)
    if ctx.is_admin or views.mv(req) >= (2, 83):
        tests.extend(views.state_filters(q))
    if views.mv(req) >= (2, 26):  # below it Nova ignores the tag filters
        tests.extend(server_tags.listing_filters(q))
    if "locked" in q and views.mv(req) >= (2, 73):
        locked = views.boolean(q["locked"], "locked")
        tests.append(lambda r: (r.locked_by is not None) == locked)
    if tests:
        query.keep = lambda r: all(test(r) for test in tests)
    if "ip" in q:
        try:
            query.ip = re.compile(q["ip"])
        except re.error:
            raise BadRequest("Invalid filter ip: not a regular expression.") from None
    return query


def server_id(srv: m.Server) -> str:
    return srv.id


def listing(req: Req, svc: ComputeCore, detail: bool) -> dict[str, Any]:
    q = req.query
    query = parse_listing(req)

    def paginate(rows: list[m.Server]) -> tuple[list[m.Server], bool]:
        # the marker is looked for before the limit is read (a bad marker's 400 first)
        rows, _ = views.LISTER.page(rows, q.get("marker"), None,
                                    id_of=server_id)
        return views.LISTER.page(rows, None, views.LISTER.limit(q), id_of=server_id)

    page = svc.servers.page(req.ctx, query, paginate, detail)
    admin = req.ctx.is_admin
    rows = page.servers
    items = [views.server(req, r, page.ports[r.id], admin,
                          page.host_state(r) if admin else None,
                          page.floating, page.volumes.get(r.id))
             if detail else views.brief(req, r) for r in rows]
    body: dict[str, Any] = {"servers": items}
    if page.more and rows:
        path = "servers/detail" if detail else "servers"
        body["servers_links"] = [{"rel": "next", "href": href(
            f"{views.root(req)}/v2.1/{path}", None, (),
            [("limit", str(views.LISTER.limit(q))), ("marker", rows[-1].id)])}]
    return body


@routes.add("GET", P)
def list_servers(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return listing(req, svc, False)


@routes.add("GET", P + "/detail")
def list_servers_detail(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return listing(req, svc, True)


@routes.add("GET", P + "/{id}")
def show_server(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"server": server_view(req, svc.servers.show(req.ctx, req.params["id"]))}


@routes.add("PUT", P + "/{id}")
def update_server(req: Req, svc: ComputeCore) -> dict[str, Any]:
    data = views.obj(req.body, "server")
    v = views.mv(req)
    views.only(data, {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig", "description",
                      *(("hostname",) if v >= (2, 90) else ())}, "server")
    svc.require_member(req.ctx, "os_compute_api:servers:update")
    access = {k: access_ip(data, n) for k, n in (("accessIPv4", 4), ("accessIPv6", 6))
              if k in data}
    if "description" in data:
        if views.mv(req) < (2, 19):
            raise BadRequest("Invalid input for server: additional properties are not "
                             "allowed ('description' was unexpected before 2.19).")
        access["description"] = description(data)
    if "hostname" in data:  # 2.90
        access["hostname"] = parse_hostname(data, v)
    if views.disk_config(data):
        access["disk_config"] = views.disk_config(data)
    shown = svc.servers.rename(req.ctx, req.params["id"], lambda: views.text(data, "name"),
                               access)
    full = server_view(req, shown)
    return {"server": full if views.mv(req) >= (2, 75) else views.basic(full)}


@routes.add("DELETE", P + "/{id}")
def delete_server(req: Req, svc: ComputeCore) -> None:
    svc.require_member(req.ctx, "os_compute_api:servers:delete")
    svc.servers.delete(req.ctx, req.params["id"])
