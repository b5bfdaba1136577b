"""Version discovery, flavors, key pairs, server groups, quotas, limits, zones, hypervisors,
services."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Router
from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.compute import models as m
from stratus.compute import views
from stratus.compute.core import QUOTA_RESOURCES, ComputeCore, OverLimit, isotime, new_id, utcnow

UPDATED = "2013-07-23T11:33:21Z"
GROUP_POLICIES = {"affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"}


def version_doc(req: Req, v21: bool = True) -> dict[str, Any]:
    base = req.base_url
    if v21:
        return {"id": "v2.1", "status": "CURRENT", "version": views.version_text(
            views.MAX_VERSION), "min_version": views.version_text(views.MIN_VERSION),
            "updated": UPDATED, "links": [{"rel": "self", "href": f"{base}/v2.1/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}
    return {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
            "updated": "2011-01-21T11:33:21Z", "links": [{"rel": "self", "href": f"{base}/v2/"}]}


def fingerprint(public_key: str) -> str:
    parts = public_key.split()
    if len(parts) < 2:
        raise BadRequest("Keypair data is invalid: an OpenSSH public key ('type base64 "
                         "[comment]') is expected.")
    try:
        blob = base64.b64decode(parts[1], validate=True)
        serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except Exception:
        raise BadRequest("Keypair data is invalid: failed to load the OpenSSH public key "
                         "(types: ssh-rsa, ssh-ed25519, ecdsa-sha2-*).") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def generate(kind: str, name: str) -> tuple[str, str]:
    key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.OpenSSH
                                if kind == "ed25519" else serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} Generated-by-Stratus {name}"


def add_routes(router: Router, core: ComputeCore) -> None:

    # ---- versions -----------------------------------------------------------------------

    @router.add("GET", "/")
    def versions(req: Req) -> Any:
        return {"versions": [version_doc(req, False), version_doc(req)]}

    @router.add("GET", "/v2.1")
    def v21(req: Req) -> Any:
        return {"version": version_doc(req)}

    @router.add("GET", "/v2.1/")
    def v21_slash(req: Req) -> Any:
        return {"version": version_doc(req)}

    # ---- flavors ------------------------------------------------------------------------

    def visible_flavors(s: Session, req: Req) -> list[m.Flavor]:
        ctx, q = req.ctx, req.query
        rows = list(s.scalars(sa.select(m.Flavor)))
        public = q.get("is_public", "true").lower()
        if public not in ("true", "false", "none", "1", "0", "yes", "no", "t", "f"):
            raise BadRequest(f"Invalid is_public filter [{q.get('is_public')}]")
        if ctx.is_admin:
            if public != "none":
                flag = public in ("true", "1", "yes", "t")
                rows = [f for f in rows if f.is_public == flag]
        else:
            rows = [f for f in rows if core.flavor_visible(s, ctx, f)]
            if public in ("false", "0", "no", "f"):
                rows = [f for f in rows if not f.is_public]
        for key, attr in (("minRam", "ram"), ("minDisk", "disk")):
            if key in q:
                least = views.integer({key: q[key]}, key)
                rows = [f for f in rows if getattr(f, attr) >= least]
        sort_key = q.get("sort_key", "flavorid")
        attrs = {"flavorid": "id", "id": "id", "name": "name", "memory_mb": "ram",
                 "ram": "ram", "vcpus": "vcpus", "root_gb": "disk", "disk": "disk",
                 "created_at": "created_at"}
        if sort_key not in attrs:
            raise BadRequest(f"Invalid sort_key {sort_key}; use one of {', '.join(attrs)}.")
        if q.get("sort_dir", "asc") not in ("asc", "desc"):
            raise BadRequest("Invalid sort_dir; use asc or desc.")
        rows.sort(key=lambda f: (getattr(f, attrs[sort_key]), f.id),
                  reverse=q.get("sort_dir") == "desc")
        if "marker" in q:
            ids = [f.id for f in rows]
            if q["marker"] not in ids:
                raise BadRequest(f"marker [{q['marker']}] not found")
            rows = rows[ids.index(q["marker"]) + 1:]
        if "limit" in q:
            rows = rows[:views.integer({"limit": q["limit"]}, "limit")]
        return rows

    @router.add("GET", "/v2.1/flavors")
    def flavors(req: Req) -> Any:
        with core.db.session() as s:
            return {"flavors": [{"id": f.id, "name": f.name,
                                 "links": views.link(req, f"flavors/{f.id}")}
                                for f in visible_flavors(s, req)]}

    @router.add("GET", "/v2.1/flavors/detail")
    def flavors_detail(req: Req) -> Any:
        with core.db.session() as s:
            return {"flavors": [views.flavor(req, f) for f in visible_flavors(s, req)]}

    @router.add("GET", "/v2.1/flavors/{id}")
    def flavor_show(req: Req) -> Any:
        with core.db.session() as s:
            return {"flavor": views.flavor(req, core.flavor(s, req.ctx, req.params["id"]))}

    @router.add("POST", "/v2.1/flavors")
    def flavor_create(req: Req) -> Any:
        core.require_admin(req.ctx, "os_compute_api:os-flavor-manage:create")
        data = views.obj(req.body, "flavor")
        views.only(data, {"name", "id", "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral",
                          "swap", "rxtx_factor", "os-flavor-access:is_public", "description"},
                   "flavor")
        name = views.text(data, "name", required=True)
        fid = data.get("id")
        if fid is None or fid == "auto":
            fid = new_id()
        if not isinstance(fid, str | int) or isinstance(fid, bool) or not str(fid).strip() \
                or len(str(fid)) > 255:
            raise BadRequest("Invalid input for field/attribute id: 1-255 characters.")
        is_public = views.boolean(data.get("os-flavor-access:is_public", True),
                                  "os-flavor-access:is_public")
        rxtx = data.get("rxtx_factor", 1.0)
        if isinstance(rxtx, bool) or not isinstance(rxtx, int | float) or rxtx <= 0:
            raise BadRequest("Invalid input for field/attribute rxtx_factor: a number > 0.")
        flavor = m.Flavor(
            id=str(fid), name=name, vcpus=views.integer(data, "vcpus", minimum=1),
            ram=views.integer(data, "ram", minimum=1),
            disk=views.integer(data, "disk", minimum=0),
            ephemeral=views.integer(data, "OS-FLV-EXT-DATA:ephemeral", 0),
            swap=views.integer(data, "swap", 0), rxtx_factor=float(rxtx), is_public=is_public,
            extra_specs={}, created_at=utcnow())

        def work(s: Session) -> dict[str, Any]:
            if s.get(m.Flavor, flavor.id) is not None:
                raise Conflict(f"Flavor with ID {flavor.id} already exists.")
            if s.scalars(sa.select(m.Flavor).where(m.Flavor.name == name)).first():
                raise Conflict(f"Flavor with name {name} already exists.")
            s.add(flavor)
            return {"flavor": views.flavor(req, flavor)}

        return core.transaction(work)

    @router.add("DELETE", "/v2.1/flavors/{id}", status=202)
    def flavor_delete(req: Req) -> Any:
        core.require_admin(req.ctx, "os_compute_api:os-flavor-manage:delete")

        def work(s: Session) -> None:
            f = s.get(m.Flavor, req.params["id"])
            if f is None:
                raise NotFound(f"Flavor {req.params['id']} could not be found.")
            s.execute(sa.delete(m.FlavorAccess).where(m.FlavorAccess.flavor_id == f.id))
            s.delete(f)

        core.transaction(work)
        return Response(status_code=202)

    @router.add("GET", "/v2.1/flavors/{id}/os-flavor-access")
    def flavor_access(req: Req) -> Any:
        core.require_admin(req.ctx, "os_compute_api:os-flavor-access")
        with core.db.session() as s:
            f = core.flavor(s, req.ctx, req.params["id"])
            if f.is_public:
                raise NotFound("Access list not available for public flavors.")
            return {"flavor_access": [{"flavor_id": f.id, "tenant_id": a.project_id}
                                      for a in s.scalars(sa.select(m.FlavorAccess).where(
                                          m.FlavorAccess.flavor_id == f.id))]}

    @router.add("POST", "/v2.1/flavors/{id}/action")
    def flavor_action(req: Req) -> Any:
        core.require_admin(req.ctx, "os_compute_api:os-flavor-access")
        if not isinstance(req.body, dict) or len(req.body) != 1:
            raise BadRequest("Invalid input: one of addTenantAccess, removeTenantAccess.")
        name, arg = next(iter(req.body.items()))
        if name not in ("addTenantAccess", "removeTenantAccess") or not isinstance(arg, dict):
            raise BadRequest(f"Invalid action {name}; use addTenantAccess or "
                             "removeTenantAccess with {\"tenant\": project_id}.")
        tenant = views.text(arg, "tenant", required=True)
        assert tenant is not None

        def work(s: Session) -> None:
            f = core.flavor(s, req.ctx, req.params["id"])
            if f.is_public:
                raise Conflict(f"Can not add access to a public flavor {f.id}.")
            row = s.get(m.FlavorAccess, (f.id, tenant))
            if name == "addTenantAccess":
                if row is not None:
                    raise Conflict(f"Flavor access already exists for flavor {f.id} and "
                                   f"project {tenant} combination.")
                s.add(m.FlavorAccess(flavor_id=f.id, project_id=tenant))
            else:
                if row is None:
                    raise NotFound(f"Flavor access not found for {f.id} / {tenant} "
                                   "combination.")
                s.delete(row)

        core.transaction(work)
        return flavor_access(req)

    def specs_change(req: Req, fn: Any) -> Any:
        core.require_admin(req.ctx, "os_compute_api:os-flavor-extra-specs")

        def work(s: Session) -> Any:
            f = core.flavor(s, req.ctx, req.params["id"])
            result, new = fn(dict(f.extra_specs))
            f.extra_specs = new
            return result

        return core.transaction(work)

    def check_specs(value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise BadRequest("Invalid input: 'extra_specs' must be an object.")
        out = {}
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                raise BadRequest(f"Invalid extra spec value for {k!r}: a string is expected.")
            if not 1 <= len(k) <= 255 or len(str(v)) > 255:
                raise BadRequest("Extra spec keys and values are 1-255 characters.")
            out[k] = str(v)
        return out

    @router.add("GET", "/v2.1/flavors/{id}/os-extra_specs")
    def specs(req: Req) -> Any:
        with core.db.session() as s:
            return {"extra_specs": dict(core.flavor(s, req.ctx, req.params["id"]).extra_specs)}

    @router.add("POST", "/v2.1/flavors/{id}/os-extra_specs")
    def specs_set(req: Req) -> Any:
        new = check_specs(req.body.get("extra_specs") if isinstance(req.body, dict) else None)
        return specs_change(req, lambda cur: ({"extra_specs": new}, {**cur, **new}))

    @router.add("GET", "/v2.1/flavors/{id}/os-extra_specs/{key}")
    def spec_get(req: Req) -> Any:
        cur = specs(req)["extra_specs"]
        if req.params["key"] not in cur:
            raise NotFound(f"Flavor {req.params['id']} has no extra specs with key "
                           f"{req.params['key']}.")
        return {req.params["key"]: cur[req.params["key"]]}

    @router.add("PUT", "/v2.1/flavors/{id}/os-extra_specs/{key}")
    def spec_put(req: Req) -> Any:
        new = check_specs(req.body)
        if list(new) != [req.params["key"]]:
            raise BadRequest("Request body and URI mismatch")
        return specs_change(req, lambda cur: (new, {**cur, **new}))

    @router.add("DELETE", "/v2.1/flavors/{id}/os-extra_specs/{key}")
    def spec_delete(req: Req) -> None:
        key = req.params["key"]

        def fn(cur: dict[str, str]) -> Any:
            if key not in cur:
                raise NotFound(f"Flavor {req.params['id']} has no extra specs with key {key}.")
            cur.pop(key)
            return None, cur

        specs_change(req, fn)

    # ---- key pairs ----------------------------------------------------------------------

    def key_owner(req: Req) -> str:
        user = req.query.get("user_id")
        if user and user != req.ctx.user_id:
            core.require_admin(req.ctx, "os_compute_api:os-keypairs (other users)")
            return str(user)
        return req.ctx.user_id

    @router.add("GET", "/v2.1/os-keypairs")
    def keypairs(req: Req) -> Any:
        v = views.mv(req)
        with core.db.session() as s:
            rows = s.scalars(sa.select(m.KeyPair).where(m.KeyPair.user_id == key_owner(req))
                             .order_by(m.KeyPair.name))
            return {"keypairs": [{"keypair": views.keypair(k, v, detail=False)} for k in rows]}

    @router.add("GET", "/v2.1/os-keypairs/{name}")
    def keypair_show(req: Req) -> Any:
        with core.db.session() as s:
            k = s.scalars(sa.select(m.KeyPair).where(
                m.KeyPair.user_id == key_owner(req), m.KeyPair.name == req.params["name"])
            ).first()
            if k is None:
                raise NotFound(f"Keypair {req.params['name']} not found for user "
                               f"{key_owner(req)}")
            return {"keypair": views.keypair(k, views.mv(req))}

    @router.add("POST", "/v2.1/os-keypairs")
    def keypair_create(req: Req) -> Any:
        core.require_member(req.ctx, "os_compute_api:os-keypairs:create")
        data = views.obj(req.body, "keypair")
        v = views.mv(req)
        views.only(data, {"name", "public_key", "type", "user_id", "key_type"}, "keypair")
        name = views.text(data, "name", required=True)
        assert name is not None
        if not all(c.isalnum() or c in "_- @." for c in name):
            raise BadRequest("Keypair data is invalid: names may contain letters, digits, "
                             "'_', '-', ' ', '@' and '.'.")
        kind = views.text(data, "type", default="ssh")
        if kind not in ("ssh", "x509"):
            raise BadRequest(f"Invalid input for field/attribute type: {kind!r}; use 'ssh'.")
        if kind == "x509":
            raise BadRequest("x509 key pairs are not supported here; use type 'ssh'.")
        user = req.ctx.user_id
        if data.get("user_id") and data["user_id"] != user:
            core.require_admin(req.ctx, "os_compute_api:os-keypairs:create (other users)")
            user = str(data["user_id"])
        private = None
        public = data.get("public_key")
        if public is None:
            algo = views.text(data, "key_type", default="rsa")
            if algo not in ("rsa", "ed25519"):
                raise BadRequest("Invalid key_type; use rsa or ed25519.")
            private, public = generate(str(algo), name)
        elif not isinstance(public, str):
            raise BadRequest("Keypair data is invalid: public_key must be a string.")
        public = public.strip()
        fp = fingerprint(public)
        row = m.KeyPair(user_id=user, name=name, type=kind, public_key=public,
                        fingerprint=fp, created_at=utcnow())

        def work(s: Session) -> dict[str, Any]:
            if s.scalars(sa.select(m.KeyPair).where(m.KeyPair.user_id == user,
                                                    m.KeyPair.name == name)).first():
                raise Conflict(f"Key pair '{name}' already exists.")
            limit = core.quota_limits(s, req.ctx.project_id or "")["key_pairs"]
            count = s.scalar(sa.select(sa.func.count()).select_from(m.KeyPair).where(
                m.KeyPair.user_id == user)) or 0
            if 0 <= limit <= count:
                raise OverLimit(f"Quota exceeded for key_pairs: {count} of {limit} used.")
            s.add(row)
            s.flush()
            out = views.keypair(row, v)
            if private is not None:
                out["private_key"] = private
            return {"keypair": out}

        result = core.transaction(work)
        return JSONResponse(result, status_code=201 if v >= (2, 2) else 200)

    @router.add("DELETE", "/v2.1/os-keypairs/{name}", status=202)
    def keypair_delete(req: Req) -> Any:
        core.require_member(req.ctx, "os_compute_api:os-keypairs:delete")

        def work(s: Session) -> None:
            k = s.scalars(sa.select(m.KeyPair).where(
                m.KeyPair.user_id == key_owner(req), m.KeyPair.name == req.params["name"])
            ).first()
            if k is None:
                raise NotFound(f"Keypair {req.params['name']} not found for user "
                               f"{key_owner(req)}")
            s.delete(k)

        core.transaction(work)
        return Response(status_code=202) if views.mv(req) < (2, 2) else None

    # ---- server groups ------------------------------------------------------------------

    def group_view(g: m.ServerGroup) -> dict[str, Any]:
        return {"id": g.id, "name": g.name, "policies": [g.policy], "members": list(g.members),
                "metadata": {}, "project_id": g.project_id, "user_id": g.user_id}

    @router.add("GET", "/v2.1/os-server-groups")
    def groups(req: Req) -> Any:
        ctx = req.ctx
        stmt = sa.select(m.ServerGroup).order_by(m.ServerGroup.created_at)
        if not (ctx.is_admin and req.query.get("all_projects", "").lower() in ("true", "1")):
            stmt = stmt.where(m.ServerGroup.project_id == ctx.project_id)
        with core.db.session() as s:
            rows = [group_view(g) for g in s.scalars(stmt)]
        offset = views.integer({"offset": req.query.get("offset", 0)}, "offset")
        rows = rows[offset:]
        if "limit" in req.query:
            rows = rows[:views.integer({"limit": req.query["limit"]}, "limit")]
        return {"server_groups": rows}

    @router.add("GET", "/v2.1/os-server-groups/{id}")
    def group_show(req: Req) -> Any:
        with core.db.session() as s:
            return {"server_group": group_view(core.group(s, req.ctx, req.params["id"]))}

    @router.add("POST", "/v2.1/os-server-groups")
    def group_create(req: Req) -> Any:
        core.require_member(req.ctx, "os_compute_api:os-server-groups:create")
        data = views.obj(req.body, "server_group")
        views.only(data, {"name", "policies"}, "server_group")
        name = views.text(data, "name", required=True)
        pols = data.get("policies")
        allowed = GROUP_POLICIES if views.mv(req) >= (2, 15) else {"affinity", "anti-affinity"}
        if not isinstance(pols, list) or len(pols) != 1 or not isinstance(pols[0], str) \
                or pols[0] not in allowed:
            raise BadRequest(f"Invalid input for field/attribute policies: exactly one of "
                             f"{', '.join(sorted(allowed))} is expected.")
        ctx = req.ctx

        def work(s: Session) -> dict[str, Any]:
            limit = core.quota_limits(s, ctx.project_id or "")["server_groups"]
            count = s.scalar(sa.select(sa.func.count()).select_from(m.ServerGroup).where(
                m.ServerGroup.project_id == ctx.project_id)) or 0
            if 0 <= limit <= count:
                raise OverLimit(f"Quota exceeded, too many server groups: {count} of {limit}.")
            g = m.ServerGroup(id=new_id(), name=name, project_id=ctx.project_id or "",
                              user_id=ctx.user_id, policy=pols[0], members=[],
                              created_at=utcnow())
            s.add(g)
            return {"server_group": group_view(g)}

        return core.transaction(work)

    @router.add("DELETE", "/v2.1/os-server-groups/{id}")
    def group_delete(req: Req) -> None:
        core.require_member(req.ctx, "os_compute_api:os-server-groups:delete")

        def work(s: Session) -> None:
            s.delete(core.group(s, req.ctx, req.params["id"]))

        core.transaction(work)

    # ---- quotas and limits --------------------------------------------------------------

    def quota_set(s: Session, project: str, detail: bool = False) -> dict[str, Any]:
        limits = core.quota_limits(s, project)
        used = core.usage(s, project)
        groups_used = s.scalar(sa.select(sa.func.count()).select_from(m.ServerGroup).where(
            m.ServerGroup.project_id == project)) or 0
        in_use = {"instances": used.instances, "cores": used.cores, "ram": used.ram,
                  "server_groups": groups_used}
        out: dict[str, Any] = {"id": project}
        fixed = {"injected_files": 5, "injected_file_content_bytes": 10240,
                 "injected_file_path_bytes": 255}
        for res in QUOTA_RESOURCES:
            out[res] = {"limit": limits[res], "in_use": in_use.get(res, 0), "reserved": 0} \
                if detail else limits[res]
        for res, val in fixed.items():
            out[res] = {"limit": val, "in_use": 0, "reserved": 0} if detail else val
        return out

    def quota_project(req: Req) -> str:
        project = req.params["project"]
        if project != req.ctx.project_id:
            core.require_admin(req.ctx, "os_compute_api:os-quota-sets:show")
        return project

    @router.add("GET", "/v2.1/os-quota-sets/{project}")
    def quota_show(req: Req) -> Any:
        with core.db.session() as s:
            return {"quota_set": quota_set(s, quota_project(req))}

    @router.add("GET", "/v2.1/os-quota-sets/{project}/detail")
    def quota_detail(req: Req) -> Any:
        with core.db.session() as s:
            return {"quota_set": quota_set(s, quota_project(req), detail=True)}

    @router.add("GET", "/v2.1/os-quota-sets/{project}/defaults")
    def quota_defaults(req: Req) -> Any:
        out: dict[str, Any] = {"id": req.params["project"], **core.settings.quotas}
        out.update({"injected_files": 5, "injected_file_content_bytes": 10240,
                    "injected_file_path_bytes": 255})
        return {"quota_set": out}

    @router.add("PUT", "/v2.1/os-quota-sets/{project}")
    def quota_update(req: Req) -> Any:
        core.require_admin(req.ctx, "os_compute_api:os-quota-sets:update")
        data = views.obj(req.body, "quota_set")
        allowed = {*QUOTA_RESOURCES, "force", "injected_files", "injected_file_content_bytes",
                   "injected_file_path_bytes"}
        views.only(data, allowed, "quota_set")
        values = {r: views.integer(data, r, minimum=-1) for r in QUOTA_RESOURCES if r in data}
        project = req.params["project"]

        def work(s: Session) -> dict[str, Any]:
            for res, val in values.items():
                row = s.get(m.QuotaLimit, (project, res))
                if row is None:
                    s.add(m.QuotaLimit(project_id=project, resource=res, hard_limit=val))
                else:
                    row.hard_limit = val
            s.flush()
            out = quota_set(s, project)
            out.pop("id")
            return {"quota_set": out}

        return core.transaction(work)

    @router.add("DELETE", "/v2.1/os-quota-sets/{project}", status=202)
    def quota_reset(req: Req) -> Any:
        core.require_admin(req.ctx, "os_compute_api:os-quota-sets:delete")

        def work(s: Session) -> None:
            s.execute(sa.delete(m.QuotaLimit).where(
                m.QuotaLimit.project_id == req.params["project"]))

        core.transaction(work)
        return Response(status_code=202)

    @router.add("GET", "/v2.1/limits")
    def limits(req: Req) -> Any:
        project = req.query.get("tenant_id") or req.ctx.project_id or ""
        if project != req.ctx.project_id:
            core.require_admin(req.ctx, "os_compute_api:limits:other_project")
        with core.db.session() as s:
            q = quota_set(s, project, detail=True)
        return {"limits": {"rate": [], "absolute": {
            "maxTotalInstances": q["instances"]["limit"],
            "maxTotalCores": q["cores"]["limit"], "maxTotalRAMSize": q["ram"]["limit"],
            "maxServerMeta": q["metadata_items"]["limit"],
            "maxImageMeta": q["metadata_items"]["limit"],
            "maxPersonality": 5, "maxPersonalitySize": 10240,
            "maxTotalKeypairs": q["key_pairs"]["limit"],
            "maxServerGroups": q["server_groups"]["limit"],
            "maxServerGroupMembers": q["server_group_members"]["limit"],
            "totalInstancesUsed": q["instances"]["in_use"],
            "totalCoresUsed": q["cores"]["in_use"], "totalRAMUsed": q["ram"]["in_use"],
            "totalServerGroupsUsed": q["server_groups"]["in_use"],
            "maxSecurityGroups": -1, "maxSecurityGroupRules": -1,
            "maxTotalFloatingIps": -1, "totalFloatingIpsUsed": 0,
            "totalSecurityGroupsUsed": 0}}}

    # ---- zones, hypervisors, services ---------------------------------------------------

    @router.add("GET", "/v2.1/os-availability-zone")
    def zones(req: Req) -> Any:
        with core.db.session() as s:
            hosts = list(s.scalars(sa.select(m.ComputeHost)))
        names = sorted({h.availability_zone for h in hosts if h.enabled}) or [
            core.settings.default_availability_zone]
        return {"availabilityZoneInfo": [
            {"zoneName": z, "zoneState": {"available": any(
                core.alive(h) for h in hosts if h.availability_zone == z) or not hosts},
             "hosts": None} for z in names]}

    @router.add("GET", "/v2.1/os-availability-zone/detail")
    def zones_detail(req: Req) -> Any:
        core.require_admin(req.ctx, "os_compute_api:os-availability-zone:detail")
        with core.db.session() as s:
            hosts = list(s.scalars(sa.select(m.ComputeHost)))
        out: dict[str, dict[str, Any]] = {}
        for h in hosts:
            out.setdefault(h.availability_zone, {})[h.host] = {"nova-compute": {
                "available": core.alive(h), "active": h.enabled,
                "updated_at": isotime(h.heartbeat_at)}}
        return {"availabilityZoneInfo": [
            {"zoneName": z, "zoneState": {"available": True}, "hosts": hs}
            for z, hs in sorted(out.items())]}

    def hypervisor(h: m.ComputeHost, detail: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"id": h.id, "hypervisor_hostname": h.hypervisor_hostname,
                               "state": "up" if core.alive(h) else "down",
                               "status": "enabled" if h.enabled else "disabled"}
        if detail:
            out.update({
                "vcpus": h.vcpus, "memory_mb": h.memory_mb, "local_gb": h.local_gb,
                "vcpus_used": h.vcpus_used, "memory_mb_used": h.memory_mb_used,
                "local_gb_used": h.local_gb_used, "hypervisor_type": h.hypervisor_type,
                "hypervisor_version": h.hypervisor_version, "host_ip": h.host_ip,
                "running_vms": h.running_vms,
                "free_ram_mb": h.memory_mb - h.memory_mb_used,
                "free_disk_gb": h.local_gb - h.local_gb_used, "current_workload": 0,
                "disk_available_least": h.local_gb - h.local_gb_used,
                "cpu_info": {"arch": h.cpu_arch},
                "service": {"host": h.host, "id": h.id, "disabled_reason": h.disabled_reason}})
        return out

    def hypervisors_of(req: Req) -> list[m.ComputeHost]:
        core.require_admin(req.ctx, "os_compute_api:os-hypervisors")
        with core.db.session() as s:
            return list(s.scalars(sa.select(m.ComputeHost).order_by(m.ComputeHost.id)))

    @router.add("GET", "/v2.1/os-hypervisors")
    def hypervisors(req: Req) -> Any:
        return {"hypervisors": [hypervisor(h, False) for h in hypervisors_of(req)]}

    @router.add("GET", "/v2.1/os-hypervisors/detail")
    def hypervisors_detail(req: Req) -> Any:
        return {"hypervisors": [hypervisor(h, True) for h in hypervisors_of(req)]}

    @router.add("GET", "/v2.1/os-hypervisors/statistics")
    def hypervisor_stats(req: Req) -> Any:
        hs = hypervisors_of(req)
        stats: dict[str, Any] = {"count": len(hs)}
        for key in ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
                    "local_gb_used", "running_vms"):
            stats[key] = sum(getattr(h, key) for h in hs)
        stats["free_ram_mb"] = stats["memory_mb"] - stats["memory_mb_used"]
        stats["free_disk_gb"] = stats["local_gb"] - stats["local_gb_used"]
        stats["disk_available_least"] = stats["free_disk_gb"]
        stats["current_workload"] = 0
        return {"hypervisor_statistics": stats}

    @router.add("GET", "/v2.1/os-hypervisors/{id}")
    def hypervisor_show(req: Req) -> Any:
        for h in hypervisors_of(req):
            if str(h.id) == req.params["id"] or h.hypervisor_hostname == req.params["id"]:
                return {"hypervisor": hypervisor(h, True)}
        raise NotFound(f"Hypervisor {req.params['id']} could not be found.")

    def service(h: m.ComputeHost) -> dict[str, Any]:
        return {"id": h.id, "binary": "nova-compute", "host": h.host,
                "zone": h.availability_zone, "status": "enabled" if h.enabled else "disabled",
                "state": "up" if core.alive(h) else "down", "updated_at": isotime(h.heartbeat_at),
                "disabled_reason": h.disabled_reason, "forced_down": h.forced_down}

    @router.add("GET", "/v2.1/os-services")
    def services(req: Req) -> Any:
        core.require_admin(req.ctx, "os_compute_api:os-services:list")
        q = req.query
        with core.db.session() as s:
            rows = [service(h) for h in s.scalars(sa.select(m.ComputeHost).order_by(
                m.ComputeHost.id))]
        if "host" in q:
            rows = [r for r in rows if r["host"] == q["host"]]
        if "binary" in q:
            rows = [r for r in rows if r["binary"] == q["binary"]]
        return {"services": rows}

    @router.add("PUT", "/v2.1/os-services/{action}")
    def service_update(req: Req) -> Any:
        core.require_admin(req.ctx, "os_compute_api:os-services:update")
        action = req.params["action"]
        if action not in ("enable", "disable", "disable-log-reason", "force-down"):
            raise NotFound(f"Unknown action {action}; use enable, disable, disable-log-reason "
                           "or force-down.")
        data = req.body if isinstance(req.body, dict) else {}
        host = views.text(data, "host", required=True)
        binary = views.text(data, "binary", default="nova-compute")
        if binary != "nova-compute":
            raise BadRequest("Only the nova-compute binary can be changed.")
        reason = views.text(data, "disabled_reason") if action == "disable-log-reason" else None

        def work(s: Session) -> dict[str, Any]:
            h = core.host(s, str(host))
            if action == "enable":
                h.enabled, h.disabled_reason = True, None
            elif action == "force-down":
                h.forced_down = views.boolean(data.get("forced_down", True), "forced_down")
            else:
                h.enabled, h.disabled_reason = False, reason
            s.flush()
            core.bump(s, h.host)  # the scheduler's host cache sees the new state
            s.refresh(h)
            out: dict[str, Any] = {"host": h.host, "binary": "nova-compute",
                   "status": "enabled" if h.enabled else "disabled"}
            if reason:
                out["disabled_reason"] = reason
            if action == "force-down":
                out["forced_down"] = h.forced_down
            return {"service": out}

        return core.transaction(work)
