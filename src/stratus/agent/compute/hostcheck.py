"""The compute agent's watch over the host conditions that make libvirt slow.

A ``virsh define`` normally takes well under a second. It takes a minute when
libvirt decides its cached QEMU capabilities (``/var/cache/libvirt/qemu/
capabilities/<hash>.xml``, one per emulator) are out of date and probes QEMU
again, which runs every emulator binary and asks it everything over QMP. libvirt
checks that cache on every lookup, and a define or start looks it up. It throws
the cache away when:

- the QEMU binary's ctime changed (``<qemuctime>``), or libvirt's own binary or
  version changed (``<selfctime>``, ``<selfvers>``);
- QEMU's module directory (``/usr/lib/x86_64-linux-gnu/qemu``) changed mtime
  (``<qemumoddirmtime>``). A package install or reinstall does this, even an
  unrelated ``qemu-*`` module;
- whether the QEMU user can open ``/dev/kvm`` read-write no longer agrees with
  the cached ``kvm`` flag. libvirt tests this as the QEMU user, so it depends on
  the owner and mode of ``/dev/kvm``;
- when KVM is usable, the kernel version, the CPU microcode version or KVM's
  nesting changed.

While one of these keeps changing, or while the two sides of the ``/dev/kvm``
test keep disagreeing, every define waits for a new probe.

:class:`HostCheck` watches all this cheaply while the agent runs. Each heartbeat
calls :meth:`HostCheck.problems`, which does three things:

- it stats ``/dev/kvm`` (it must be group ``kvm``, mode ``0660``, and must not
  change while the agent runs);
- it stats the capabilities cache files, and reads one only when its mtime moved.
  A rewrite means libvirt re-probed QEMU, and the changed header fields say why;
- it keeps the slow steps :meth:`HostCheck.timed` measured around the agent's
  libvirt calls (define and start over ``slow_seconds``, 10 s).

The problems go out in the heartbeat (``HostResources.problems``). A spawn that had a
slow step reports a fault on its server that names the steps and the host's problems
(:meth:`HostCheck.spawn_fault`). The agent still checks ``/dev/kvm`` once at
start too (``agent.py``). See docs/compute-agent.md, "Host problems".
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stratus.contracts.compute import Fault, HostProblem

LOG = logging.getLogger("stratus.agent.compute.hostcheck")

KVM_DEVICE = "/dev/kvm"
CAPS_DIR = "/var/cache/libvirt/qemu/capabilities"
SLOW_SECONDS = 10.0
KEEP_SECONDS = 3600.0
# A slow spawn's fault: the server works, the code says it is not an error.
SLOW_FAULT_CODE = 200
MAX_SLOW_SERVERS = 100
# The header fields of a capabilities file whose change tells why libvirt re-probed.
CAPS_FIELDS = ("emulator", "qemuctime", "qemumoddirmtime", "selfctime", "selfvers",
               "version", "kvmVersion", "microcodeVersion", "kernelVersion")
CAPS_WHY = {"qemuctime": "the QEMU binary changed",
            "qemumoddirmtime": "QEMU's module directory changed (a package was installed)",
            "selfctime": "libvirt was upgraded", "selfvers": "libvirt was upgraded",
            "version": "QEMU was upgraded", "microcodeVersion": "the CPU microcode changed",
            "kernelVersion": "the kernel changed", "kvm": "/dev/kvm became usable or unusable "
            "for the QEMU user"}


def isotime(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def describe_mode(st: os.stat_result) -> str:
    """``uid:group 0660`` (the group by name when it has one)."""
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{st.st_uid}:{group} {stat.S_IMODE(st.st_mode):04o}"


def kvm_gid() -> int | None:
    """The ``kvm`` group's id, or None when the host has no such group."""
    try:
        return grp.getgrnam("kvm").gr_gid
    except KeyError:
        return None


def caps_header(text: str) -> dict[str, str]:
    """The fields of a capabilities file that libvirt's validity check reads, and ``kvm``
    (whether the cached capabilities say QEMU can use KVM)."""
    out = {}
    for name in CAPS_FIELDS:
        m = re.search(rf"<{name}>([^<]*)</{name}>", text)
        if m:
            out[name] = m.group(1)
    out["kvm"] = "yes" if "<flag name='kvm'/>" in text else "no"
    return out


@dataclass
class _Event:
    code: str
    message: str
    first: float
    last: float


@dataclass
class HostCheck:
    """Watches ``/dev/kvm``, libvirt's QEMU capabilities cache and the duration of the
    agent's libvirt calls. ``kvm_device`` or ``caps_dir`` None turns that check off (unit
    tests with fakes); ``clock`` times the steps, ``wall`` dates what is reported."""

    kvm_device: str | None = KVM_DEVICE
    caps_dir: str | None = CAPS_DIR
    slow_seconds: float = SLOW_SECONDS
    keep_seconds: float = KEEP_SECONDS
    kvm_group: int | None = field(default_factory=kvm_gid)
    stat: Callable[[str], os.stat_result] = os.stat
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _events: dict[str, _Event] = field(default_factory=dict, init=False, repr=False)
    _slow: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)
    _kvm_last: os.stat_result | None = field(default=None, init=False, repr=False)
    _caps: dict[str, tuple[float, dict[str, str]]] | None = field(default=None, init=False,
                                                                  repr=False)

    # --- the slow steps ------------------------------------------------------------------
    @contextlib.contextmanager
    def timed(self, step: str, server_id: str, spawn: bool = True) -> Iterator[None]:
        """Time one libvirt call for one server (``step``: define, start); one over
        ``slow_seconds`` becomes a host problem and, in a spawn, goes into the server's
        spawn fault (``spawn`` False: a redefine or a power-on outside a spawn)."""
        started = self.clock()
        try:
            yield
        finally:
            took = self.clock() - started
            if took > self.slow_seconds:
                text = f"{step} of server {server_id} took {took:.1f} s " \
                       f"(over {self.slow_seconds:g} s)"
                if spawn:
                    with self._lock:
                        self._slow.setdefault(server_id, []).append(
                            f"{step} took {took:.1f} s")
                        while len(self._slow) > MAX_SLOW_SERVERS:  # spawns that failed after
                            del self._slow[next(iter(self._slow))]
                self._note(f"slow_{step}", text)

    def spawn_fault(self, server_id: str) -> Fault | None:
        """The fault a spawn that had a slow step reports (then forgets it), else None."""
        with self._lock:
            steps = self._slow.pop(server_id, [])
        if not steps:
            return None
        details = "; ".join(f"{p.code}: {p.message}" for p in self.problems())
        return Fault(SLOW_FAULT_CODE,
                     f"The server was built, but slowly: {', '.join(steps)} "
                     f"(over {self.slow_seconds:g} s).",
                     f"Host problems: {details}" if details else "")

    # --- the periodic checks --------------------------------------------------------------
    def _note(self, code: str, message: str) -> None:
        now = self.wall()
        with self._lock:
            ev = self._events.get(code)
            if ev is None or ev.message != message:
                self._events[code] = _Event(code, message, ev.first if ev else now, now)
            else:
                ev.last = now
                return
        LOG.warning("host problem %s: %s", code, message)

    def _check_kvm(self) -> str | None:
        """What is wrong with /dev/kvm now, or None (also None when it does not exist)."""
        if self.kvm_device is None:
            return None
        try:
            st = self.stat(self.kvm_device)
        except OSError:
            return None
        last = self._kvm_last
        if last is not None and (last.st_uid, last.st_gid, last.st_mode) != (
                st.st_uid, st.st_gid, st.st_mode):
            self._note("kvm_device_changed",
                       f"{self.kvm_device} changed from {describe_mode(last)} to "
                       f"{describe_mode(st)} while the agent runs: libvirt re-probes QEMU "
                       "when the QEMU user's access to it changes")
        self._kvm_last = st
        group_ok = st.st_gid != 0 if self.kvm_group is None else st.st_gid == self.kvm_group
        if not stat.S_ISCHR(st.st_mode) or not group_ok or st.st_mode & 0o060 != 0o060:
            return (f"{self.kvm_device} is {describe_mode(st)}, not group kvm read-write: "
                    "libvirt may re-probe QEMU on every define (tens of seconds each); "
                    f"run: chgrp kvm {self.kvm_device}; chmod 0660 {self.kvm_device}")
        return None

    def _check_caps(self) -> None:
        """Note a rewrite of a capabilities file (libvirt re-probed QEMU) and why."""
        if self.caps_dir is None:
            return
        seen: dict[str, tuple[float, dict[str, str]]] = {}
        try:
            entries = [e for e in os.scandir(self.caps_dir) if e.name.endswith(".xml")]
        except OSError:
            return
        for entry in entries:
            try:
                mtime = entry.stat().st_mtime
            except OSError:
                continue
            old = self._caps.get(entry.name) if self._caps is not None else None
            if old is not None and old[0] == mtime:
                seen[entry.name] = old
                continue
            try:
                header = caps_header(Path(entry.path).read_text(errors="replace"))
            except OSError:
                continue
            seen[entry.name] = (mtime, header)
            if self._caps is None:
                continue  # the first look: nothing to compare with
            emulator = header.get("emulator", entry.name)
            changed = [k for k in (*CAPS_FIELDS, "kvm")
                       if old is not None and old[1].get(k) != header.get(k)]
            why = "; ".join(dict.fromkeys(CAPS_WHY[k] for k in changed if k in CAPS_WHY)) \
                or "the cache was missing or its reason is not in its header"
            self._note("qemu_reprobe",
                       f"libvirt re-probed {emulator} at {isotime(mtime)} ({why}); a define "
                       "or start waits for such a probe")
        self._caps = seen

    def problems(self) -> list[HostProblem]:
        """The host's problems now: /dev/kvm's state, and what happened within
        ``keep_seconds`` (re-probes, changes of /dev/kvm, slow steps)."""
        kvm = self._check_kvm()
        if kvm:
            self._note("kvm_device", kvm)
        else:
            with self._lock:
                self._events.pop("kvm_device", None)
        self._check_caps()
        now = self.wall()
        with self._lock:
            for code in [c for c, ev in self._events.items()
                         if now - ev.last > self.keep_seconds]:
                del self._events[code]
            return [HostProblem(ev.code, ev.message, isotime(ev.first))
                    for ev in sorted(self._events.values(), key=lambda e: e.code)]
