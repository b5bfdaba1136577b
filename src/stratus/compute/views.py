"""Request parsing helpers, microversions, and the JSON shapes of compute resources.

Request bodies are read by stratus.common.validation under compute's dialect
(:data:`NOVA`, :data:`FIELDS`); ``obj``/``only``/``text``/``integer``/``boolean`` are
thin calls into it under the names the handlers use. Lists are paged by
stratus.common.listing under :data:`NOVA_LISTS` (:data:`LISTER`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from stratus.common.app import Req
from stratus.common.errors import BadRequest, Forbidden
from stratus.common.listing import ListDialect, Lister
from stratus.common.timeutil import isotime
from stratus.common.validation import Dialect, Fields
from stratus.compute import models as m

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 96)  # every step up to it: docs/compute-api.md, Microversions
VERSION_RE = re.compile(r"^([1-9][0-9]*)\.([0-9]+)$")
STATUS = {"building": "BUILD", "active": "ACTIVE", "stopped": "SHUTOFF", "paused": "PAUSED",
          "suspended": "SUSPENDED", "error": "ERROR", "deleted": "DELETED",
          "resized": "VERIFY_RESIZE"}
POWER = {0: "NOSTATE", 1: "RUNNING", 3: "PAUSED", 4: "SHUTDOWN", 6: "CRASHED", 7: "SUSPENDED"}


def version_text(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def mv(req: Req) -> tuple[int, int]:
    """The microversion the middleware negotiated for this request."""
    state = req.request.scope.get("state", {})
    value = state.get("microversion", MIN_VERSION)
    return (int(value[0]), int(value[1]))


NOVA = Dialect(
    body="Invalid input: the body must be a JSON object with a '{key}' object.",
    unknown=("Invalid input for {kind}: additional properties are not allowed "
             "({names} unexpected); allowed: {allowed}."),
    required="Invalid input: '{key}' is a required property.",
    not_string="Invalid input for field/attribute {key}: {value!r} is not a string.",
    blank=("Invalid input for field/attribute {key}: it must be 1 to {max_len} characters, "
           "not only spaces."),
    too_long=("Invalid input for field/attribute {key}: it must be 1 to {max_len} characters, "
              "not only spaces."),
    not_boolean="Invalid input for field/attribute {key}: {value!r} is not a boolean.",
    not_integer="Invalid input for field/attribute {key}: {value!r} is not an integer.",
    out_of_range="Invalid input for field/attribute {key}: {value} must be between {lo} and {hi}.",
    true_words=("true", "1", "yes", "on"),
    false_words=("false", "0", "no", "off"),
    int_rule="int",
    blank_is_missing=True,
    blank_whitespace=True,
    copy_body=True,
)
"""Compute's wording and rules for request bodies (stratus.common.validation)."""
FIELDS = Fields(NOVA)


def obj(body: Any, key: str) -> dict[str, Any]:
    """A copy of the object under ``key`` in a request body."""
    return FIELDS.body(body, key)


def only(data: dict[str, Any], allowed: set[str], what: str) -> None:
    """Refuse attributes outside ``allowed``."""
    FIELDS.only(data, allowed, what)


def text(data: dict[str, Any], key: str, required: bool = False, maxlen: int = 255,
         default: str | None = None, allow_empty: bool = False) -> str | None:
    """A string of 1 to ``maxlen`` characters, not only spaces (``default`` when absent
    or null)."""
    value: str | None = FIELDS.text(data, key, default=default, required=required,
                                    max_len=maxlen, allow_empty=allow_empty)
    return value


def integer(data: dict[str, Any], key: str, default: int | None = None, minimum: int = 0,
            maximum: int = 2**31 - 1) -> int:
    """An integer from ``minimum`` to ``maximum`` (strings and integral floats too);
    ``default`` when absent, null or empty, required when ``default`` is None."""
    value = FIELDS.integer(data, key, minimum, maximum, default=default,
                           required=default is None)
    assert value is not None  # required, or the default
    return value


def boolean(value: Any, key: str) -> bool:
    """JSON true/false or one of Nova's words (true/1/yes/on, false/0/no/off)."""
    return FIELDS.flag(value, key)


def _limit(raw: str) -> int:
    return integer({"limit": raw}, "limit", minimum=0)


NOVA_LISTS = ListDialect(
    control=frozenset({"limit", "marker", "sort_key", "sort_dir"}),
    read_limit=_limit,
    marker_missing="marker [{marker}] not found",
    bad_sort_key="Invalid sort_key {key}; use one of {allowed}.",
    bad_sort_dir="Invalid sort_dir; use asc or desc.",
)
"""Compute's paging rules and wording (stratus.common.listing): no cap on ``limit``, read
as a body integer of at least 0; a marker not in the list is a 400."""
LISTER = Lister(NOVA_LISTS)


DISK_CONFIGS = ("AUTO", "MANUAL")


def disk_config(data: dict[str, Any]) -> str | None:
    """``OS-DCF:diskConfig`` of a create, update, rebuild or resize body (AUTO or MANUAL;
    None when absent). Kept and shown: the root disk is grown the same way either way
    (the guest grows its own filesystem)."""
    value = data.get("OS-DCF:diskConfig")
    if value is None and "OS-DCF:diskConfig" not in data:
        return None
    if value not in DISK_CONFIGS:
        raise BadRequest("Invalid input for field/attribute OS-DCF:diskConfig: "
                         f"{value!r} is not one of ['AUTO', 'MANUAL'].")
    return str(value)


def metadata(value: Any, limit: int, key: str = "metadata") -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {key}: an object of strings is "
                         "expected.")
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 255 or not isinstance(v, str) \
                or len(v) > 255:
            raise BadRequest(f"Invalid input for field/attribute {key}: keys must be 1-255 "
                             "characters and values strings of at most 255 characters.")
    if 0 <= limit < len(value):  # a quota: 403, as Nova answers it
        raise Forbidden(f"Quota exceeded for metadata_items: at most {limit} items are "
                        "allowed.")
    return dict(value)


def root(req: Req) -> str:
    """The API's root URL: the configured public URL (the catalog's, which ends in
    ``/v2.1``) or the request's host, without a version suffix."""
    base = req.base_url
    for suffix in ("/v2.1", "/v2"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def link(req: Req, path: str) -> list[dict[str, str]]:
    base = root(req)
    return [{"rel": "self", "href": f"{base}/v2.1/{path}"},
            {"rel": "bookmark", "href": f"{base}/{path}"}]


def flavor(req: Req, f: m.Flavor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f.id, "name": f.name, "ram": f.ram, "vcpus": f.vcpus, "disk": f.disk,
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral, "swap": f.swap or "",
        "rxtx_factor": f.rxtx_factor, "os-flavor-access:is_public": f.is_public,
        "OS-FLV-DISABLED:disabled": False, "links": link(req, f"flavors/{f.id}"),
    }
    v = mv(req)
    if v >= (2, 55):
        out["description"] = f.description
    if v >= (2, 61):
        out["extra_specs"] = dict(f.extra_specs or {})
    if v >= (2, 75):
        out["swap"] = f.swap or 0
    return out


def keypair(k: m.KeyPair, v: tuple[int, int], detail: bool = True,
            created: bool = False) -> dict[str, Any]:
    """A key pair as Nova shows it: in a list (``detail`` false: name, public key,
    fingerprint; type from 2.2), just made (``created``: plus its user), or shown (plus its
    user, id and dates)."""
    out: dict[str, Any] = {"name": k.name, "public_key": k.public_key,
                           "fingerprint": k.fingerprint}
    if v >= (2, 2):
        out["type"] = k.type
    if created:
        out["user_id"] = k.user_id
    elif detail:
        out.update({"user_id": k.user_id, "created_at": isotime(k.created_at),
                    "deleted": False, "deleted_at": None, "updated_at": None, "id": k.id})
    return out


def status(srv: m.Server) -> str:
    if srv.vm_state == "active" and srv.task_state == "rebooting":
        return "REBOOT"
    if srv.vm_state == "active" and srv.task_state == "rebooting_hard":
        return "HARD_REBOOT"
    if srv.task_state == "rebuilding" and srv.vm_state in ("active", "stopped", "error"):
        return "REBUILD"
    if srv.task_state == "resize_prep" and srv.vm_state in ("active", "stopped"):
        return "RESIZE"  # compute/server_resize.py
    if srv.task_state == "resize_reverting":
        return "REVERT_RESIZE"
    return STATUS.get(srv.vm_state, "UNKNOWN")


def addresses(ports: list[m.ServerPort], floating: dict[str, list[str]] | None = None
              ) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in sorted(ports, key=lambda x: x.position):
        entries = out.setdefault(p.network_name or p.network_id, [])
        for ip in p.fixed_ips:
            entries.append({"version": 6 if ":" in ip["ip_address"] else 4,
                            "addr": ip["ip_address"], "OS-EXT-IPS:type": "fixed",
                            "OS-EXT-IPS-MAC:mac_addr": p.mac_address})
        for fip in (floating or {}).get(p.port_id, []):
            entries.append({"version": 4, "addr": fip, "OS-EXT-IPS:type": "floating",
                            "OS-EXT-IPS-MAC:mac_addr": p.mac_address})
    return out


def security_group_names(srv: m.Server, ports: list[m.ServerPort]) -> list[str]:
    """The server's security groups by name (only a server with ports has any)."""
    return list(srv.security_groups) if ports else []


def server(req: Req, srv: m.Server, ports: list[m.ServerPort], admin: bool,
           host_state: str | None = None, floating: dict[str, list[str]] | None = None,
           volumes: list[m.BlockDeviceMapping] | None = None) -> dict[str, Any]:
    v = mv(req)
    f = srv.flavor
    if v >= (2, 47):
        flavor_view: dict[str, Any] = {
            "vcpus": f["vcpus"], "ram": f["ram"], "disk": f["disk"],
            "ephemeral": f.get("ephemeral", 0), "swap": f.get("swap", 0),
            "original_name": f["name"], "extra_specs": f.get("extra_specs", {})}
    else:
        flavor_view = {"id": srv.flavor_id, "links": [
            {"rel": "bookmark", "href": f"{root(req)}/flavors/{srv.flavor_id}"}]}
    host_id = hashlib.sha224(f"{srv.project_id}{srv.host}".encode()).hexdigest() \
        if srv.host else ""
    out: dict[str, Any] = {
        "id": srv.id, "name": srv.name, "status": status(srv), "tenant_id": srv.project_id,
        "user_id": srv.user_id, "metadata": dict(srv.meta), "hostId": host_id,
        "image": {"id": srv.image_id, "links": [
            {"rel": "bookmark", "href": f"{root(req)}/images/{srv.image_id}"}]}
        if srv.image_id else "",  # "" when it boots from a volume (as Nova)
        "flavor": flavor_view, "created": isotime(srv.created_at),
        "updated": isotime(srv.updated_at), "addresses": addresses(ports, floating),
        "accessIPv4": srv.access_ip_v4 or "", "accessIPv6": srv.access_ip_v6 or "",
        "links": link(req, f"servers/{srv.id}"),
        "OS-DCF:diskConfig": srv.disk_config or "MANUAL",
        "OS-EXT-AZ:availability_zone": srv.availability_zone or "",
        "config_drive": "True" if srv.config_drive else "", "key_name": srv.key_name,
        "OS-SRV-USG:launched_at": srv.launched_at.strftime("%Y-%m-%dT%H:%M:%S.000000")
        if srv.launched_at else None,
        "OS-SRV-USG:terminated_at": isotime(srv.deleted_at),
        "OS-EXT-STS:task_state": srv.task_state, "OS-EXT-STS:vm_state": srv.vm_state,
        "OS-EXT-STS:power_state": srv.power_state,
        "os-extended-volumes:volumes_attached": [
            {"id": b.volume_id, **({"delete_on_termination": b.delete_on_termination}
                                   if v >= (2, 3) else {})} for b in volumes or []],
    }
    shown_status = out["status"]
    if shown_status in PROGRESS_STATUSES:  # Nova shows progress only in these
        out["progress"] = srv.progress or 0
    groups = security_group_names(srv, ports)
    if groups:  # Nova leaves the key out for a server in no group
        out["security_groups"] = [{"name": n} for n in groups]
    # An error's fault, or on a working server a warning the agent reported (a code under
    # 500: its spawn was slow, agent/compute/hostcheck.py; Nova shows faults on errors only).
    if srv.fault and (srv.vm_state == "error" or int(srv.fault.get("code") or 500) < 500):
        fault = {"code": srv.fault.get("code", 500), "created": srv.fault.get("created"),
                 "message": srv.fault.get("message", "")}
        if admin:
            fault["details"] = srv.fault.get("details", "")
        out["fault"] = fault
    if v >= (2, 90):  # the hostname is shown to its owner too (it may set it)
        out["OS-EXT-SRV-ATTR:hostname"] = srv.hostname
    if admin:
        out["OS-EXT-SRV-ATTR:host"] = srv.host
        out["OS-EXT-SRV-ATTR:hypervisor_hostname"] = srv.host
        out["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{srv.id[:8]}"
        if v >= (2, 3):
            out.update({"OS-EXT-SRV-ATTR:hostname": srv.hostname,
                        "OS-EXT-SRV-ATTR:launch_index": srv.launch_index,
                        "OS-EXT-SRV-ATTR:reservation_id": f"r-{srv.id[:8]}",
                        "OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:ramdisk_id": "",
                        "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                        "OS-EXT-SRV-ATTR:user_data": srv.user_data})
    if v >= (2, 9):
        out["locked"] = srv.locked_by is not None
    if v >= (2, 16) and admin:
        out["host_status"] = host_state or ""
    if v >= (2, 19):
        out["description"] = srv.description
    if v >= (2, 26):
        out["tags"] = list(srv.tags or [])
    if v >= (2, 63):
        out["trusted_image_certificates"] = None  # refused at create and rebuild
    if v >= (2, 73):
        out["locked_reason"] = srv.locked_reason
    if v >= (2, 96):
        out["pinned_availability_zone"] = srv.requested_az  # the zone asked for at create
    return out


# the statuses in which Nova shows a server's progress (absent in the others)
PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE",
                               "MIGRATING"})

BASIC_KEYS = frozenset({
    "id", "name", "status", "image", "flavor", "fault", "user_id", "tenant_id", "created",
    "updated", "progress", "metadata", "links", "addresses", "hostId", "OS-DCF:diskConfig",
    "accessIPv4", "accessIPv6", "locked", "description", "tags",
    "trusted_image_certificates", "locked_reason", "server_groups"})


def basic(full: dict[str, Any]) -> dict[str, Any]:
    """The server as Nova answers an update (before 2.75): :func:`server` without the
    extension attributes (zone, states, host, volumes, groups, key, config drive) and
    with plain addresses."""
    out = {k: v for k, v in full.items() if k in BASIC_KEYS}
    out["addresses"] = {net: [{"version": a["version"], "addr": a["addr"]} for a in entries]
                        for net, entries in full["addresses"].items()}
    return out


def brief(req: Req, srv: m.Server) -> dict[str, Any]:
    return {"id": srv.id, "name": srv.name, "links": link(req, f"servers/{srv.id}")}


def _member_of(attr: str, wanted: set[str]) -> Callable[[m.Server], object]:
    return lambda r: getattr(r, attr) in wanted


def _time_matches(attr: str, key: str, raw: str) -> Callable[[m.Server], object]:
    try:
        pattern = re.compile(raw)
    except re.error:
        raise BadRequest(f"Invalid filter {key}: {raw!r} is not a regular expression.") \
            from None

    def test(r: m.Server) -> object:
        when = getattr(r, attr)
        return when is not None and pattern.search(when.strftime("%Y-%m-%d %H:%M:%S"))
    return test


def state_filters(q: Any) -> list[Callable[[m.Server], object]]:
    """The tests of the filters of api/servers.py's ``OWNER_FILTERS_2_83`` a listing gives
    (exact matches; ``config_drive`` a boolean word, ``power_state`` a number or its name;
    ``created_at``, ``launched_at``, ``terminated_at`` a regular expression searched in the
    time as ``YYYY-MM-DD HH:MM:SS``, as Nova matches them against its stored times)."""
    tests: list[Callable[[m.Server], object]] = []
    plain = {"availability_zone": "availability_zone", "key_name": "key_name",
             "vm_state": "vm_state", "task_state": "task_state", "user_id": "user_id"}
    for key, attr in plain.items():
        if key in q:
            tests.append(_member_of(attr, set(q.getlist(key))))
    if "config_drive" in q:
        drive = boolean(q["config_drive"], "config_drive")
        tests.append(lambda r: bool(r.config_drive) == drive)
    if "power_state" in q:
        names = {n.lower(): k for k, n in POWER.items()}
        states = set()
        for raw in q.getlist("power_state"):
            state = names.get(raw.lower()) if not raw.isdigit() else int(raw)
            if state is None:
                raise BadRequest(f"Invalid filter power_state: {raw!r}; a number or one of "
                                 f"{', '.join(sorted(names))}.")
            states.add(state)
        tests.append(lambda r: r.power_state in states)
    for key, attr in (("created_at", "created_at"), ("launched_at", "launched_at"),
                      ("terminated_at", "deleted_at")):
        if key in q:
            tests.append(_time_matches(attr, key, q[key]))
    if "progress" in q:
        progress = integer({"progress": q["progress"]}, "progress", maximum=100)
        tests.append(lambda r: (r.progress or 0) == progress)
    return tests


def action_time(value: Any) -> str | None:
    """An instance action's time as Nova shows it (``2026-01-02T03:04:05.000000``)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def instance_action(a: m.InstanceAction, v: tuple[int, int]) -> dict[str, Any]:
    """One action of os-instance-actions (``updated_at`` from 2.58)."""
    out: dict[str, Any] = {
        "action": a.action, "instance_uuid": a.server_id, "request_id": a.request_id,
        "user_id": a.user_id, "project_id": a.project_id,
        "start_time": action_time(a.start_time), "message": a.message}
    if v >= (2, 58):
        out["updated_at"] = action_time(a.updated_at)
    return out


def action_event(ev: m.InstanceActionEvent, project_id: str, v: tuple[int, int],
                 privileged: bool, details: bool) -> dict[str, Any]:
    """One event of an action: ``traceback`` and (from 2.62) ``host`` when ``privileged``
    (the events policy), ``hostId`` from 2.62, ``details`` from 2.84 when allowed."""
    out: dict[str, Any] = {
        "event": ev.event, "start_time": action_time(ev.start_time),
        "finish_time": action_time(ev.finish_time), "result": ev.result}
    if privileged:
        out["traceback"] = ev.traceback
    if v >= (2, 62):
        host = ev.host or ""
        out["hostId"] = hashlib.sha224(f"{project_id}{host}".encode()).hexdigest() \
            if host else ""
        if privileged:
            out["host"] = host
    if details:
        out["details"] = ev.details
    return out
