"""Attachments: Cinder's attachments API (3.27+) and the legacy attach actions, over one
``attachment`` table.

A volume's attach status is derived from its attachments (:func:`settle`): any
``attached`` one makes it ``in-use``, else an ``attaching`` one ``attaching``, else a
``reserved`` one ``reserved`` (``attaching`` for a legacy os-reserve), else
``available``; so no sequence of calls, nor a crash between two of them, can leave the
two disagreeing. An attachment with a connector is exported: its target (one per
attachment, CHAP credentials of its own) is in the storage host's desired state, and the
agent reports it ``ready``; only then does an update answer its ``connection_info``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.crashpoints import crash_point
from stratus.common.errors import BadRequest, Conflict
from stratus.common.timeutil import new_id, utcnow
from stratus.volume import models as m
from stratus.volume.volumes import invalid

if TYPE_CHECKING:
    from stratus.volume.core import VolumeCore

DERIVED = ("available", "reserved", "attaching", "in-use", "detaching")


def settle(s: Session, vol: m.Volume) -> None:
    """Derive the volume's status and attach_status from its attachments (statuses that
    are about something else -- creating, extending, uploading, error... -- stay)."""
    s.flush()
    atts = list(s.scalars(sa.select(m.Attachment).where(m.Attachment.volume_id == vol.id)))
    states = {a.attach_status for a in atts}
    if "attached" in states:
        status, attach = ("detaching" if vol.status == "detaching" else "in-use"), "attached"
    elif "attaching" in states:
        status, attach = "attaching", "attaching"
    elif "reserved" in states:
        legacy = any(a.legacy for a in atts if a.attach_status == "reserved")
        status, attach = ("attaching" if legacy else "reserved"), "reserved"
    else:
        status, attach = "available", "detached"
    if vol.status in DERIVED:
        vol.status = status
    elif vol.previous_status in DERIVED:
        vol.previous_status = status  # back to it after the extend/upload
    vol.attach_status = attach


def connection_info(att: m.Attachment, host: m.StorageHost | None) -> dict[str, Any] | None:
    """What the compute host connects with (Cinder's iSCSI shape), once exported."""
    if att.export_state != "ready" or host is None or not att.target_iqn:
        return None
    return {"driver_volume_type": "iscsi", "data": {
        "target_iqn": att.target_iqn, "target_portal": host.portal, "target_lun": 1,
        "target_discovered": False, "auth_method": "CHAP",
        "auth_username": att.auth_username, "auth_password": att.auth_password,
        "volume_id": att.volume_id, "access_mode": att.attach_mode, "discard": True,
        "encrypted": False, "qos_specs": None}}


class Attachments:
    def __init__(self, core: VolumeCore) -> None:
        self.core = core

    # ---- reading ---------------------------------------------------------------------

    def visible(self, ctx: AuthContext, project_id: str, all_projects: bool
             ) -> list[m.Attachment]:
        with self.core.db.session() as s:
            q = sa.select(m.Attachment).order_by(m.Attachment.created_at)
            if not (all_projects and ctx.is_admin):
                q = q.where(m.Attachment.project_id == project_id)
            return list(s.scalars(q))

    def show(self, ctx: AuthContext, attachment_id: str
             ) -> tuple[m.Attachment, dict[str, Any] | None]:
        with self.core.db.session() as s:
            att = self.core.attachment(s, ctx, attachment_id)
            return att, self._info(s, att)

    def _info(self, s: Session, att: m.Attachment) -> dict[str, Any] | None:
        vol = s.get(m.Volume, att.volume_id)
        host = s.get(m.StorageHost, vol.host) if vol is not None and vol.host else None
        return connection_info(att, host)

    def export_state(self, attachment_id: str) -> tuple[str | None, str | None]:
        """(export_state, fault) of an attachment; ("gone", None) once it is deleted."""
        with self.core.db.session() as s:
            att = s.get(m.Attachment, attachment_id)
            if att is None:
                return "gone", None
            return att.export_state, att.export_fault

    # ---- the attachments API ---------------------------------------------------------

    def _new(self, s: Session, vol: m.Volume, instance_uuid: str | None, mode: str,
             legacy: bool) -> m.Attachment:
        busy = vol.status in ("in-use", "reserved", "attaching") and vol.multiattach
        if vol.status != "available" and not busy:
            raise invalid(f"Volume {vol.id} status must be available to attach it (or "
                          f"in-use, reserved or attaching for a multiattach volume), but "
                          f"the current status is: {vol.status}.")
        if vol.readonly:
            mode = "ro"
        now = utcnow(precise=True)
        att = m.Attachment(id=new_id(), volume_id=vol.id, project_id=vol.project_id,
                           instance_uuid=instance_uuid, attach_status="reserved",
                           attach_mode=mode, legacy=legacy, created_at=now, updated_at=now)
        s.add(att)
        settle(s, vol)
        return att

    def create(self, ctx: AuthContext, volume_id: str, instance_uuid: str | None,
               connector: dict[str, Any] | None, mode: str) -> str:
        def work(s: Session) -> str:
            vol = self.core.volume(s, ctx, volume_id, lock=True)
            att = self._new(s, vol, instance_uuid, mode, legacy=False)
            if connector is not None:
                self._export(s, vol, att, connector)
            return att.id
        return self.core.transaction(work)

    def _export(self, s: Session, vol: m.Volume, att: m.Attachment,
                connector: dict[str, Any]) -> None:
        """Put the attachment's target in the storage host's desired state."""
        host = s.get(m.StorageHost, vol.host) if vol.host else None
        if host is None:
            raise Conflict(f"Volume {vol.id} has no storage host to export it from.")
        same = (att.connector or {}).get("initiator") == connector.get("initiator")
        if not (att.target_iqn and same):
            att.target_iqn = f"{host.iqn_prefix}:{att.id}"
            att.auth_username = "st" + secrets.token_hex(6)
            att.auth_password = secrets.token_hex(8)
            att.export_state, att.export_fault = None, None
            self.core.bump(s, host.host)
        att.connector = dict(connector)
        att.host_name = str(connector.get("host") or "") or None
        if att.attach_status == "reserved":
            att.attach_status = "attaching"
        att.updated_at = utcnow(precise=True)
        settle(s, vol)

    def update(self, ctx: AuthContext, attachment_id: str, connector: dict[str, Any]) -> None:
        def work(s: Session) -> None:
            att = self.core.attachment(s, ctx, attachment_id)
            vol = self.core.volume(s, ctx, att.volume_id, lock=True)
            if vol.status in ("deleting", "error", "creating"):
                raise invalid(f"Volume {vol.id} is {vol.status}; it cannot be connected.")
            self._export(s, vol, att, connector)
        self.core.transaction(work)
        crash_point("volume.attachment_update.after_commit")  # exported; no connection_info

    def export_failed(self, attachment_id: str, timed_out: bool) -> None:
        """The export did not become ready: the attachment goes back to ``reserved``; a
        failed export leaves the desired state (so a retry makes a fresh one)."""
        def work(s: Session) -> None:
            att = s.get(m.Attachment, attachment_id)
            if att is None:
                return
            vol = s.get(m.Volume, att.volume_id)
            if att.attach_status == "attaching":
                att.attach_status = "reserved"
            if not timed_out and vol is not None:
                att.target_iqn = att.auth_username = att.auth_password = None
                att.connector = None
                att.export_state = att.export_fault = None
                self.core.bump(s, vol.host)
            if vol is not None:
                settle(s, vol)
        self.core.transaction(work)

    def complete(self, ctx: AuthContext, attachment_id: str) -> None:
        def work(s: Session) -> None:
            att = self.core.attachment(s, ctx, attachment_id)
            vol = self.core.volume(s, ctx, att.volume_id, lock=True)
            if att.attach_status != "attached":
                att.attach_status = "attached"
                att.attached_at = utcnow(precise=True)
            settle(s, vol)
        self.core.transaction(work)

    def delete(self, ctx: AuthContext, attachment_id: str) -> list[m.Attachment]:
        def work(s: Session) -> list[m.Attachment]:
            att = self.core.attachment(s, ctx, attachment_id)
            vol = self.core.volume(s, ctx, att.volume_id, lock=True)
            if att.target_iqn:
                self.core.bump(s, vol.host)
            s.delete(att)
            if vol.status == "detaching":
                vol.status = "in-use"
            settle(s, vol)
            return list(s.scalars(sa.select(m.Attachment)
                                  .where(m.Attachment.volume_id == vol.id)))
        return self.core.transaction(work)

    # ---- the legacy actions ----------------------------------------------------------

    def _legacy(self, s: Session, vol: m.Volume, connector: dict[str, Any] | None = None,
                attached: bool = False) -> m.Attachment | None:
        """The attachment a legacy call is about: one with this connector's initiator,
        else a pending (not attached) one."""
        atts = list(s.scalars(sa.select(m.Attachment).where(m.Attachment.volume_id == vol.id)
                              .order_by(m.Attachment.created_at)))
        initiator = (connector or {}).get("initiator")
        if initiator:
            for att in atts:
                if (att.connector or {}).get("initiator") == initiator:
                    return att
        pending = [a for a in atts if a.attach_status != "attached"]
        if pending:
            return pending[0]
        return atts[0] if attached and atts else None

    def reserve(self, ctx: AuthContext, volume_id: str) -> None:
        def work(s: Session) -> None:
            vol = self.core.volume(s, ctx, volume_id, lock=True)
            self._new(s, vol, None, "rw", legacy=True)
        self.core.transaction(work)

    def unreserve(self, ctx: AuthContext, volume_id: str) -> None:
        def work(s: Session) -> None:
            vol = self.core.volume(s, ctx, volume_id, lock=True)
            for att in s.scalars(sa.select(m.Attachment).where(
                    m.Attachment.volume_id == vol.id, m.Attachment.attach_status == "reserved")):
                s.delete(att)
            settle(s, vol)
        self.core.transaction(work)

    def initialize(self, ctx: AuthContext, volume_id: str, connector: dict[str, Any]) -> str:
        def work(s: Session) -> str:
            vol = self.core.volume(s, ctx, volume_id, lock=True)
            att = self._legacy(s, vol, connector, attached=True)
            if att is None:
                att = self._new(s, vol, None, "rw", legacy=True)
            self._export(s, vol, att, connector)
            return att.id
        return self.core.transaction(work)

    def attach(self, ctx: AuthContext, volume_id: str, instance_uuid: str | None,
               mountpoint: str | None, host_name: str | None, mode: str) -> None:
        def work(s: Session) -> None:
            vol = self.core.volume(s, ctx, volume_id, lock=True)
            att = self._legacy(s, vol)
            if att is None:
                att = self._new(s, vol, instance_uuid, mode, legacy=True)
            att.instance_uuid = instance_uuid or att.instance_uuid
            att.mountpoint, att.attach_status = mountpoint, "attached"
            att.host_name = host_name or att.host_name
            att.attach_mode = "ro" if vol.readonly else mode
            att.attached_at = utcnow(precise=True)
            settle(s, vol)
        self.core.transaction(work)

    def begin_detaching(self, ctx: AuthContext, volume_id: str) -> None:
        def work(s: Session) -> None:
            vol = self.core.volume(s, ctx, volume_id, lock=True)
            if vol.status != "in-use":
                raise invalid(f"Volume {vol.id} status must be in-use to begin detaching, "
                              f"but the current status is: {vol.status}.")
            vol.status = "detaching"
            vol.updated_at = utcnow(precise=True)
        self.core.transaction(work)

    def roll_detaching(self, ctx: AuthContext, volume_id: str) -> None:
        def work(s: Session) -> None:
            vol = self.core.volume(s, ctx, volume_id, lock=True)
            if vol.status == "detaching":
                vol.status = "in-use"
            settle(s, vol)
        self.core.transaction(work)

    def terminate(self, ctx: AuthContext, volume_id: str, connector: dict[str, Any]) -> None:
        def work(s: Session) -> None:
            vol = self.core.volume(s, ctx, volume_id, lock=True)
            initiator = connector.get("initiator")
            for att in s.scalars(sa.select(m.Attachment)
                                 .where(m.Attachment.volume_id == vol.id)):
                if att.target_iqn and (not initiator or
                                       (att.connector or {}).get("initiator") == initiator):
                    att.target_iqn = att.auth_username = att.auth_password = None
                    att.export_state = att.export_fault = None
                    self.core.bump(s, vol.host)
        self.core.transaction(work)

    def detach(self, ctx: AuthContext, volume_id: str, attachment_id: str | None) -> None:
        def work(s: Session) -> None:
            vol = self.core.volume(s, ctx, volume_id, lock=True)
            atts = list(s.scalars(sa.select(m.Attachment)
                                  .where(m.Attachment.volume_id == vol.id)))
            if attachment_id:
                atts = [a for a in atts if a.id == attachment_id]
                if not atts:
                    raise BadRequest(f"Invalid volume: attachment {attachment_id} is not an "
                                     f"attachment of volume {vol.id}.")
            elif len(atts) > 1:
                raise BadRequest(f"Invalid volume: volume {vol.id} has several attachments; "
                                 "give attachment_id.")
            for att in atts[:1]:
                if att.target_iqn:
                    self.core.bump(s, vol.host)
                s.delete(att)
            if vol.status == "detaching":
                vol.status = "in-use"
            settle(s, vol)
        self.core.transaction(work)
