# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_container and cloud_object: containers and objects of the object store
(Swift v1, catalog type ``object-store``).

``ObjectStoreApi`` is the HTTP side; ``ContainerConvergence`` and ``ObjectConvergence``
plan what to change (see ``stratus_plan``). An object is unchanged when its md5 (the
ETag) matches the local file or data and its metadata already has the wanted values.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.parse

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence

SERVICE = "object-store"
PUBLIC_READ = ".r:*,.rlistings"


def _path(*names):
    return "/" + "/".join(urllib.parse.quote(n, safe="") for n in names[:1]) + (
        "/" + urllib.parse.quote(names[1], safe="/") if len(names) > 1 else "")


def _meta(headers, kind):
    prefix = f"x-{kind}-meta-"
    return dict((k[len(prefix):], v) for k, v in headers.items() if k.startswith(prefix))


class ObjectStoreApi:
    """Containers and objects over a StratusClient."""

    def __init__(self, client):
        self.client = client

    def _head(self, path):
        try:
            return self.client.request("HEAD", SERVICE, path, expect=(200, 204)).headers
        except StratusError as exc:
            if exc.status == 404:
                return None
            raise

    def container(self, name):
        return self._head(_path(name))

    def put_container(self, name, headers):
        self.client.request("PUT", SERVICE, _path(name), headers=headers,
                            expect=(201, 202))
        return self.container(name)

    def post_container(self, name, headers):
        self.client.request("POST", SERVICE, _path(name), headers=headers, expect=(204,))
        return self.container(name)

    def delete_container(self, name):
        try:
            self.client.request("DELETE", SERVICE, _path(name), expect=(204, 404))
        except StratusError as exc:
            if exc.status == 409:
                raise StratusError(f"Container {name!r} is not empty; set "
                                   "delete_with_all_objects to delete its objects too.",
                                   status=409) from None
            raise

    def object_names(self, container):
        names, marker = [], ""
        while True:
            query = {"format": "json", "limit": "10000"}
            if marker:
                query["marker"] = marker
            page = self.client.request("GET", SERVICE, _path(container), query=query,
                                       expect=(200, 204)).body or []
            if not page:
                return names
            names += [o["name"] for o in page]
            marker = page[-1]["name"]

    def object(self, container, name):
        return self._head(_path(container, name))

    def put_object(self, container, name, filename, headers):
        self.client.upload_file(SERVICE, _path(container, name), filename, headers=headers,
                                expect=(201,))
        return self.object(container, name)

    def post_object(self, container, name, headers):
        self.client.request("POST", SERVICE, _path(container, name), headers=headers,
                            expect=(202,))
        return self.object(container, name)

    def delete_object(self, container, name):
        self.client.request("DELETE", SERVICE, _path(container, name), expect=(204, 404))


class ContainerConvergence(Convergence):
    """cloud_container: a container, its metadata and its ACLs."""

    def __init__(self, api, params, check_mode):
        super().__init__(params, check_mode)
        self.api = api

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(ObjectStoreApi(client), params, check_mode)

    def wanted(self):
        p = self.params
        read_acl = p.get("read_ACL")
        if p.get("public") is not None:
            read_acl = PUBLIC_READ if p["public"] else (
                "" if read_acl is None else read_acl)
        return read_acl, p.get("write_ACL")

    def plan(self):
        p = self.params
        name = p["name"]
        current = self.api.container(name)
        finish = self.summary
        if p["state"] == "absent":
            plan = self.new_plan(None, finish)
            if current is not None:
                self.diff.delete(self.summary(current))

                @plan.then
                def delete(_resource):
                    if p.get("delete_with_all_objects"):
                        for obj in self.api.object_names(name):
                            self.api.delete_object(name, obj)
                    self.api.delete_container(name)
                    return None
            return plan
        read_acl, write_acl = self.wanted()
        metadata = dict((k.lower(), str(v)) for k, v in (p.get("metadata") or {}).items())
        removed = [k.lower() for k in p.get("delete_metadata_keys") or []]
        headers = dict((f"X-Container-Meta-{k}", v) for k, v in metadata.items())
        if current is None:
            headers.update(self._acl_headers(read_acl, write_acl))
            self.diff.create({"name": name, "metadata": metadata,
                              "read_ACL": read_acl or "", "write_ACL": write_acl or ""})
            plan = self.new_plan(None, finish)
            plan.then(lambda _r: self.api.put_container(name, headers))
            return plan
        have = _meta(current, "container")
        for key, value in metadata.items():
            self.diff.add(f"metadata.{key}", have.get(key), value)
        for key in removed:
            if key in have and key not in metadata:
                self.diff.add(f"metadata.{key}", have[key], None)
                headers[f"X-Remove-Container-Meta-{key}"] = "x"
        if read_acl is not None and self.diff.add(
                "read_ACL", current.get("x-container-read", ""), read_acl):
            headers.update(self._acl_headers(read_acl, None))
        if write_acl is not None and self.diff.add(
                "write_ACL", current.get("x-container-write", ""), write_acl):
            headers.update(self._acl_headers(None, write_acl))
        plan = self.new_plan(current, finish)
        if self.diff.changed:
            plan.then(lambda _r: self.api.post_container(name, headers))
        return plan

    @staticmethod
    def _acl_headers(read_acl, write_acl):
        out = {}
        if read_acl is not None:
            out["X-Container-Read" if read_acl else "X-Remove-Container-Read"] = read_acl or "x"
        if write_acl is not None:
            out["X-Container-Write" if write_acl else "X-Remove-Container-Write"] = \
                write_acl or "x"
        return out

    def summary(self, headers):
        if headers is None:
            return None
        return {"name": self.params["name"], "metadata": _meta(headers, "container"),
                "read_ACL": headers.get("x-container-read", ""),
                "write_ACL": headers.get("x-container-write", ""),
                "object_count": int(headers.get("x-container-object-count", 0)),
                "bytes_used": int(headers.get("x-container-bytes-used", 0))}

    def result(self, resource):
        return {"changed": self.diff.changed, "diff": self.diff.diff, "container": resource}


class ObjectConvergence(Convergence):
    """cloud_object: an object from a file or data, and its metadata."""

    def __init__(self, api, params, check_mode):
        super().__init__(params, check_mode)
        self.api = api

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(ObjectStoreApi(client), params, check_mode)

    def local_md5(self):
        p = self.params
        md5 = hashlib.md5()
        if p.get("filename"):
            try:
                with open(p["filename"], "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        md5.update(block)
            except OSError as exc:
                raise StratusError(f"Cannot read filename {p['filename']}: "
                                   f"{exc.strerror or exc}") from None
        else:
            md5.update((p.get("data") or "").encode("utf-8"))
        return md5.hexdigest()

    def upload(self, headers):
        p = self.params
        if p.get("filename"):
            return self.api.put_object(p["container"], p["name"], p["filename"], headers)
        fd, tmp = tempfile.mkstemp(prefix="stratus-object-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write((p.get("data") or "").encode("utf-8"))
            return self.api.put_object(p["container"], p["name"], tmp, headers)
        finally:
            os.unlink(tmp)

    def plan(self):
        p = self.params
        current = self.api.object(p["container"], p["name"])
        if p["state"] == "absent":
            plan = self.new_plan(None, self.summary)
            if current is not None:
                self.diff.delete(self.summary(current))
                plan.then(lambda _r: self.api.delete_object(p["container"], p["name"]))
            return plan
        if p.get("filename") is None and p.get("data") is None:
            raise StratusError("state=present needs filename or data.")
        md5 = self.local_md5()
        metadata = dict((k.lower(), str(v)) for k, v in (p.get("metadata") or {}).items())
        have = _meta(current or {}, "object")
        merged = dict(have, **metadata)
        headers = dict((f"X-Object-Meta-{k}", v) for k, v in merged.items())
        if p.get("content_type"):
            headers["Content-Type"] = p["content_type"]
        if current is None:
            self.diff.create({"container": p["container"], "name": p["name"], "etag": md5,
                              "metadata": metadata})
            plan = self.new_plan(None, self.summary)
            plan.then(lambda _r: self.upload(headers))
            return plan
        plan = self.new_plan(current, self.summary)
        if self.diff.add("etag", current.get("etag", "").strip('"'), md5):
            plan.then(lambda _r: self.upload(headers))
            for key, value in metadata.items():
                self.diff.add(f"metadata.{key}", have.get(key), value)
            return plan
        for key, value in metadata.items():
            self.diff.add(f"metadata.{key}", have.get(key), value)
        if p.get("content_type"):
            self.diff.add("content_type", current.get("content-type"), p["content_type"])
        if self.diff.changed:
            plan.then(lambda _r: self.api.post_object(p["container"], p["name"], headers))
        return plan

    def summary(self, headers):
        if headers is None:
            return None
        return {"container": self.params["container"], "name": self.params["name"],
                "etag": headers.get("etag", "").strip('"'),
                "content_length": int(headers.get("content-length", 0)),
                "content_type": headers.get("content-type"),
                "metadata": _meta(headers, "object")}

    def result(self, resource):
        return {"changed": self.diff.changed, "diff": self.diff.diff, "object": resource}
