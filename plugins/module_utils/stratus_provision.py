# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_provision_plan: the plan of the stratus.cloud.provision role, before anything changes.

The role declares resources as data (``stratus_projects``, ``stratus_networks``,
...). ``check_references`` fails, naming the entry, when an entry names a
project, network, subnet, image, flavor, key pair, security group or volume
that is neither declared nor already in the cloud; ``mark`` adds the
ownership marker to what the role creates (metadata or property
``stratus_provision: <owner>`` on servers, volumes, images and flavors'
extra specs; a ``[stratus_provision:<owner>]`` suffix on the description of
networks, routers and security groups, which have no tags here); and
``prune_candidates`` lists, in deletion order, what carries the marker but is
no longer declared. ``ProvisionPlanInfo`` reads the cloud for both (it never
writes: the role's module tasks do, each in its own check mode).

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import re

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError

MARK_KEY = "stratus_provision"
# Order of creation; deletion (prune) goes the other way.
KINDS = ("projects", "users", "flavors", "images", "keypairs", "security_groups", "networks",
         "routers", "volumes", "servers")
PRUNABLE = ("servers", "volumes", "routers", "networks", "security_groups", "images", "flavors")
DESCRIBED = ("networks", "routers", "security_groups")
PROJECT_SCOPED = ("images", "security_groups", "networks", "routers", "volumes", "servers")


def description_mark(owner):
    return f"[{MARK_KEY}:{owner}]"


def marked_description(description, owner):
    """The description a described resource gets: the user's, then the marker."""
    mark = description_mark(owner)
    text = (description or "").strip()
    return f"{text} {mark}" if text else mark


def owner_of(kind, resource):
    """The provisioning owner a resource of ``kind`` carries, or None (made by hand)."""
    if kind in DESCRIBED:
        found = re.search(r"\[" + MARK_KEY + r":([^\]]+)\]\s*$", resource.get("description") or "")
        return found.group(1) if found else None
    if kind == "images":
        return resource.get(MARK_KEY) or (resource.get("properties") or {}).get(MARK_KEY)
    if kind == "flavors":
        return (resource.get("extra_specs") or {}).get(MARK_KEY)
    return (resource.get("metadata") or {}).get(MARK_KEY)


def _entries(declared, kind):
    entries = declared.get(kind) or []
    if not isinstance(entries, list):
        raise StratusError(
            f"stratus_{kind} must be a list of entries, not {type(entries).__name__}.")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise StratusError(f"stratus_{kind}[{index}] must be a mapping with a name.")
    names = [e["name"] for e in entries]
    seen = set()
    for entry in entries:
        key = (entry.get("project"), entry["name"])
        if key in seen:
            raise StratusError(f"stratus_{kind}: {entry['name']!r} is declared twice.")
        seen.add(key)
    return entries, names


def _names(items):
    out = []
    for item in items or []:
        if isinstance(item, dict):
            item = item.get("name") or item.get("net-name") or item.get("subnet")
        if item:
            out.append(item)
    return out


def references(kind, entry):
    """[(kind referred to, name)] of one entry."""
    refs = []
    if entry.get("project") and kind in PROJECT_SCOPED:
        refs.append(("projects", entry["project"]))
    if kind == "users":
        if entry.get("default_project"):
            refs.append(("projects", entry["default_project"]))
        for grant in entry.get("roles") or []:
            if isinstance(grant, dict) and grant.get("project"):
                refs.append(("projects", grant["project"]))
    elif kind == "routers":
        if entry.get("network"):
            refs.append(("networks", entry["network"]))
        refs += [("subnets", n) for n in _names(entry.get("interfaces"))]
    elif kind == "volumes" and entry.get("image"):
        refs.append(("images", entry["image"]))
    elif kind == "servers":
        for key, ref in (("image", "images"), ("flavor", "flavors"), ("key_name", "keypairs")):
            if entry.get(key):
                refs.append((ref, entry[key]))
        networks = entry.get("networks") or []
        refs += [("networks", n) for n in _names([networks] if isinstance(networks, str)
                                                 else networks)]
        refs += [("security_groups", n) for n in entry.get("security_groups") or []]
        refs += [("volumes", n) for n in entry.get("volumes") or []]
        if entry.get("floating_ip_pool"):
            refs.append(("networks", entry["floating_ip_pool"]))
    return refs


def check_references(declared, existing):
    """Fail on the first entry naming what is neither declared nor existing; returns None.

    ``declared`` maps a kind to its entries; ``existing`` maps a kind (and
    ``subnets``) to the set of names the cloud already has.
    """
    known = {}
    for kind in KINDS:
        known[kind] = set(_entries(declared, kind)[1]) | set(existing.get(kind) or ())
    known["subnets"] = set(existing.get("subnets") or ())
    for net in declared.get("networks") or []:
        known["subnets"] |= set(_names(net.get("subnets")))
    for kind in KINDS:
        for entry in declared.get(kind) or []:
            for ref_kind, name in references(kind, entry):
                if name not in known[ref_kind]:
                    raise StratusError(
                        "stratus_{}: {!r} names {} {!r}, which is neither declared (stratus_{})"
                        " nor in the cloud; nothing was changed.".format(
                            kind, entry["name"], ref_kind.rstrip("s").replace("_", " "), name,
                            "networks" if ref_kind == "subnets" else ref_kind,
                        )
                    )


def mark(declared, owner):
    """The declared entries with the ownership marker added (a new dict of lists)."""
    out = {}
    for kind in KINDS:
        entries = []
        for entry in declared.get(kind) or []:
            entry = dict(entry)
            if kind in DESCRIBED:
                entry["description"] = marked_description(entry.get("description"), owner)
            elif kind in ("servers", "volumes"):
                entry["metadata"] = dict(entry.get("metadata") or {}, **{MARK_KEY: owner})
            elif kind == "images":
                entry["properties"] = dict(entry.get("properties") or {}, **{MARK_KEY: owner})
            elif kind == "users":
                entry.pop("password", None)
            elif kind == "flavors":
                entry["extra_specs"] = dict(entry.get("extra_specs") or {}, **{MARK_KEY: owner})
            entries.append(entry)
        out[kind] = entries
    return out


def prune_candidates(declared, found, owner):
    """{kind: [{"name", "project"}]} of what ``owner`` made and the inventory no longer declares.

    ``found`` maps a prunable kind to the resources the cloud has, each a dict
    with ``name``, ``project`` (a name, or None) and what ``owner_of`` reads.
    """
    out = {}
    for kind in PRUNABLE:
        wanted = set((e.get("project"), e["name"]) for e in declared.get(kind) or [])
        names = set(e["name"] for e in declared.get(kind) or [])
        gone = []
        for resource in found.get(kind) or []:
            if owner_of(kind, resource) != owner:
                continue
            key = (resource.get("project"), resource["name"])
            if key in wanted or (resource["name"] in names and kind == "flavors"):
                continue
            if (None, resource["name"]) in wanted:
                continue
            gone.append({"name": resource["name"], "project": resource.get("project")})
        out[kind] = sorted(gone, key=lambda r: (r["project"] or "", r["name"]))
    return out


def pending(declared, existing):
    """({kind: names to create}, {kind: names whose references all exist in the cloud}).

    In check mode the role runs a module only for the entries of the second
    (a module cannot plan a server on a network that is not made yet); the
    first shows what a real run would create.
    """
    create, checkable = {}, {}
    for kind in KINDS:
        entries = declared.get(kind) or []
        create[kind] = [e["name"] for e in entries if e["name"] not in (existing.get(kind) or ())]
        checkable[kind] = [
            e["name"] for e in entries
            if all(name in (existing.get(ref) or ()) for ref, name in references(kind, e))
        ]
    return create, checkable


class ProvisionPlanInfo:
    """Reads the cloud for check_references and prune_candidates (see the module docstring)."""

    def __init__(self, client, params, check_mode):
        self.client = client
        self.params = params
        self.check_mode = check_mode

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(client, params, check_mode)

    def _identity(self, path, key):
        """An identity listing; empty when the credentials may not list it (not an admin)."""
        try:
            return self.client.get("identity", path).get(key) or []
        except StratusError as exc:
            if exc.status == 403:
                return []
            raise

    def _projects(self):
        return dict((p["id"], p["name"]) for p in self._identity("/v3/projects", "projects"))

    def volumes(self):
        """Every project's volumes (none when the cloud has no volume service)."""
        for service_type in ("block-storage", "volumev3"):
            try:
                return self.client.get(service_type, "/volumes/detail",
                                       query={"all_tenants": "1"}).get("volumes") or []
            except StratusError as exc:
                if exc.status is not None:  # an answer, not a missing endpoint
                    raise
        return []

    def existing(self, projects):
        c = self.client
        nets = c.get("network", "/v2.0/networks").get("networks") or []
        return {
            "projects": set(projects.values()),
            "users": set(u["name"] for u in self._identity("/v3/users", "users")),
            "flavors": set(f["name"] for f in self.flavors()),
            "images": set(i["name"] for i in self.images() if i.get("name")),
            "keypairs": set(k["keypair"]["name"] for k in
                            c.get("compute", "/os-keypairs").get("keypairs") or []),
            "security_groups": set(g["name"] for g in self.groups()),
            "networks": set(n["name"] for n in nets),
            "subnets": set(s["name"] for s in
                           c.get("network", "/v2.0/subnets").get("subnets") or []),
            "routers": set(r["name"] for r in self.routers()),
            "volumes": set(v.get("name") for v in self.volumes()),
            "servers": set(),
        }

    def flavors(self):
        return self.client.get("compute", "/flavors/detail", query={"is_public": "None"}).get(
            "flavors") or []

    def images(self):
        return self.client.get("image", "/v2/images", query={"limit": 1000}).get("images") or []

    def groups(self):
        return self.client.get("network", "/v2.0/security-groups").get("security_groups") or []

    def routers(self):
        return self.client.get("network", "/v2.0/routers").get("routers") or []

    def found(self, projects):
        """The prunable resources, each with its project's name and its marker."""
        c = self.client

        def named(items, key="project_id"):
            return [dict(i, project=projects.get(i.get(key) or i.get("owner")
                                                 or i.get("tenant_id")))
                    for i in items]

        nets = c.get("network", "/v2.0/networks").get("networks") or []
        servers = c.get("compute", "/servers/detail", query={"all_tenants": "1"}).get(
            "servers") or []
        flavors = []
        for flavor in self.flavors():
            specs = c.get("compute", f"/flavors/{flavor['id']}/os-extra_specs")
            flavors.append(dict(flavor, extra_specs=specs.get("extra_specs") or {}, project=None))
        volumes = self.volumes()
        return {
            "servers": named(servers, "tenant_id"),
            "volumes": named(volumes, "os-vol-tenant-attr:tenant_id"),
            "routers": named(self.routers()),
            "networks": named(nets),
            "security_groups": named(self.groups()),
            "images": named(self.images(), "owner"),
            "flavors": flavors,
        }

    def run(self):
        p = self.params
        declared = dict((kind, p.get(kind) or []) for kind in KINDS)
        for kind in KINDS:
            _entries(declared, kind)
        projects = self._projects()
        existing = self.existing(projects)
        check_references(declared, existing)
        create, checkable = pending(declared, existing)
        marked = mark(declared, p["owner"])
        if self.check_mode:
            marked = dict((kind, [e for e in marked[kind] if e["name"] in checkable[kind]])
                          for kind in KINDS)
        prune = dict((kind, []) for kind in PRUNABLE)
        if p.get("prune"):
            prune = prune_candidates(declared, self.found(projects), p["owner"])
        return {"changed": False, "resources": marked, "prune": prune, "create": create,
                "checkable": checkable}
