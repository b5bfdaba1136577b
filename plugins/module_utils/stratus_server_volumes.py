# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_server's volumes: boot from volume (``block_device_mapping_v2``) and the
``volumes`` attached to the server.

Booting from a volume follows Nova's documented shape: one mapping with
``boot_index`` 0 and ``destination_type`` ``volume``, whose source is the
image (``boot_from_volume`` with ``volume_size``: the compute API makes a new
volume of the image) or an existing volume (``boot_volume``);
``delete_on_termination`` is ``terminate_volume``; the server's ``imageRef``
is then the empty string, as Nova wants it. The ``volumes`` option names
volumes attached through ``os-volume_attachments`` once the server is ACTIVE,
and attached to an existing server when it lacks them (volumes it has beyond
them are left alone).

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_volume_api import (
    one,
    wait_attached,
)


class ServerVolumes:
    """The volume side of one cloud_server run; records its part of the diff in ``diff``."""

    def __init__(self, volumes, compute, params, diff):
        self.volumes = volumes
        self.compute = compute
        self.params = params
        self.diff = diff

    @property
    def wanted(self):
        return list(self.params.get("volumes") or [])

    def boots_from_volume(self):
        p = self.params
        return bool(p.get("boot_volume") or p.get("boot_from_volume"))

    def block_device_mapping(self, image_id):
        """(the ``block_device_mapping_v2`` list, what the diff shows of the boot disk).

        ``image_id`` is the resolved image (None without one). Without boot from
        volume: (None, None).
        """
        p = self.params
        terminate = bool(p.get("terminate_volume"))
        if p.get("boot_volume"):
            volume = one(self.volumes.find_volumes(p["boot_volume"]), "volume", p["boot_volume"])
            if volume.get("status") != "available":
                raise StratusError(f"boot_volume {p['boot_volume']!r} ({volume['id']}) is "
                                   f"{volume.get('status')}; a server boots from an available "
                                   "volume.")
            mapping = {"boot_index": 0, "uuid": volume["id"], "source_type": "volume",
                       "destination_type": "volume", "delete_on_termination": terminate}
            return [mapping], {"source": "volume", "volume": volume["id"],
                               "delete_on_termination": terminate}
        if not p.get("boot_from_volume"):
            return None, None
        if image_id is None:
            raise StratusError("boot_from_volume needs image (the image the new boot volume "
                               "is made of), or give boot_volume.")
        if not p.get("volume_size"):
            raise StratusError("boot_from_volume needs volume_size (GiB of the new boot "
                               "volume made of the image).")
        mapping = {"boot_index": 0, "uuid": image_id, "source_type": "image",
                   "destination_type": "volume", "volume_size": p["volume_size"],
                   "delete_on_termination": terminate}
        return [mapping], {"source": "image", "image": image_id, "size": p["volume_size"],
                           "delete_on_termination": terminate}

    def resolve(self):
        """{name or ID given: volume} of the ``volumes`` option."""
        out = {}
        for name in self.wanted:
            out[name] = one(self.volumes.find_volumes(name), "volume", name)
        return out

    def check_free(self, resolved, server_id=None):
        for name, volume in resolved.items():
            others = [a.get("server_id") for a in volume.get("attachments") or []
                      if a.get("server_id") != server_id]
            if others and not volume.get("multiattach"):
                raise StratusError(f"Volume {name!r} ({volume['id']}) is attached to server(s) "
                                   f"{', '.join(map(str, others))}; detach it there first.")

    def plan_new(self):
        """The volumes a new server gets: (their IDs, for the diff)."""
        resolved = self.resolve()
        self.check_free(resolved)
        return [v["id"] for v in resolved.values()]

    def plan_existing(self, server):
        """The volumes an existing server lacks; records them in the diff."""
        if not self.wanted:
            return []
        resolved = self.resolve()
        attached = set(a.get("volumeId") for a in self.compute.volume_attachments(server["id"]))
        missing = dict((n, v) for n, v in resolved.items() if v["id"] not in attached)
        if not missing:
            return []
        self.check_free(missing, server["id"])
        wanted_ids = sorted(v["id"] for v in resolved.values())
        self.diff.add("volumes", sorted(i for i in wanted_ids if i in attached), wanted_ids)
        return [v["id"] for v in missing.values()]

    def attach(self, server_id, volume_ids, timeout):
        """Attach the volumes, one after the other, each waited for when ``wait``."""
        for volume_id in volume_ids:
            self.compute.attach_volume(server_id, volume_id)
            if self.params.get("wait"):
                wait_attached(self.compute, self.volumes, server_id, volume_id, timeout)
