"""Flavor extra-spec validation (Nova's microversion 2.86): a key in a namespace Nova
registers (``hw:``, ``hw_rng:``, ``hw_video:``, ``os:``, ``quota:``) must be one of that
namespace's keys and its value of the key's kind; keys in other namespaces (or in none)
are not checked, as Nova leaves them to out-of-tree drivers and filters. Pure functions,
no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable

BOOL_WORDS = ("true", "false", "1", "0", "yes", "no", "on", "off")


def _choice(*values: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value.lower() in values else f"one of {', '.join(values)}"
    return check


def _integer(lo: int = 0, hi: int = 2**31 - 1) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        ok = re.fullmatch(r"-?[0-9]+", value.strip()) is not None and lo <= int(value) <= hi
        return None if ok else f"an integer from {lo} to {hi}"
    return check


def _pattern(regex: str, what: str) -> Callable[[str], str | None]:
    compiled = re.compile(regex)

    def check(value: str) -> str | None:
        return None if compiled.fullmatch(value) else what
    return check


BOOL = _choice(*BOOL_WORDS)
ANY = _pattern(r".*", "anything")
INT = _integer()
CPU_SET = _pattern(r"\^?[0-9]+(-[0-9]+)?(,\^?[0-9]+(-[0-9]+)?)*", "a CPU set such as 0-3,^2")

# key (without its namespace) -> check; "{n}" stands for a NUMA node or CPU number
REGISTRY: dict[str, dict[str, Callable[[str], str | None]]] = {
    "hw": {
        "cpu_policy": _choice("dedicated", "shared", "mixed"),
        "cpu_thread_policy": _choice("prefer", "isolate", "require"),
        "emulator_threads_policy": _choice("share", "isolate"),
        "cpu_dedicated_mask": CPU_SET, "cpu_realtime": BOOL, "cpu_realtime_mask": CPU_SET,
        "cpu_sockets": INT, "cpu_cores": INT, "cpu_threads": INT,
        "cpu_max_sockets": INT, "cpu_max_cores": INT, "cpu_max_threads": INT,
        "numa_nodes": _integer(1), "numa_cpus.{n}": CPU_SET, "numa_mem.{n}": INT,
        "mem_page_size": _pattern(r"(?i)(large|small|any|[0-9]+(kb|mb|gb|k|m|g)?)",
                                  "large, small, any or a size such as 2MB"),
        "mem_encryption": BOOL, "pci_numa_affinity_policy": _choice(
            "required", "preferred", "legacy", "socket"),
        "watchdog_action": _choice("none", "pause", "poweroff", "reset", "disabled"),
        "boot_menu": BOOL, "vif_multiqueue_enabled": BOOL, "pmu": BOOL,
        "serial_port_count": INT, "tpm_version": _choice("1.2", "2.0"),
        "tpm_model": _choice("tpm-tis", "tpm-crb"),
        "hide_hypervisor_id": BOOL, "locked_memory": BOOL, "virtio_packed_ring": BOOL,
        "maxphysaddr_mode": _choice("passthrough", "emulate"),
        "maxphysaddr_bits": _integer(1, 128), "time_hpet": BOOL,
        "viommu_model": _choice("none", "intel", "smmuv3", "virtio", "auto"),
        "ephemeral_encryption": BOOL, "ephemeral_encryption_format": _choice("luks", "plain"),
        "sound_model": ANY, "usb_model": ANY, "redirected_usb_ports": INT,
    },
    "hw_rng": {"allowed": BOOL, "rate_bytes": INT, "rate_period": INT},
    "hw_video": {"ram_max_mb": INT},
    "os": {"secure_boot": _choice("required", "disabled", "optional")},
    "quota": {key: INT for key in (
        "cpu_shares", "cpu_period", "cpu_quota", "disk_read_bytes_sec",
        "disk_read_iops_sec", "disk_write_bytes_sec", "disk_write_iops_sec",
        "disk_total_bytes_sec", "disk_total_iops_sec", "vif_inbound_average",
        "vif_inbound_peak", "vif_inbound_burst", "vif_outbound_average",
        "vif_outbound_peak", "vif_outbound_burst", "memory_limit", "memory_reservation",
        "memory_shares_share", "cpu_limit", "cpu_reservation", "cpu_shares_share",
        "disk_io_limit", "disk_io_reservation", "disk_io_shares_share",
        "vif_limit", "vif_reservation", "vif_shares_share")},
}


def problem(key: str, value: str) -> str | None:
    """Why ``key: value`` is not a valid extra spec (None when it is, or when its
    namespace is not one of :data:`REGISTRY`'s)."""
    namespace, sep, name = key.partition(":")
    if not sep or namespace not in REGISTRY:
        return None
    keys = REGISTRY[namespace]
    check = keys.get(name) or keys.get(re.sub(r"\.[0-9]+$", ".{n}", name))
    if check is None:
        return (f"Validation failed; extra spec {key!r} is not a known key of the "
                f"{namespace!r} namespace (known: {', '.join(sorted(keys))}).")
    wanted = check(value)
    if wanted is not None:
        return f"Validation failed; the value of extra spec {key!r} must be {wanted}, not " \
               f"{value!r}."
    return None
