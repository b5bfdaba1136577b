# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_keypair: a key pair, imported from a public key or generated.

``KeypairConvergence.plan()`` compares the key pair of that name with the
options (a key pair cannot change: another public key or type fails) and
queues its creation or deletion; see ``stratus_plan`` for how check mode and
a real run share it.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_compute_api import (
    ComputeApi,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence


def key_fingerprint(public_key):
    """The type and base64 body of an OpenSSH public key (the comment does not count)."""
    return " ".join((public_key or "").split()[:2])


class KeypairConvergence(Convergence):
    """The decision logic of cloud_keypair over a ComputeApi."""

    def __init__(self, compute, params, check_mode):
        super().__init__(params, check_mode)
        self.compute = compute

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(ComputeApi(client), params, check_mode)

    def public_key(self):
        p = self.params
        if p.get("public_key_file"):
            try:
                with open(p["public_key_file"], encoding="utf-8") as fh:
                    return fh.read().strip()
            except OSError as exc:
                raise StratusError(
                    f"Cannot read public_key_file {p['public_key_file']}: "
                    f"{exc.strerror or exc}"
                ) from None
        return (p.get("public_key") or "").strip() or None

    def plan(self):
        p = self.params
        keypair = self.compute.get_keypair(p["name"])
        if p["state"] == "absent":
            plan = self.new_plan(None)
            if keypair is not None:
                self.diff.delete(self.summary(keypair))
                plan.then(lambda _none: self.compute.delete_keypair(p["name"]))
            return plan
        public_key = self.public_key()
        if keypair is not None:
            if public_key and key_fingerprint(public_key) != key_fingerprint(
                keypair.get("public_key")
            ):
                raise StratusError(
                    f"Key pair {p['name']!r} exists with another public key "
                    f"(fingerprint {keypair.get('fingerprint')}); key pairs cannot change. "
                    "Delete it first (state: absent) or use another name."
                )
            if p.get("type") and keypair.get("type", "ssh") != p["type"]:
                raise StratusError(
                    f"Key pair {p['name']!r} is of type {keypair.get('type')}, not {p['type']}; "
                    "key pairs cannot change."
                )
            return self.new_plan(keypair)
        attrs = {"name": p["name"]}
        if p.get("type"):
            attrs["type"] = p["type"]
        if public_key:
            attrs["public_key"] = public_key
        self.diff.create(dict(attrs, generated=not public_key))
        plan = self.new_plan(None)
        plan.then(lambda _none: self.compute.create_keypair(attrs))
        return plan

    @staticmethod
    def summary(keypair):
        return dict((k, keypair.get(k)) for k in ("name", "type", "fingerprint"))

    def result(self, keypair):
        out = {"changed": self.diff.changed, "diff": self.diff.diff, "keypair": None,
               "id": None}
        if keypair is not None:
            keypair = dict(keypair)
            private = keypair.pop("private_key", None)
            out["keypair"] = keypair
            out["id"] = keypair.get("name")
            if private:
                out["private_key"] = private
        return out
