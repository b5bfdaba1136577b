"""The storage agent's reconcile pass: pool and targets converge to the host's desired state.

Level-triggered. Each pass reads what really exists under this agent's prefix
(the pool's files, :mod:`stratus.agent.storage.pool`; the tgt targets and CHAP
accounts, :mod:`stratus.agent.storage.tgt`) and the
:class:`~stratus.contracts.volume.StorageHostState` the volume API last answered,
and acts on the difference, in this order:

1. unfinished files no running job owns are removed (after a kill -9: all of them);
2. targets no export wants are removed;
3. missing volumes and snapshots are made by jobs in a small worker pool (a
   download or a big copy never holds the exports up); volumes smaller than
   wanted are grown;
4. raw views no export needs are stopped; every wanted export is made exactly as
   described (target, LUN, CHAP, ACL; a qcow2 volume through its raw view,
   :mod:`stratus.agent.storage.rawview`); a LUN smaller than its grown file is made
   again, so an in-use extend reaches the initiator, and so is a LUN whose view's daemon
   was started again;
5. volumes and snapshots no longer wanted are deleted (never one a running job
   reads), CHAP accounts no export needs are deleted;
6. uploads to images run as jobs; each is reported ``done`` once.

The pass returns a :class:`~stratus.contracts.volume.StorageReport`: the host's
actual inventory (volumes with their size, or ``error`` and a fault; snapshots;
exports; uploads). An object a job is still making is not listed.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from stratus.agent.runner import CommandError
from stratus.agent.storage.pool import Inventory, Pool, PoolError
from stratus.agent.storage.tgt import Target
from stratus.common.clients import ServiceError
from stratus.contracts.volume import (
    ExportReport,
    ExportSpec,
    SnapshotReport,
    SnapshotSpec,
    StorageHostState,
    StorageReport,
    UploadReport,
    UploadSpec,
    VolumeReport,
    VolumeSpec,
)

LOG = logging.getLogger(__name__)


class ImageData(Protocol):
    """Image data through the image API (create from image, upload to image)."""

    def fetch(self, image_id: str) -> Iterator[bytes]: ...

    def upload(self, image_id: str, path: str) -> None: ...


class Exports(Protocol):
    """The targets of this agent (:class:`stratus.agent.storage.tgt.Tgt`; a fake in tests)."""

    def targets(self) -> list[Target]: ...

    def ours(self, targets: list[Target] | None = None) -> dict[str, Target]: ...

    def accounts(self) -> set[str]: ...

    def ensure(self, spec: ExportSpec, backing: str, all_targets: list[Target],
               accounts: set[str]) -> None: ...

    def delete_target(self, tid: int) -> None: ...

    def refresh_lun(self, cur: Target, lun: int, backing: str) -> None: ...

    def prune_accounts(self, keep: set[str], accounts: set[str] | None = None) -> list[str]: ...


def _temporary(exc: BaseException) -> bool:
    return bool(getattr(exc, "temporary", False))


@dataclass
class Job:
    """A running pool job: what it makes and what it reads (never deleted meanwhile)."""

    key: str
    future: concurrent.futures.Future[None]
    reads: set[str] = field(default_factory=set)  # "volume:<id>" / "snapshot:<id>"


class StorageReconciler:
    """One storage host's pool and targets, converged pass after pass."""

    def __init__(self, pool: Pool, exports: Exports, images: ImageData, workers: int = 2,
                 on_job_done: Callable[[], None] | None = None, retry_interval: float = 5.0):
        self.pool = pool
        self.exports = exports
        self.images = images
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="storage")
        self.on_job_done = on_job_done
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self.faults: dict[str, str] = {}  # job key -> permanent fault
        self.retry_interval = retry_interval
        self._retry_after: dict[str, float] = {}  # job key -> monotonic time (temporary faults)
        self.uploads_done: set[tuple[str, str]] = set()

    # --- jobs ---------------------------------------------------------------------------
    def busy(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if not j.future.done()]

    def wait_jobs(self, timeout: float | None = None) -> None:
        """Wait for every running job (tests, ``--once``)."""
        concurrent.futures.wait([j.future for j in self.busy()], timeout=timeout)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    def _submit(self, key: str, fn: Callable[[], object], reads: set[str]) -> None:
        with self._lock:
            cur = self._jobs.get(key)
            if cur is not None and not cur.future.done():
                return
            if key in self.faults or self._retry_after.get(key, 0.0) > time.monotonic():
                return

            def run() -> None:
                try:
                    fn()
                    self.faults.pop(key, None)
                    self._retry_after.pop(key, None)
                except Exception as exc:  # one job's failure never stops the others
                    if _temporary(exc):
                        LOG.warning("%s: %s (will retry)", key, exc)
                        self._retry_after[key] = time.monotonic() + self.retry_interval
                    else:
                        LOG.error("%s: %s", key, exc)
                        self.faults[key] = str(exc)
                    if not isinstance(exc, (PoolError, CommandError, ServiceError, OSError)):
                        LOG.exception("%s", key)
                finally:
                    if self.on_job_done is not None:
                        self.on_job_done()

            self._jobs[key] = Job(key, self.executor.submit(run), reads)

    # --- one pass -----------------------------------------------------------------------
    def reconcile(self, state: StorageHostState) -> StorageReport:
        """Converge the host to ``state``; return the actual inventory."""
        busy = self.busy()
        busy_ids = {k.split(":", 1)[1] for j in busy for k in (j.key, *j.reads)}
        for path in self.pool.remove_partials(
                keep=[p for p in self.pool.scan().partials
                      if any(i in p.name for i in busy_ids)]):
            LOG.info("removed unfinished file %s", path)
        inv = self.pool.scan()
        wanted_vols = {v.id: v for v in state.volumes}
        wanted_snaps = {s.id: s for s in state.snapshots}
        # forget faults of objects no longer wanted (a new object may reuse nothing)
        wanted_keys = ({f"volume:{i}" for i in wanted_vols}
                       | {f"snapshot:{i}" for i in wanted_snaps}
                       | {f"upload:{u.volume_id}:{u.image_id}" for u in state.uploads})
        for key in list(self.faults):
            if key not in wanted_keys:
                self.faults.pop(key, None)

        self._volumes(wanted_vols, inv)  # grows first: an export then shows the new size
        export_reports = self._exports(state.exports, inv)
        self._snapshots(wanted_snaps, inv)
        self._deletions(wanted_vols, wanted_snaps, state.exports, inv)
        upload_reports = self._uploads(state.uploads, inv)
        return self._report(wanted_vols, wanted_snaps, export_reports, upload_reports)

    def _volumes(self, wanted: dict[str, VolumeSpec], inv: Inventory) -> None:
        for vid, spec in wanted.items():
            key = f"volume:{vid}"
            have = inv.volumes.get(vid)
            if have is None:
                reads = {f"{spec.source.kind}:{spec.source.id}"} if spec.source.id else set()
                self._submit(key, functools.partial(self._create, spec), reads)
                continue
            fmt = have[0]
            try:
                self.pool.grow(vid, fmt, spec.size_gb)
                if self.faults.get(key, "").startswith("grow:"):
                    self.faults.pop(key, None)
            except (PoolError, CommandError) as exc:
                self.faults[key] = f"grow: {exc}"

    def _create(self, spec: VolumeSpec) -> None:
        kind, sid = spec.source.kind, spec.source.id or ""
        if kind == "blank":
            self.pool.create_blank(spec.id, spec.format, spec.size_gb)
        elif kind == "image":
            self.pool.create_from_image(spec.id, spec.format, spec.size_gb,
                                        self.images.fetch(sid))
        elif kind == "volume":
            src = self.pool.scan().volumes.get(sid)
            if src is None:
                raise PoolError(f"source volume {sid} is not on this host", temporary=True)
            path, fmt = self.pool.source(sid, src[0])
            self.pool.create_from_file(spec.id, spec.format, spec.size_gb, path, fmt)
        else:
            snap = self.pool.scan().snapshots.get(sid)
            if snap is None:
                raise PoolError(f"source snapshot {sid} is not on this host", temporary=True)
            self.pool.create_from_file(spec.id, spec.format, spec.size_gb, snap, "qcow2")
        LOG.info("volume %s made (%s, %d GiB, from %s %s)", spec.id, spec.format,
                 spec.size_gb, kind, sid)

    def _snapshots(self, wanted: dict[str, SnapshotSpec], inv: Inventory) -> None:
        for sid, spec in wanted.items():
            if sid in inv.snapshots:
                continue
            vol = inv.volumes.get(spec.volume_id)
            if vol is None:
                continue  # its volume is still being made: a later pass
            self._submit(f"snapshot:{sid}",
                         functools.partial(self.pool.snapshot, spec.id, spec.volume_id, vol[0]),
                         {f"volume:{spec.volume_id}"})

    def _exports(self, exports: list[ExportSpec], inv: Inventory) -> list[ExportReport]:
        reports: list[ExportReport] = []
        try:
            targets = self.exports.targets()
            ours = self.exports.ours(targets)
            accounts = self.exports.accounts()
        except CommandError as exc:
            fault = f"tgtd is not answering: {exc}"
            LOG.error("%s", fault)
            return [ExportReport(e.attachment_id, "error", fault) for e in exports]
        wanted = {e.target_iqn for e in exports}
        for iqn, target in ours.items():
            if iqn not in wanted:
                try:
                    self.exports.delete_target(target.tid)
                    LOG.info("target %s removed", iqn)
                except CommandError as exc:
                    LOG.error("target %s: %s", iqn, exc)
        targets = [t for t in targets if t.iqn in wanted or t.iqn not in ours]
        self._prune_views(exports, inv)
        for spec in exports:
            vol = inv.volumes.get(spec.volume_id)
            if vol is None:
                reports.append(ExportReport(spec.attachment_id, "error",
                                            f"volume {spec.volume_id} is not on this host"))
                continue
            if vol[0] != "raw" and self.pool.views is None:
                reports.append(ExportReport(
                    spec.attachment_id, "error", f"volume {spec.volume_id} is {vol[0]}: tgt "
                    "exports raw files only, and this agent serves no raw views"))
                continue
            try:
                backing = str(vol[1])
                if vol[0] == "qcow2" and self.pool.views is not None:
                    backing = str(self.pool.views.view_path(spec.volume_id))
                    if self.pool.views.ensure(spec.volume_id, vol[1]):
                        cur = next((t for t in targets if t.iqn == spec.target_iqn), None)
                        if cur is not None and cur.luns.get(spec.lun) == backing:
                            # the LUN holds the dead view open: open the new one
                            self.exports.refresh_lun(cur, spec.lun, backing)
                self.exports.ensure(spec, backing, targets, accounts)
                reports.append(ExportReport(spec.attachment_id, "ready"))
                if all(t.iqn != spec.target_iqn for t in targets):
                    targets = self.exports.targets()
            except (CommandError, OSError) as exc:
                LOG.error("export %s: %s", spec.attachment_id, exc)
                reports.append(ExportReport(spec.attachment_id, "error", str(exc)))
        try:
            self.exports.prune_accounts({e.auth_username for e in exports})
        except CommandError as exc:
            LOG.error("CHAP accounts: %s", exc)
        return reports

    def _prune_views(self, exports: list[ExportSpec], inv: Inventory) -> None:
        """Stop the raw views no export (and no running job) needs any more."""
        views = self.pool.views
        if views is None:
            return
        keep = {e.volume_id for e in exports}
        keep |= {r.split(":", 1)[1] for j in self.busy() for r in j.reads
                 if r.startswith("volume:")}
        for vid in views.present() - keep:
            try:
                views.remove(vid)
            except (CommandError, OSError) as exc:
                LOG.error("raw view of volume %s: %s", vid, exc)

    def _deletions(self, vols: dict[str, VolumeSpec], snaps: dict[str, SnapshotSpec],
                   exports: list[ExportSpec], inv: Inventory) -> None:
        read = {r for j in self.busy() for r in j.reads}
        exported = {e.volume_id for e in exports}
        for vid, (fmt, _path) in inv.volumes.items():
            if vid not in vols and vid not in exported and f"volume:{vid}" not in read:
                try:
                    self.pool.delete_volume(vid, fmt)
                    LOG.info("volume %s deleted", vid)
                except OSError as exc:  # reported as error: the API says error_deleting
                    self.faults[f"volume:{vid}"] = f"delete: {exc}"
        for sid in inv.snapshots:
            if sid not in snaps and f"snapshot:{sid}" not in read:
                try:
                    self.pool.delete_snapshot(sid)
                    LOG.info("snapshot %s deleted", sid)
                except OSError as exc:
                    self.faults[f"snapshot:{sid}"] = f"delete: {exc}"

    def _uploads(self, uploads: list[UploadSpec], inv: Inventory) -> list[UploadReport]:
        reports = []
        wanted = {(u.volume_id, u.image_id) for u in uploads}
        self.uploads_done &= wanted
        for up in uploads:
            key = f"upload:{up.volume_id}:{up.image_id}"
            if (up.volume_id, up.image_id) in self.uploads_done:
                reports.append(UploadReport(up.volume_id, up.image_id, "done"))
            elif key in self.faults:
                reports.append(UploadReport(up.volume_id, up.image_id, "error",
                                            self.faults[key]))
            elif up.volume_id in inv.volumes:
                fmt = inv.volumes[up.volume_id][0]
                self._submit(key, functools.partial(self._upload, up, fmt),
                             {f"volume:{up.volume_id}"})
        return reports

    def _upload(self, up: UploadSpec, fmt: str) -> None:
        with self.pool.upload_file(up.volume_id, fmt, up.image_id, up.disk_format) as path:
            try:
                self.images.upload(up.image_id, str(path))
            except ServiceError as exc:
                if exc.status != 409:
                    raise
                # the image has its data already: an earlier run uploaded it and was
                # killed before reporting
                LOG.info("image %s already has data: upload counted done", up.image_id)
        self.uploads_done.add((up.volume_id, up.image_id))
        LOG.info("volume %s uploaded to image %s (%s)", up.volume_id, up.image_id,
                 up.disk_format)

    def _report(self, vols: dict[str, VolumeSpec], snaps: dict[str, SnapshotSpec],
                exports: list[ExportReport], uploads: list[UploadReport]) -> StorageReport:
        inv = self.pool.scan()
        vreports = []
        for vid, (fmt, path) in sorted(inv.volumes.items()):
            fault = self.faults.get(f"volume:{vid}")
            try:
                size = self.pool.size_gb(path, fmt)
            except (PoolError, CommandError) as exc:
                vreports.append(VolumeReport(vid, 0, "error", str(exc)))
                continue
            vreports.append(VolumeReport(vid, size, "error" if fault else "ready", fault))
        for vid in sorted(set(vols) - set(inv.volumes)):
            fault = self.faults.get(f"volume:{vid}")
            if fault:
                vreports.append(VolumeReport(vid, 0, "error", fault))
        sreports = [SnapshotReport(sid, "error", self.faults[f"snapshot:{sid}"])
                    if f"snapshot:{sid}" in self.faults else SnapshotReport(sid)
                    for sid in sorted(inv.snapshots)]
        for sid in sorted(set(snaps) - set(inv.snapshots)):
            fault = self.faults.get(f"snapshot:{sid}")
            if fault:
                sreports.append(SnapshotReport(sid, "error", fault))
        return StorageReport(volumes=vreports, snapshots=sreports, exports=exports,
                             uploads=uploads)
