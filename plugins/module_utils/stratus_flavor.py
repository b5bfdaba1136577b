# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_flavor: a flavor, its extra specs and (for a private flavor) its projects.

``FlavorConvergence.plan()`` compares the flavor of that name (or ID) with
the options and queues the writes; what a flavor cannot change (RAM, vCPUs,
disks, visibility) fails, or with ``recreate`` is planned as delete and
create with the same ID. See ``stratus_plan`` for how check mode and a real
run share the plan. Project names become IDs through the identity API
(``project_resolver``).

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import re

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_compute_api import (
    UUID_RE,
    ComputeApi,
    spec_value,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence

HEX_ID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
FLAVOR_FIXED = ("ram", "vcpus", "disk", "ephemeral", "swap", "is_public")


def flavor_value(flavor, key):
    if key == "ephemeral":
        return flavor.get("OS-FLV-EXT-DATA:ephemeral", flavor.get("ephemeral", 0))
    if key == "is_public":
        return flavor.get("os-flavor-access:is_public", flavor.get("is_public", True))
    if key == "swap":
        return flavor.get("swap") or 0  # Nova shows "" for no swap
    return flavor.get(key)


class FlavorConvergence(Convergence):
    """The decision logic of cloud_flavor over a ComputeApi (and, for project names, identity)."""

    def __init__(self, compute, params, check_mode, projects=None):
        super().__init__(params, check_mode)
        self.compute = compute
        self.projects = projects  # callable: name or ID -> project ID

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(ComputeApi(client), params, check_mode, projects=project_resolver(client))

    def plan(self):
        p = self.params
        flavor = None
        if p.get("id"):
            flavor = self.compute.get_or_none(f"/flavors/{p['id']}", "flavor")
            if flavor is not None and flavor.get("name") != p["name"]:
                raise StratusError(
                    f"Flavor ID {p['id']} belongs to flavor {flavor.get('name')!r}, not "
                    f"{p['name']!r}; flavors cannot be renamed."
                )
        if flavor is None:
            found = [f for f in self.compute.flavors() if f.get("name") == p["name"]]
            flavor = found[0] if found else None
        if p["state"] == "absent":
            plan = self.new_plan(None)
            if flavor is not None:
                self.diff.delete(self.summary(flavor))
                plan.then(lambda _none: self.compute.delete_flavor(flavor["id"]))
            return plan
        for key in ("ram", "vcpus"):
            if flavor is None and p.get(key) is None:
                raise StratusError(f"{key} is needed to create flavor {p['name']!r}.")
        if flavor is None:
            return self.plan_create()
        return self.plan_update(flavor)

    def wanted_fixed(self):
        p = self.params
        out = {}
        for key in FLAVOR_FIXED:
            if p.get(key) is not None:
                out[key] = p[key]
        return out

    def project_ids(self):
        if self.params.get("projects") is None:
            return None
        if self.projects is None:
            return sorted(set(self.params["projects"]))
        return sorted(set(self.projects(p) for p in self.params["projects"]))

    def specs(self):
        specs = self.params.get("extra_specs")
        if specs is None:
            return None
        return dict((str(k), spec_value(v)) for k, v in specs.items())

    def plan_create(self, old=None):
        p = self.params
        attrs = {"name": p["name"], "ram": p["ram"], "vcpus": p["vcpus"],
                 "disk": p.get("disk") or 0}
        if p.get("ephemeral") is not None:
            attrs["OS-FLV-EXT-DATA:ephemeral"] = p["ephemeral"]
        if p.get("swap") is not None:
            attrs["swap"] = p["swap"]
        if p.get("is_public") is not None:
            attrs["os-flavor-access:is_public"] = p["is_public"]
        flavor_id = p.get("id") or (old["id"] if old else None)
        if flavor_id:
            attrs["id"] = flavor_id
        specs = self.specs() or {}
        projects = self.project_ids() or []
        after = dict(self.wanted_fixed(), name=p["name"], disk=attrs["disk"])
        if flavor_id:
            after["id"] = flavor_id
        if specs:
            after["extra_specs"] = specs
        if projects:
            after["projects"] = projects
        self.diff.create(after)
        if old is not None:
            self.diff.before = self.summary(old)
        plan = self.new_plan(None)

        @plan.then
        def create(_none):
            if old is not None:
                self.compute.delete_flavor(old["id"])
            flavor = self.compute.create_flavor(attrs)
            if specs:
                self.compute.set_extra_specs(flavor["id"], specs)
            if projects and not flavor_value(flavor, "is_public"):
                for project in projects:
                    self.compute.flavor_access_action(flavor["id"], "addTenantAccess", project)
            return self.show(flavor["id"])

        return plan

    def plan_update(self, flavor):
        p = self.params
        fixed = dict((k, (v, flavor_value(flavor, k))) for k, v in self.wanted_fixed().items()
                     if v != flavor_value(flavor, k))
        if fixed:
            if not p.get("recreate"):
                what = ", ".join(f"{k} is {old} (wanted {new})"
                                 for k, (new, old) in sorted(fixed.items()))
                raise StratusError(
                    f"Flavor {p['name']!r} ({flavor['id']}) differs: {what}; flavors cannot "
                    "change. Set recreate: true to delete and recreate it with the same ID "
                    "(servers keep their copy of the old flavor), or use another name."
                )
            merged = dict(p)
            for key in FLAVOR_FIXED:
                if merged.get(key) is None:
                    merged[key] = flavor_value(flavor, key)
            if merged.get("extra_specs") is None:
                merged["extra_specs"] = self.compute.extra_specs(flavor["id"])
            self.params = merged
            return self.plan_create(old=flavor)
        specs = self.specs()
        set_specs, unset = {}, []
        if specs is not None:
            current = self.compute.extra_specs(flavor["id"])
            set_specs = dict((k, v) for k, v in specs.items() if current.get(k) != v)
            unset = sorted(k for k in current if k not in specs)
            self.diff.add("extra_specs", current, specs)
        wanted_projects = self.project_ids()
        add, remove = [], []
        if wanted_projects is not None:
            if flavor_value(flavor, "is_public"):
                if wanted_projects:
                    raise StratusError(
                        f"Flavor {p['name']!r} is public; projects (flavor access) apply only "
                        "to private flavors (is_public: false)."
                    )
            else:
                current = self.compute.flavor_access(flavor["id"])
                add = [x for x in wanted_projects if x not in current]
                remove = [x for x in current if x not in wanted_projects]
                self.diff.add("projects", current, wanted_projects)
        plan = self.new_plan(flavor, finish=lambda f: self.show(f["id"], f))

        @plan.then
        def update(current):
            if set_specs:
                self.compute.set_extra_specs(current["id"], set_specs)
            for key in unset:
                self.compute.unset_extra_spec(current["id"], key)
            for project in add:
                self.compute.flavor_access_action(current["id"], "addTenantAccess", project)
            for project in remove:
                self.compute.flavor_access_action(current["id"], "removeTenantAccess", project)
            return current

        return plan

    def show(self, flavor_id, flavor=None):
        flavor = dict(flavor or self.compute.get_or_none(f"/flavors/{flavor_id}", "flavor") or {})
        if flavor:
            flavor["extra_specs"] = self.compute.extra_specs(flavor_id)
        return flavor

    @staticmethod
    def summary(flavor):
        out = {"id": flavor["id"], "name": flavor.get("name")}
        for key in FLAVOR_FIXED:
            out[key] = flavor_value(flavor, key)
        return out

    def result(self, flavor):
        return {"changed": self.diff.changed, "diff": self.diff.diff, "flavor": flavor,
                "id": (flavor or {}).get("id")}


def project_resolver(client):
    """A function: project name or ID -> project ID, through the identity API."""

    def resolve(name_or_id):
        if HEX_ID_RE.match(name_or_id) or UUID_RE.match(name_or_id):
            return name_or_id
        # The URL the client authenticated at ends with /v3 (catalog entries may not).
        base = client.config.auth_url
        try:
            body = client.get("identity", base + "/projects", query={"name": name_or_id})
            projects = body.get("projects") or []
        except StratusError as exc:
            if exc.status != 403:
                raise
            # Not an admin: the projects of the caller are the ones it can name.
            body = client.get("identity", base + "/auth/projects")
            projects = [x for x in body.get("projects") or [] if x.get("name") == name_or_id]
        if len(projects) != 1:
            raise StratusError(f"Project {name_or_id!r} was not found (or the name is not "
                               "unique); give its ID.")
        return projects[0]["id"]

    return resolve
