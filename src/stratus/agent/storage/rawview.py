"""Raw views of qcow2 volumes, so tgt can export them: ``qemu-storage-daemon`` FUSE exports.

tgt serves a file's bytes as the LUN's blocks, so it cannot export a qcow2 file
itself. For every exported qcow2 volume the agent runs one
``qemu-storage-daemon`` that opens the qcow2 file and exports its guest-visible
data over FUSE as a plain file, the *view* ``<pool>/<prefix>-view-<volume id>.raw``
(a regular file in the pool directory, used as the mount point); tgt's LUN is
backed by the view. Reads and writes go through QEMU's qcow2 driver, so the
volume stays a qcow2 file (sparse, snapshots by ``qemu-img convert``), and
growing the view (``truncate``) grows the qcow2 image through the daemon, which
holds the image's lock while it runs.

Nothing is found by process name alone: a daemon is this agent's when its
command line is ``qemu-storage-daemon`` AND its FUSE export's mount point is a
view path of this pool and prefix (``/proc/<pid>/cmdline``); a mount is this
agent's when ``/proc/self/mountinfo`` lists a FUSE mount on such a path. So a
kill -9 of the agent leaves daemons the next pass recognises (kept if still
wanted, stopped if not), and a kill -9 of a daemon leaves a dead mount that the
next pass unmounts (``fusermount3 -u -z``) before it starts the daemon again and
has the target's LUN made again on the fresh view.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from stratus.agent.runner import CommandError, Runner

LOG = logging.getLogger(__name__)

DAEMON = "qemu-storage-daemon"


@dataclass(frozen=True)
class Daemon:
    """A running qemu-storage-daemon of this agent: its pid and the qcow2 file it opened."""

    pid: int
    image: str


def _unescape(field: str) -> str:
    """A /proc/self/mountinfo path field (octal escapes for blanks and backslashes)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


class RawViews:
    """The raw views of one pool directory under one prefix."""

    def __init__(self, pool_path: str | Path, prefix: str, runner: Runner,
                 proc: str | Path = "/proc", stop_timeout: float = 10.0):
        self.path = Path(pool_path)
        self.prefix = prefix
        self.runner = runner
        self.proc = Path(proc)
        self.stop_timeout = stop_timeout
        self._view_re = re.compile(
            rf"^{re.escape(prefix)}-view-([A-Za-z0-9_-]+)\.raw$")

    # --- names and what exists ----------------------------------------------------------
    def view_path(self, volume_id: str) -> Path:
        """The view (FUSE mount point) of a volume; ids are checked by the pool."""
        return self.path / f"{self.prefix}-view-{volume_id}.raw"

    def _volume_of(self, path: str) -> str | None:
        p = Path(path)
        if p.parent != self.path:
            return None
        m = self._view_re.match(p.name)
        return m.group(1) if m else None

    def daemons(self) -> dict[str, list[Daemon]]:
        """This agent's daemons by volume id (normally one each)."""
        found: dict[str, list[Daemon]] = {}
        try:
            entries = list(self.proc.iterdir())
        except OSError:
            return found
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if not argv or os.path.basename(argv[0]) != DAEMON:
                continue
            opts = [a for a in argv if "mountpoint=" in a or "filename=" in a]
            mount = image = None
            for opt in opts:
                for part in opt.split(","):
                    key, _, value = part.partition("=")
                    if key == "mountpoint":
                        mount = value
                    elif key == "filename":
                        image = value
            vid = self._volume_of(mount) if mount else None
            if vid is not None:
                found.setdefault(vid, []).append(Daemon(int(entry.name), image or ""))
        return found

    def mounts(self) -> set[str]:
        """Volume ids whose view has a FUSE mount (live or dead)."""
        out: set[str] = set()
        try:
            text = (self.proc / "self" / "mountinfo").read_text()
        except OSError:
            return out
        for line in text.splitlines():
            fields = line.split()
            if " - " not in line or len(fields) < 5:
                continue
            fstype = line.split(" - ", 1)[1].split()[0]
            if not fstype.startswith("fuse"):
                continue
            vid = self._volume_of(_unescape(fields[4]))
            if vid is not None:
                out.add(vid)
        return out

    def present(self) -> set[str]:
        """Every volume id with a view file, a mount or a daemon of this agent."""
        ids = set(self.daemons()) | self.mounts()
        try:
            for entry in os.scandir(self.path):
                if m := self._view_re.match(entry.name):
                    ids.add(m.group(1))
        except FileNotFoundError:
            pass
        return ids

    def active(self, volume_id: str) -> bool:
        """Whether the volume's view is served now (its daemon runs and the mount is up)."""
        return volume_id in self.daemons() and volume_id in self.mounts()

    # --- converging ---------------------------------------------------------------------
    def ensure(self, volume_id: str, image: Path) -> bool:
        """Serve ``image`` (a qcow2 volume file) at its view; True when a daemon was started
        now (whatever exported the old view must open it again)."""
        daemons = self.daemons().get(volume_id, [])
        if (len(daemons) == 1 and daemons[0].image == str(image)
                and volume_id in self.mounts()):
            return False
        self.remove(volume_id, keep_file=True)
        view = self.view_path(volume_id)
        view.touch(exist_ok=True)
        view.chmod(0o600)
        argv = [DAEMON, "--daemonize",
                "--blockdev", f"driver=file,node-name=file0,filename={image}",
                "--blockdev", "driver=qcow2,node-name=vol0,file=file0",
                "--export", f"type=fuse,id=view0,node-name=vol0,mountpoint={view},"
                            "writable=on"]
        try:
            self.runner.run(argv)  # --daemonize: returns once the export is mounted
        except CommandError as exc:
            raise CommandError(exc.argv, exc.returncode,
                               f"the raw view of qcow2 volume {volume_id}: {exc.stderr}",
                               temporary=exc.temporary) from None
        LOG.info("volume %s: raw view %s served by %s", volume_id, view, DAEMON)
        return True

    def remove(self, volume_id: str, keep_file: bool = False) -> None:
        """Stop the volume's daemons (by pid, SIGTERM then SIGKILL), unmount a dead view,
        and remove the view file unless ``keep_file``."""
        for daemon in self.daemons().get(volume_id, []):
            self._stop(daemon.pid)
        view = self.view_path(volume_id)
        if volume_id in self.mounts():
            self.runner.run(["fusermount3", "-u", "-z", str(view)], check=False)
        if volume_id in self.mounts():
            raise CommandError(["fusermount3", "-u", str(view)], 1,
                               f"{view} is still mounted")
        if not keep_file:
            view.unlink(missing_ok=True)
            LOG.info("volume %s: raw view removed", volume_id)

    def _stop(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline:
            if not self._alive(pid):
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        while self._alive(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.05)

    def _alive(self, pid: int) -> bool:
        """Whether ``pid`` runs (a zombie waiting for its parent's wait does not)."""
        try:
            stat = (self.proc / str(pid) / "stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]
