# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""The block-storage API (Cinder v3) as the volume modules use it.

``VolumeApi`` wraps a ``StratusClient`` with the few volume and snapshot calls
the modules need, at a negotiated microversion: ``3.42`` (extend an in-use
volume), or the service's maximum when lower. The catalog type is
``block-storage`` (``volumev3`` and ``volume`` are tried next, as clients do);
the endpoint carries the project (``.../v3/<project_id>``), so paths here are
relative to it. The convergences (``stratus_volume``,
``stratus_volume_snapshot``, ``stratus_volume_attachment``) take it as a
parameter, so tests give them fakes with the same methods.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import re
import time

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError

WANTED_MICROVERSION = (3, 42)
SERVICE_TYPES = ("block-storage", "volumev3", "volume")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
# Statuses a volume or snapshot passes through on its way to a stable one.
VOLUME_TRANSIENT = ("creating", "extending", "downloading", "uploading", "attaching",
                    "detaching", "reserved", "deleting", "backing-up", "restoring-backup")
SNAPSHOT_TRANSIENT = ("creating", "deleting")


def parse_version(text):
    """(major, minor) of a microversion string such as "3.42"; None when empty or bad."""
    try:
        major, minor = str(text).split(".")
        return int(major), int(minor)
    except (TypeError, ValueError):
        return None


class VolumeApi:
    """Calls on the block-storage API at a negotiated microversion."""

    def __init__(self, client):
        self.client = client
        self._service = None
        self._microversion = None

    @property
    def project_id(self):
        return self.client.project_id

    @property
    def service(self):
        """The first of block-storage, volumev3, volume the catalog has."""
        if self._service is None:
            for kind in SERVICE_TYPES:
                try:
                    self.client.endpoint(kind)
                except StratusError:
                    continue
                self._service = kind
                break
            else:
                self.client.endpoint(SERVICE_TYPES[0])  # raises, naming what the catalog has
        return self._service

    @property
    def microversion(self):
        """``3.42``, or the service's maximum when lower (from the /v3/ version document)."""
        if self._microversion is None:
            url = self.client.endpoint(self.service)
            base = url.split("/v3", 1)[0] + "/v3/"
            try:
                body = self.client.get(self.service, base) or {}
            except StratusError:
                body = {}
            versions = body.get("versions") or ([body["version"]] if body.get("version") else [])
            top = None
            for version in versions:
                if str(version.get("id", "")).startswith("v3"):
                    top = parse_version(version.get("version"))
            wanted = WANTED_MICROVERSION if top is None else min(top, WANTED_MICROVERSION)
            self._microversion = "{}.{}".format(*wanted) if top else "3.0"
        return self._microversion

    def call(self, method, path, body=None, query=None, expect=(200, 202, 204)):
        headers = {"OpenStack-API-Version": f"volume {self.microversion}"}
        return self.client.request(
            method, self.service, path, body=body, query=query, headers=headers, expect=expect
        ).body

    def _get_or_none(self, path, key):
        try:
            return self.call("GET", path, expect=(200,))[key]
        except StratusError as exc:
            if exc.status == 404:
                return None
            raise

    def _list(self, path, key, query):
        out = []
        body = self.call("GET", path, query=query, expect=(200,))
        while True:
            out.extend(body.get(key) or [])
            nxt = [link["href"] for link in body.get(key + "_links") or []
                   if link.get("rel") == "next"]
            if not nxt:
                return out
            body = self.call("GET", nxt[0], expect=(200,))

    # ---- volumes -------------------------------------------------------------------------

    def volumes(self, query=None):
        """Volumes (detailed) matching ``query``, following the ``next`` links."""
        return self._list("/volumes/detail", "volumes", query)

    def get_volume(self, volume_id):
        return self._get_or_none(f"/volumes/{volume_id}", "volume")

    def find_volumes(self, name_or_id, query=None):
        """The volume whose ID is ``name_or_id``, else those named exactly so."""
        if UUID_RE.match(name_or_id):
            volume = self.get_volume(name_or_id)
            if volume is not None:
                return [volume]
        found = self.volumes(dict(query or {}, name=name_or_id))
        return [v for v in found if v.get("name") == name_or_id]

    def create_volume(self, attrs):
        return self.call("POST", "/volumes", body={"volume": attrs}, expect=(202,))["volume"]

    def update_volume(self, volume_id, attrs):
        return self.call("PUT", f"/volumes/{volume_id}", body={"volume": attrs},
                         expect=(200,))["volume"]

    def volume_action(self, volume_id, name, value=None):
        self.call("POST", f"/volumes/{volume_id}/action", body={name: value},
                  expect=(200, 202, 204))

    def delete_volume(self, volume_id):
        try:
            self.call("DELETE", f"/volumes/{volume_id}", expect=(202, 204))
        except StratusError as exc:
            if exc.status != 404:
                raise

    # ---- snapshots -----------------------------------------------------------------------

    def snapshots(self, query=None):
        return self._list("/snapshots/detail", "snapshots", query)

    def get_snapshot(self, snapshot_id):
        return self._get_or_none(f"/snapshots/{snapshot_id}", "snapshot")

    def find_snapshots(self, name_or_id, query=None):
        """The snapshot whose ID is ``name_or_id``, else those named exactly so."""
        if UUID_RE.match(name_or_id):
            snap = self.get_snapshot(name_or_id)
            if snap is not None:
                return [snap]
        found = self.snapshots(dict(query or {}, name=name_or_id))
        return [s for s in found if s.get("name") == name_or_id]

    def create_snapshot(self, attrs):
        return self.call("POST", "/snapshots", body={"snapshot": attrs},
                         expect=(202,))["snapshot"]

    def update_snapshot(self, snapshot_id, attrs):
        return self.call("PUT", f"/snapshots/{snapshot_id}", body={"snapshot": attrs},
                         expect=(200,))["snapshot"]

    def delete_snapshot(self, snapshot_id):
        try:
            self.call("DELETE", f"/snapshots/{snapshot_id}", expect=(202, 204))
        except StratusError as exc:
            if exc.status != 404:
                raise


def one(found, kind, name_or_id, required=True):
    """The one item of ``found``; several is an error, none is one when ``required``."""
    if len(found) > 1:
        ids = ", ".join(i["id"] for i in found)
        raise StratusError(f"{len(found)} {kind}s are named {name_or_id!r} ({ids}); use the ID.")
    if not found:
        if required:
            raise StratusError(f"{kind.capitalize()} {name_or_id!r} was not found.")
        return None
    return found[0]


def wait_for(get, item_id, kind, done, timeout):
    """Poll ``get(item_id)`` until ``done(item)`` (``done(None)`` true: until it is gone); an
    ``error*`` status fails with what the item shows, and so does the deadline."""
    deadline = time.monotonic() + timeout
    interval = 0.5
    while True:
        item = get(item_id)
        if done(item):
            return item
        if item is None:
            raise StratusError(f"The {kind} {item_id} disappeared while being waited for.")
        status = item.get("status")
        if str(status).startswith("error"):
            reason = item.get("fault") or item.get("status_reason") or "no reason given"
            if isinstance(reason, dict):
                reason = reason.get("message") or reason
            raise StratusError(f"The {kind} {item.get('name') or item_id} ({item_id}) went to "
                               f"{status}: {reason}.")
        if time.monotonic() >= deadline:
            raise StratusError(f"Timed out after {timeout} s waiting for the {kind} {item_id} "
                               f"(it is {status}).")
        time.sleep(interval)
        interval = min(interval * 1.5, 3.0)


def wait_attached(compute, volumes, server_id, volume_id, timeout):
    """After an attach request: until the volume API lists the volume attached to the server.

    The compute API keeps its own record of the attach (``os-volume_attachments``) from the
    request on; when that record goes before the volume is attached, the compute API undid a
    failed attach, and this fails at once instead of waiting out the timeout.
    """
    def done(vol):
        if any(a.get("server_id") == server_id for a in (vol or {}).get("attachments") or []):
            return True
        if not any(a.get("volumeId") == volume_id
                   for a in compute.volume_attachments(server_id)):
            raise StratusError(f"The compute API gave up attaching volume {volume_id} to "
                               f"server {server_id} (the attachment is gone; the volume is "
                               f"{(vol or {}).get('status')}). See the compute agent's log.")
        return False
    return wait_for(volumes.get_volume, volume_id, "volume", done, timeout)
