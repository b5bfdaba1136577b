# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""What the stratus.cloud.servers inventory plugin makes of a cloud's servers.

``read_cloud(client, cloud, options)`` lists the servers (of every project
with ``all_projects``) with the names of their projects, flavors and images;
``host_entry(server, cloud, options)`` gives a server's host name, hostvars
and default groups:

- host name: the server's name (``inventory_hostname: name``; a second server
  of the same name is then known by its ID) or its ID (``uuid``);
- ``ansible_host``: the first floating IP, else (or with ``private``) the
  first fixed IP;
- hostvars ``stratus``: id, name, status, project, flavor, image,
  availability_zone, metadata, fixed/floating addresses, cloud and region;
  with ``expand_hostvars``, the server's whole API representation under
  ``stratus.server`` too;
- groups: the cloud's name, ``project-<name>``, ``flavor-<name>``,
  ``image-<name>``, ``az-<zone>``, ``status-<status>`` and
  ``meta-<key>_<value>`` per metadata item.

Standard library only.
"""

from __future__ import annotations

import re

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError


def safe(text):
    """A group name part: letters, digits, _ and - only."""
    return re.sub(r"[^A-Za-z0-9_\-]", "_", str(text))


def _names(client, service, path, key, label="name"):
    try:
        items = client.get(service, path).get(key) or []
    except StratusError as exc:
        if exc.status in (401, 403, 404):  # not allowed to list them: IDs will do
            return {}
        raise
    return dict((i["id"], i.get(label) or i["id"]) for i in items)


def read_cloud(client, cloud, options):
    """The servers of one cloud, each with ``_project``, ``_flavor`` and ``_image`` names."""
    query = {"all_tenants": "1"} if options.get("all_projects") else {}
    servers = client.get("compute", "/servers/detail", query=query).get("servers") or []
    projects = _names(client, "identity", "/v3/projects", "projects")
    flavors = _names(client, "compute", "/flavors/detail?is_public=None", "flavors")
    images = _names(client, "image", "/v2/images?limit=1000", "images")
    out = []
    for server in servers:
        server = dict(server)
        project_id = server.get("tenant_id") or server.get("project_id")
        server["_project"] = projects.get(project_id, project_id)
        flavor = server.get("flavor") or {}
        server["_flavor"] = flavor.get("original_name") or flavors.get(flavor.get("id"),
                                                                       flavor.get("id"))
        image = server.get("image") or {}
        image_id = image.get("id") if isinstance(image, dict) else None
        server["_image"] = images.get(image_id, image_id) if image_id else None
        out.append(server)
    return out


def addresses(server):
    """(fixed, floating) addresses of a server, in the order of its ``addresses``."""
    fixed, floating = [], []
    for entries in (server.get("addresses") or {}).values():
        for entry in entries:
            kind = entry.get("OS-EXT-IPS:type", "fixed")
            (floating if kind == "floating" else fixed).append(entry.get("addr"))
    return fixed, floating


def host_entry(server, cloud, region, options, taken=()):
    """(host name, hostvars, default groups) of one server; see the module docstring."""
    fixed, floating = addresses(server)
    if options.get("inventory_hostname") == "uuid" or server.get("name") in taken:
        name = server["id"]
    else:
        name = server.get("name") or server["id"]
    facts = {
        "id": server["id"],
        "name": server.get("name"),
        "status": server.get("status"),
        "project": server.get("_project"),
        "project_id": server.get("tenant_id"),
        "flavor": server.get("_flavor"),
        "image": server.get("_image"),
        "availability_zone": server.get("OS-EXT-AZ:availability_zone"),
        "metadata": server.get("metadata") or {},
        "fixed_ips": fixed,
        "floating_ips": floating,
        "private_v4": fixed[0] if fixed else None,
        "public_v4": floating[0] if floating else None,
        "cloud": cloud,
        "region": region,
    }
    if options.get("expand_hostvars"):
        facts["server"] = dict((k, v) for k, v in server.items() if not k.startswith("_"))
    hostvars = {"stratus": facts}
    address = (fixed or [None])[0] if options.get("private") else (floating or fixed or [None])[0]
    if address:
        hostvars["ansible_host"] = address
    groups = [safe(cloud)]
    for prefix, value in (("project", facts["project"]), ("flavor", facts["flavor"]),
                          ("image", facts["image"]), ("az", facts["availability_zone"]),
                          ("status", (facts["status"] or "").lower())):
        if value:
            groups.append(f"{prefix}-{safe(value)}")
    for key, value in sorted(facts["metadata"].items()):
        groups.append(f"meta-{safe(key)}_{safe(value)}")
    return name, hostvars, groups
