# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_volume_attachment: a volume attached to a server (the compute API's
``os-volume_attachments``), or not.

``AttachmentConvergence.plan()`` finds the server and the volume and decides,
before anything is written, whether the volume is attached (nothing to do when
it already is, whatever its device), attached elsewhere (an error unless the
volume is multiattach), or detached. The waits follow the volume's status in
the volume API (``in-use`` once the compute agent plugged it, ``available``
once it is unplugged and its export gone). See ``stratus_plan`` for how check
mode and a real run share the plan.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_compute_api import (
    ComputeApi,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_volume_api import (
    VOLUME_TRANSIENT,
    VolumeApi,
    one,
    wait_attached,
    wait_for,
)


def attached_to(volume, server_id):
    """True when the volume API lists an attachment of the volume to the server."""
    return any(a.get("server_id") == server_id for a in (volume or {}).get("attachments") or [])


class AttachmentConvergence(Convergence):
    """The decision logic of cloud_volume_attachment over the compute and volume APIs."""

    def __init__(self, compute, volumes, params, check_mode):
        super().__init__(params, check_mode)
        self.compute = compute
        self.volumes = volumes

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(ComputeApi(client), VolumeApi(client), params, check_mode)

    @property
    def timeout(self):
        timeout = self.params.get("timeout")
        return 180 if timeout is None else timeout

    def plan(self):
        p = self.params
        server = one(self.compute.find_servers(p["server"]), "server", p["server"])
        volume = one(self.volumes.find_volumes(p["volume"]), "volume", p["volume"])
        current = next((a for a in self.compute.volume_attachments(server["id"])
                        if a.get("volumeId") == volume["id"]), None)
        if p["state"] == "absent":
            return self.plan_detach(server, volume, current)
        return self.plan_attach(server, volume, current)

    def result(self, found):
        attachment, volume = found if found else (None, None)
        out = {"changed": self.diff.changed, "diff": self.diff.diff, "attachment": attachment,
               "volume": volume, "warnings": list(self.warnings)}
        return out

    def plan_attach(self, server, volume, current):
        p = self.params
        if current is not None:
            if p.get("device") and current.get("device") != p["device"]:
                self.warnings.append(
                    f"Volume {p['volume']} is attached to {p['server']} as "
                    f"{current.get('device')}, not {p['device']}; it is left as it is (detach "
                    "it, state: absent, and run again to move it).")
            return self.new_plan((current, volume))
        others = [a.get("server_id") for a in volume.get("attachments") or []
                  if a.get("server_id") != server["id"]]
        if others and not volume.get("multiattach"):
            raise StratusError(
                f"Volume {p['volume']!r} ({volume['id']}) is attached to server(s) "
                f"{', '.join(map(str, others))}; detach it there first (it is not multiattach).")
        if volume.get("status") in VOLUME_TRANSIENT and p.get("wait"):
            volume = wait_for(self.volumes.get_volume, volume["id"], "volume",
                              lambda v: v is not None and v.get("status") not in VOLUME_TRANSIENT,
                              self.timeout)
        if volume.get("status") != "available" and not volume.get("multiattach"):
            raise StratusError(f"Volume {p['volume']!r} ({volume['id']}) is "
                               f"{volume.get('status')}; it can be attached once available.")
        self.diff.create({"server": server["id"], "volume": volume["id"],
                          "device": p.get("device") or "(the next free one)"})
        plan = self.new_plan(None)

        @plan.then
        def attach(_none):
            attachment = self.compute.attach_volume(server["id"], volume["id"], p.get("device"))
            vol = volume
            if p.get("wait"):
                vol = wait_attached(self.compute, self.volumes, server["id"], volume["id"],
                                    self.timeout)
            return attachment, vol

        return plan

    def plan_detach(self, server, volume, current):
        p = self.params
        if current is None:
            return self.new_plan(None)
        self.diff.delete({"server": server["id"], "volume": volume["id"],
                          "device": current.get("device")})
        plan = self.new_plan(None)

        @plan.then
        def detach(_none):
            self.compute.detach_volume(server["id"], volume["id"])
            if p.get("wait"):
                wait_for(self.volumes.get_volume, volume["id"], "volume",
                         lambda v: v is None or (not attached_to(v, server["id"])
                                                 and v.get("status") not in VOLUME_TRANSIENT),
                         self.timeout)
            return None

        return plan
