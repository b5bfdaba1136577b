# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""The compute API (Nova v2.1) as the compute modules use it.

``ComputeApi`` wraps a ``StratusClient`` with the few compute calls the modules
need and negotiates the microversion once: ``2.47`` (flavor embedded in the
server, networks required on create), or the service's maximum when that is
lower. The convergences (``stratus_flavor``, ``stratus_keypair``,
``stratus_server``) take it as a parameter, so tests give them fakes with the
same methods.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import re

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError

WANTED_MICROVERSION = (2, 47)
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


def parse_version(text):
    """(major, minor) of a microversion string such as "2.47"; None when empty or bad."""
    try:
        major, minor = str(text).split(".")
        return int(major), int(minor)
    except (TypeError, ValueError):
        return None


class ComputeApi:
    """Calls on the compute API (catalog type ``compute``) at a negotiated microversion."""

    service = "compute"

    def __init__(self, client):
        self.client = client
        self._microversion = None

    @property
    def project_id(self):
        return self.client.project_id

    @property
    def microversion(self):
        """``2.47``, or the service's maximum when lower (read from its version document)."""
        if self._microversion is None:
            body = self.client.get(self.service, self.client.endpoint(self.service))
            version = (body or {}).get("version") or {}
            if not version and isinstance((body or {}).get("versions"), list):
                version = next((v for v in body["versions"] if v.get("id") == "v2.1"), {})
            top = parse_version(version.get("version"))
            wanted = WANTED_MICROVERSION if top is None else min(top, WANTED_MICROVERSION)
            self._microversion = "{}.{}".format(*wanted) if top else "2.1"
        return self._microversion

    def call(self, method, path, body=None, query=None, expect=(200, 201, 202, 204)):
        version = self.microversion
        headers = {
            "OpenStack-API-Version": f"compute {version}",
            "X-OpenStack-Nova-API-Version": version,
        }
        return self.client.request(
            method, self.service, path, body=body, query=query, headers=headers, expect=expect
        ).body

    def get_or_none(self, path, key):
        try:
            return self.call("GET", path, expect=(200,))[key]
        except StratusError as exc:
            if exc.status == 404:
                return None
            raise

    # ---- flavors -------------------------------------------------------------------------

    def flavors(self):
        """Every flavor the caller may see (private ones too, for admins)."""
        return self.call("GET", "/flavors/detail", query={"is_public": "None"})["flavors"]

    def find_flavor(self, name_or_id):
        flavor = self.get_or_none(f"/flavors/{name_or_id}", "flavor")
        if flavor is not None:
            return flavor
        found = [f for f in self.flavors() if f.get("name") == name_or_id]
        if len(found) > 1:
            raise StratusError(f"{len(found)} flavors are named {name_or_id!r}; use the ID.")
        return found[0] if found else None

    def create_flavor(self, attrs):
        return self.call("POST", "/flavors", body={"flavor": attrs})["flavor"]

    def delete_flavor(self, flavor_id):
        self.call("DELETE", f"/flavors/{flavor_id}")

    def extra_specs(self, flavor_id):
        return self.call("GET", f"/flavors/{flavor_id}/os-extra_specs")["extra_specs"]

    def set_extra_specs(self, flavor_id, specs):
        self.call("POST", f"/flavors/{flavor_id}/os-extra_specs", body={"extra_specs": specs})

    def unset_extra_spec(self, flavor_id, key):
        self.call("DELETE", f"/flavors/{flavor_id}/os-extra_specs/{key}")

    def flavor_access(self, flavor_id):
        body = self.call("GET", f"/flavors/{flavor_id}/os-flavor-access")
        return sorted(a["tenant_id"] for a in body["flavor_access"])

    def flavor_access_action(self, flavor_id, action, project_id):
        self.call("POST", f"/flavors/{flavor_id}/action", body={action: {"tenant": project_id}})

    # ---- key pairs -----------------------------------------------------------------------

    def get_keypair(self, name):
        return self.get_or_none(f"/os-keypairs/{name}", "keypair")

    def create_keypair(self, attrs):
        return self.call("POST", "/os-keypairs", body={"keypair": attrs})["keypair"]

    def delete_keypair(self, name):
        self.call("DELETE", f"/os-keypairs/{name}")

    # ---- servers -------------------------------------------------------------------------

    def servers(self, query=None):
        """Servers (detailed) matching ``query``, following the ``next`` links."""
        out: list = []
        body = self.call("GET", "/servers/detail", query=query)
        while True:
            out.extend(body.get("servers") or [])
            nxt = [link["href"] for link in body.get("servers_links") or []
                   if link.get("rel") == "next"]
            if not nxt:
                return out
            body = self.call("GET", nxt[0])

    def get_server(self, server_id):
        return self.get_or_none(f"/servers/{server_id}", "server")

    def find_servers(self, name_or_id, query=None):
        """Servers whose ID is ``name_or_id``, else those whose name is exactly it."""
        if UUID_RE.match(name_or_id):
            server = self.get_server(name_or_id)
            if server is not None:
                return [server]
        # The name filter is a regular expression in the compute API: anchored and escaped.
        pattern = "^" + re.escape(name_or_id) + "$"
        found = self.servers(dict(query or {}, name=pattern))
        return [s for s in found if s.get("name") == name_or_id]

    def create_server(self, attrs):
        return self.call("POST", "/servers", body={"server": attrs}, expect=(202,))["server"]

    def delete_server(self, server_id):
        try:
            self.call("DELETE", f"/servers/{server_id}", expect=(204,))
        except StratusError as exc:
            if exc.status != 404:
                raise

    def action(self, server_id, name, value=None):
        self.call("POST", f"/servers/{server_id}/action", body={name: value},
                  expect=(200, 202, 204))

    def set_metadata(self, server_id, metadata):
        self.call("POST", f"/servers/{server_id}/metadata", body={"metadata": metadata})

    def delete_metadata(self, server_id, key):
        self.call("DELETE", f"/servers/{server_id}/metadata/{key}", expect=(204,))

    # ---- volumes of servers (os-volume_attachments) --------------------------------------

    def volume_attachments(self, server_id):
        """The server's volumeAttachments (``volumeId``, ``device``, ``serverId``)."""
        body = self.call("GET", f"/servers/{server_id}/os-volume_attachments", expect=(200,))
        return body.get("volumeAttachments") or []

    def attach_volume(self, server_id, volume_id, device=None):
        attrs = {"volumeId": volume_id}
        if device:
            attrs["device"] = device
        return self.call("POST", f"/servers/{server_id}/os-volume_attachments",
                         body={"volumeAttachment": attrs}, expect=(200,))["volumeAttachment"]

    def detach_volume(self, server_id, volume_id):
        try:
            self.call("DELETE", f"/servers/{server_id}/os-volume_attachments/{volume_id}",
                      expect=(202,))
        except StratusError as exc:
            if exc.status != 404:
                raise


def spec_value(value):
    """A value as the compute API stores extra specs and metadata: a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
