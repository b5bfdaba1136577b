"""The storage agents' side of the volume service: registration and heartbeat, placement
of new volumes, each host's desired state (:class:`StorageHostState`), the agent's
reports, and the sweep that re-derives every status from the last reports.

Level-triggered both ways: the desired state is rebuilt from the rows on every read,
and a report is the agent's whole inventory, applied by :meth:`Storage.apply` -- which
the sweep runs again on start and every ``sweep_interval`` with the last report kept,
so a status is never left transitional by a crash of either side:

* ``creating`` → ``available`` once the report lists the volume ready, ``error`` (with
  the agent's fault) when it lists it failed; with no storage host: ``error`` at once;
* ``extending`` → the status before it once the reported size reaches the new one;
  ``error_extending`` on a failure;
* ``uploading`` → the status before it once the upload is reported done (or failed);
* ``deleting`` → the row goes once the agent no longer lists the volume;
  ``error_deleting`` when it reports the removal failed;
* snapshots alike; an attachment's export ``ready``/``error`` as reported;
* attach statuses are re-derived from the attachments (``attachments.settle``); on the
  first sweep of a process a ``detaching`` left by a dead caller goes back to ``in-use``;
  an attachment never completed for ``stale_attachment_seconds`` is removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.crashpoints import crash_point
from stratus.common.errors import NotFound
from stratus.common.timeutil import new_id, utcnow
from stratus.contracts.volume import (
    ExportSpec,
    HostRegistration,
    SnapshotSpec,
    StorageHostState,
    StorageReport,
    UploadSpec,
    VolumeSource,
    VolumeSpec,
)
from stratus.volume import models as m
from stratus.volume.attachments import settle

if TYPE_CHECKING:
    from stratus.volume.core import VolumeCore


class Storage:
    def __init__(self, core: VolumeCore) -> None:
        self.core = core
        self.swept = 0  # sweeps done by this process

    # ---- hosts -----------------------------------------------------------------------

    def generations(self, hosts: frozenset[str]) -> Mapping[str, int]:
        """The hosts' desired-state generations (the long-poll's read)."""
        with self.core.db.session() as s:
            rows = s.execute(sa.select(m.StorageHost.host, m.StorageHost.generation)
                             .where(m.StorageHost.host.in_(hosts)))
            return {h: g for h, g in rows}

    def register(self, reg: HostRegistration) -> dict[str, Any]:
        def work(s: Session) -> dict[str, Any]:
            now = utcnow(precise=True)
            row = s.get(m.StorageHost, reg.host)
            if row is None:
                row = m.StorageHost(host=reg.host, generation=1, created_at=now, enabled=True)
                s.add(row)
            row.portal, row.iqn_prefix = reg.portal, reg.iqn_prefix
            row.capacity_gb, row.free_gb = reg.capacity_gb, reg.free_gb
            row.formats, row.heartbeat_at = list(reg.formats), now
            s.flush()
            return {"host": {**reg.to_dict(), "generation": row.generation}}
        return self.core.transaction(work)

    def hosts(self) -> list[m.StorageHost]:
        with self.core.db.session() as s:
            return list(s.scalars(sa.select(m.StorageHost).order_by(m.StorageHost.host)))

    def is_up(self, host: m.StorageHost) -> bool:
        limit = utcnow(precise=True) - timedelta(seconds=self.core.settings.service_down_time)
        return host.heartbeat_at >= limit

    def place(self, s: Session, size: int, vt: m.VolumeType, host: str | None,
              kind: str) -> m.StorageHost | None:
        """The host a new volume goes to: its source's (a clone), else the up host with
        the most free room (by its report, less the volumes still being made there)
        among those the type's ``volume_backend_name`` allows."""
        if host is not None:
            return s.get(m.StorageHost, host)
        backend = str((vt.extra_specs or {}).get("volume_backend_name") or "")
        best: tuple[int, m.StorageHost] | None = None
        for row in s.scalars(sa.select(m.StorageHost).where(m.StorageHost.enabled.is_(True))):
            if not self.is_up(row):
                continue
            if backend and backend not in (self.core.settings.backend_name, row.host):
                continue
            pending = int(s.scalar(sa.select(sa.func.coalesce(sa.func.sum(m.Volume.size), 0))
                                   .where(m.Volume.host == row.host,
                                          m.Volume.status == "creating")) or 0)
            room = row.free_gb - pending
            if row.capacity_gb > 0 and room < size:
                continue
            if best is None or room > best[0]:
                best = (room, row)
        return best[1] if best else None

    def format_for(self, host: m.StorageHost) -> str:
        wanted = self.core.settings.volume_format
        formats = list(host.formats or [])
        return wanted if not formats or wanted in formats else formats[0]

    # ---- the desired state -----------------------------------------------------------

    def state(self, host: str) -> StorageHostState:
        with self.core.db.session() as s:
            row = s.get(m.StorageHost, host)
            generation = row.generation if row is not None else 0
            vols = list(s.scalars(sa.select(m.Volume).where(m.Volume.host == host)
                                  .order_by(m.Volume.created_at)))
            live = {v.id: v for v in vols if v.status not in ("deleting", "error_deleting")
                    and not (v.status == "error" and not v.ready)}
            snaps = s.scalars(sa.select(m.Snapshot).where(
                m.Snapshot.host == host,
                m.Snapshot.status.not_in(("deleting", "error", "error_deleting")))
                .order_by(m.Snapshot.created_at))
            atts: list[m.Attachment] = list(s.scalars(sa.select(m.Attachment).where(
                m.Attachment.volume_id.in_(list(live)), m.Attachment.target_iqn.is_not(None))
                .order_by(m.Attachment.created_at))) if live else []
            return StorageHostState(
                generation=generation,
                volumes=[VolumeSpec(v.id, v.size, v.format,
                                    VolumeSource(v.source_kind, v.source_id))
                         for v in live.values()],
                snapshots=[SnapshotSpec(sn.id, sn.volume_id) for sn in snaps
                           if sn.volume_id in live],
                exports=[ExportSpec(a.id, a.volume_id, str(a.target_iqn),
                                    str(a.auth_username), str(a.auth_password), 1,
                                    (a.connector or {}).get("initiator") or None)
                         for a in atts],
                uploads=[UploadSpec(v.id, v.upload_image_id, v.upload_disk_format or "raw")
                         for v in live.values() if v.upload_image_id])

    # ---- reports ---------------------------------------------------------------------

    def report(self, host: str, report: StorageReport) -> dict[str, Any]:
        def work(s: Session) -> dict[str, Any]:
            row = s.get(m.StorageHost, host)
            if row is None:
                raise NotFound(f"Storage host {host} is not registered; register it first.")
            row.last_report = report.to_dict()
            row.reported_at = utcnow(precise=True)
            out = self.apply(s, host, report)
            queued[0] = bool(s.info.pop("server_events", False))
            return out
        queued = [False]
        result = self.core.transaction(work)
        if queued[0]:
            crash_point("volume.report.after_server_events")  # committed, not yet sent
            self.core.server_events.wake()  # sent now, not at the next sweep
        return result

    def apply(self, s: Session, host: str, report: StorageReport,
              as_of: datetime | None = None) -> dict[str, Any]:
        """Move the host's objects on by what the agent has (see the module docstring).
        ``as_of``: when a kept report was received (the sweep); an export changed since
        (a fresh target for the same attachment) is not judged by it."""
        now = utcnow(precise=True)
        changed = 0
        have = {v.id: v for v in report.volumes}
        uploads = {(u.volume_id, u.image_id): u for u in report.uploads}
        for vol in s.scalars(sa.select(m.Volume).where(m.Volume.host == host)):
            got = have.get(vol.id)
            before = (vol.status, vol.fault, vol.ready)
            if got is not None and got.state == "ready":
                vol.ready = True
            if vol.status == "creating" and got is not None:
                if got.state == "ready":
                    vol.status, vol.fault = "available", None
                else:
                    vol.status, vol.fault = "error", got.fault or "The storage agent failed."
            elif vol.status == "extending" and got is not None:
                if got.state == "error":
                    vol.status, vol.fault = "error_extending", got.fault
                elif got.size_gb >= vol.size:
                    if vol.previous_status == "in-use":
                        self._volume_extended(s, vol, now)
                    vol.status, vol.previous_status = vol.previous_status or "available", None
            elif vol.status == "uploading" and vol.upload_image_id:
                up = uploads.get((vol.id, vol.upload_image_id))
                if up is not None:
                    vol.status, vol.previous_status = vol.previous_status or "available", None
                    vol.fault = None if up.state == "done" else (up.fault or "upload failed")
                    vol.upload_image_id = vol.upload_disk_format = None
                    self.core.bump(s, host)
            elif vol.status in ("deleting", "error_deleting"):
                if got is None:
                    self._drop(s, vol)
                    changed += 1
                    continue
                if got.state == "error":
                    vol.status, vol.fault = "error_deleting", got.fault
            if (vol.status, vol.fault, vol.ready) != before:
                vol.updated_at = now
                changed += 1
        snaps = {sn.id: sn for sn in report.snapshots}
        for snap in s.scalars(sa.select(m.Snapshot).where(m.Snapshot.host == host)):
            got_s = snaps.get(snap.id)
            if snap.status == "creating" and got_s is not None:
                snap.status = "available" if got_s.state == "ready" else "error"
                snap.fault = got_s.fault
                snap.updated_at, changed = now, changed + 1
            elif snap.status == "deleting" and got_s is None:
                s.delete(snap)
                changed += 1
        exports = {e.attachment_id: e for e in report.exports}
        for att in s.scalars(sa.select(m.Attachment).join(
                m.Volume, m.Volume.id == m.Attachment.volume_id).where(
                m.Volume.host == host, m.Attachment.target_iqn.is_not(None))):
            if as_of is not None and att.updated_at is not None and att.updated_at > as_of:
                continue
            got_e = exports.get(att.id)
            state = None if got_e is None else got_e.state
            fault = None if got_e is None else got_e.fault
            if (att.export_state, att.export_fault) != (state, fault):
                att.export_state, att.export_fault = state, fault
                changed += 1
        return {"changed": changed}

    def _volume_extended(self, s: Session, vol: m.Volume, now: datetime) -> None:
        """An attached volume finished growing: owe each server it is attached to Nova's
        ``volume-extended`` event (sent after the commit, ``volume/server_events.py``)."""
        for att in s.scalars(sa.select(m.Attachment).where(
                m.Attachment.volume_id == vol.id, m.Attachment.instance_uuid.is_not(None),
                m.Attachment.attach_status == "attached")):
            s.add(m.ServerEvent(id=new_id(), name="volume-extended",
                                server_uuid=att.instance_uuid, tag=vol.id, created_at=now))
            s.info["server_events"] = True

    def _drop(self, s: Session, vol: m.Volume) -> None:
        for snap in s.scalars(sa.select(m.Snapshot).where(m.Snapshot.volume_id == vol.id)):
            s.delete(snap)
        for att in s.scalars(sa.select(m.Attachment).where(m.Attachment.volume_id == vol.id)):
            s.delete(att)
        s.flush()
        s.delete(vol)

    # ---- the sweep -------------------------------------------------------------------

    def sweep(self) -> dict[str, int]:
        """Re-derive statuses from the last reports (see the module docstring)."""
        first = self.swept == 0
        self.swept += 1
        counts = {"hosts": 0, "settled": 0, "stale": 0}
        for row in self.hosts():
            if row.last_report is None:
                continue
            report = StorageReport.from_dict(row.last_report)

            def work(s: Session, host: str = row.host, rep: StorageReport = report,
                     when: datetime | None = row.reported_at) -> None:
                self.apply(s, host, rep, when)
            self.core.transaction(work)
            counts["hosts"] += 1

        stale = self.core.settings.stale_attachment_seconds
        cutoff = utcnow(precise=True) - timedelta(seconds=stale) if stale > 0 else None

        def settle_all(s: Session) -> None:
            for vol in s.scalars(sa.select(m.Volume).where(m.Volume.host.is_(None),
                                                            m.Volume.status == "creating")):
                vol.status, vol.fault = "error", "No valid backend was found."
            for vol in s.scalars(sa.select(m.Volume).where(m.Volume.host.is_(None),
                                                            m.Volume.status == "deleting")):
                self._drop(s, vol)
            if cutoff is not None:
                for att in s.scalars(sa.select(m.Attachment).where(
                        m.Attachment.attach_status.in_(("reserved", "attaching")),
                        m.Attachment.updated_at < cutoff)):
                    owner = s.get(m.Volume, att.volume_id)
                    if owner is not None and att.target_iqn:
                        self.core.bump(s, owner.host)
                    s.delete(att)
                    counts["stale"] += 1
            for vol in s.scalars(sa.select(m.Volume).where(
                    m.Volume.status.in_(("reserved", "attaching", "in-use", "detaching",
                                         "available")))):
                status = vol.status
                if first and status == "detaching":
                    vol.status = "in-use"
                settle(s, vol)
                if vol.status != status:
                    counts["settled"] += 1
        self.core.transaction(settle_all)
        return counts
