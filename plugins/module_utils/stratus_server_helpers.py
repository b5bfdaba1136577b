# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""What cloud_server and cloud_server_info share: power states, waits, addresses, lookups.

The power tables (which actions take a server from its status to the wanted
``power_state``), the polling waits on the compute API, the server's
addresses as the modules return them (``enrich``), the image and ``networks``
option resolution, and the servers ``cloud_server_info`` lists.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import time

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError

# Description of a floating IP that cloud_server allocated (it releases it on delete).
AUTO_FIP_MARK = "stratus.cloud.cloud_server auto floating IP of server "
# power_state option -> the server status it means
POWER_STATUS = {
    "started": "ACTIVE",
    "stopped": "SHUTOFF",
    "paused": "PAUSED",
    "suspended": "SUSPENDED",
}
# (current status, wanted power_state) -> actions, in order, each with the status it leads to
POWER_ACTIONS = {
    ("SHUTOFF", "started"): [("os-start", "ACTIVE")],
    ("PAUSED", "started"): [("unpause", "ACTIVE")],
    ("SUSPENDED", "started"): [("resume", "ACTIVE")],
    ("ACTIVE", "stopped"): [("os-stop", "SHUTOFF")],
    ("PAUSED", "stopped"): [("unpause", "ACTIVE"), ("os-stop", "SHUTOFF")],
    ("SUSPENDED", "stopped"): [("resume", "ACTIVE"), ("os-stop", "SHUTOFF")],
    ("ACTIVE", "paused"): [("pause", "PAUSED")],
    ("SHUTOFF", "paused"): [("os-start", "ACTIVE"), ("pause", "PAUSED")],
    ("SUSPENDED", "paused"): [("resume", "ACTIVE"), ("pause", "PAUSED")],
    ("ACTIVE", "suspended"): [("suspend", "SUSPENDED")],
    ("SHUTOFF", "suspended"): [("os-start", "ACTIVE"), ("suspend", "SUSPENDED")],
    ("PAUSED", "suspended"): [("unpause", "ACTIVE"), ("suspend", "SUSPENDED")],
}
# Statuses a server passes through on its way to a stable one.
TRANSIENT = ("BUILD", "REBOOT", "HARD_REBOOT", "MIGRATING", "RESIZE", "REBUILD")


def server_addresses(server):
    """(fixed, floating) addresses of a server, in the order of its ``addresses``."""
    fixed: list = []
    floating: list = []
    for entries in (server.get("addresses") or {}).values():
        for entry in entries:
            kind = entry.get("OS-EXT-IPS:type", "fixed")
            (floating if kind == "floating" else fixed).append(entry.get("addr"))
    return fixed, floating


def enrich(server, network=None):
    """The server dict plus ``floating_ip`` and ``access_ipv4`` (the floating, else fixed IP).

    When the server's ``addresses`` list no floating IP and a network API is
    given, the floating IPs of its ports are looked up there.
    """
    fixed, floating = server_addresses(server)
    if not floating and network is not None and server.get("id"):
        for port in network.list("ports", {"device_id": server["id"]}):
            for fip in network.list("floatingips", {"port_id": port["id"]}):
                floating.append(fip["floating_ip_address"])
    server = dict(server)
    server["floating_ip"] = floating[0] if floating else None
    first_fixed = next((a for a in fixed if a and ":" not in a), fixed[0] if fixed else None)
    server["access_ipv4"] = server["floating_ip"] or server.get("accessIPv4") or first_fixed
    return server


def wait_status(compute, server_id, wanted, timeout, what="server"):
    """Poll the server until its status is ``wanted``; ERROR fails with its fault message."""
    deadline = time.monotonic() + timeout
    interval = 0.5
    while True:
        server = compute.get_server(server_id)
        if server is None:
            raise StratusError(f"Server {server_id} disappeared while waiting for {wanted}.")
        status = server.get("status")
        if status == wanted:
            return server
        if status == "ERROR":
            fault = server.get("fault") or {}
            raise StratusError(
                "Server {} ({}) went to ERROR: {}".format(
                    server.get("name"), server_id, fault.get("message") or "no fault message"
                )
            )
        if time.monotonic() >= deadline:
            raise StratusError(
                f"Timed out after {timeout} s waiting for {what} {server_id} to be {wanted} "
                f"(it is {status}, task state {server.get('OS-EXT-STS:task_state')})."
            )
        time.sleep(interval)
        interval = min(interval * 1.5, 3.0)


def wait_gone(compute, server_id, timeout):
    deadline = time.monotonic() + timeout
    interval = 0.5
    while True:
        server = compute.get_server(server_id)
        if server is None or server.get("status") == "DELETED":
            return
        if time.monotonic() >= deadline:
            raise StratusError(
                f"Timed out after {timeout} s waiting for server {server_id} to be deleted "
                f"(it is {server.get('status')})."
            )
        time.sleep(interval)
        interval = min(interval * 1.5, 3.0)


def resolve_image(images, name_or_id):
    """The image ID for a name or ID: one visible match (the project's own wins)."""
    found = [i for i in images.find(name_or_id) if i.get("status", "active") == "active"]
    if len(found) > 1:
        own = [i for i in found if i.get("owner") == images.project_id]
        if len(own) == 1:
            found = own
        else:
            ids = ", ".join(i["id"] for i in found)
            raise StratusError(f"{len(found)} active images are named {name_or_id!r} ({ids}); "
                               "give the image ID.")
    if not found:
        raise StratusError(f"Image {name_or_id!r} was not found (or is not active).")
    return found[0]["id"]


def normalize_nics(value):
    """The networks option as ``"auto"``, ``"none"``, None or a list of dicts."""
    if value is None:
        return None
    if isinstance(value, str):
        if value in ("auto", "none"):
            return value
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise StratusError("networks must be a list, or the string auto or none.")
    out = []
    allowed = ("net-id", "net-name", "port-id", "port-name", "fixed_ip", "v4-fixed-ip")
    for item in value:
        if isinstance(item, str):
            if item in ("auto", "none"):
                raise StratusError(f"networks: {item!r} stands alone (networks: {item}), not "
                                   "in a list.")
            out.append({"net": item})
            continue
        if not isinstance(item, dict):
            raise StratusError(f"networks: {item!r} is neither a network name/ID nor a dict.")
        unknown = sorted(set(item) - set(allowed))
        if unknown:
            raise StratusError("networks: unknown keys {}; allowed: {}.".format(
                ", ".join(unknown), ", ".join(allowed)))
        nic = {}
        net = item.get("net-id") or item.get("net-name")
        port = item.get("port-id") or item.get("port-name")
        if bool(net) == bool(port):
            raise StratusError(f"networks: {item!r} needs exactly one of net-id, net-name, "
                               "port-id, port-name.")
        if net:
            nic["net"] = net
        else:
            nic["port"] = port
        fixed = item.get("fixed_ip") or item.get("v4-fixed-ip")
        if fixed:
            if port:
                raise StratusError(f"networks: {item!r}: fixed_ip goes with a network, not "
                                   "a port (the port has its addresses).")
            nic["fixed_ip"] = fixed
        out.append(nic)
    return out


def status_power(status):
    for power, wanted in POWER_STATUS.items():
        if wanted == status:
            return power
    return status.lower() if isinstance(status, str) else status


def servers_for_info(compute, network, server=None, filters=None, all_projects=False):
    """The servers matching a name or ID and the filters, each enriched (see ``enrich``)."""
    query = dict((k, v) for k, v in (filters or {}).items() if v is not None)
    if all_projects:
        query["all_tenants"] = "1"
    found = compute.find_servers(server, query) if server else compute.servers(query)
    return [enrich(s, network) for s in found]
