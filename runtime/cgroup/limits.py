"""Pure cgroup knowledge: how a container's limits map to cgroup files and values, v1 and v2.

Nothing here touches the filesystem, so the limit arithmetic (CFS quota from nano-CPUs, cpu.shares
to cpu.weight, v1 versus v2 file names, the device allow-list) is unit tested with plain data.
``v1.py`` and ``v2.py`` do the writes; ``hierarchy.py`` reads the host's layout.
"""

from __future__ import annotations

from dataclasses import dataclass

CFS_PERIOD_US = 100_000
MIN_CFS_QUOTA_US = 1_000
ON_DEMAND_V1 = frozenset({"blkio"})
"""v1 controllers a container only gets a cgroup in when one of its limits needs it (saves a
mkdir, a join and an rmdir per container)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one container; 0 means unlimited."""

    memory_bytes: int = 0
    pids: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    blkio_weight: int = 0


def cfs_quota_us(nano_cpus: int, period_us: int = CFS_PERIOD_US) -> int:
    """CFS quota for ``nano_cpus`` (1e9 = one CPU) per ``period_us``; at least the kernel's 1 ms."""
    return max(MIN_CFS_QUOTA_US, nano_cpus * period_us // 1_000_000_000)


def memory_swap_bytes(memory_bytes: int) -> int:
    """Memory + swap a container may use: docker's default for ``--memory`` alone is twice the memory
    (as much swap as memory). Only hosts that account swap enforce it."""
    return 2 * memory_bytes


def v1_writes(limits: Limits) -> list[tuple[str, str, str]]:
    """(controller, file, value) in the order to write them; memsw is written only if present."""
    writes: list[tuple[str, str, str]] = []
    if limits.memory_bytes:
        writes.append(("memory", "memory.limit_in_bytes", str(limits.memory_bytes)))
        writes.append(("memory", "memory.memsw.limit_in_bytes", str(memory_swap_bytes(limits.memory_bytes))))
    if limits.nano_cpus:
        writes.append(("cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US)))
        writes.append(("cpu", "cpu.cfs_quota_us", str(cfs_quota_us(limits.nano_cpus))))
    if limits.cpu_shares:
        writes.append(("cpu", "cpu.shares", str(limits.cpu_shares)))
    if limits.pids:
        writes.append(("pids", "pids.max", str(limits.pids)))
    if limits.blkio_weight:
        writes.append(("blkio", "blkio.weight", str(limits.blkio_weight)))
    return writes


def v1_device_writes() -> list[tuple[str, str, str]]:
    """The devices allow-list (v1): deny everything, then docker's default device rules."""
    return [("devices", "devices.deny", "a")] + [("devices", "devices.allow", rule) for rule in DEVICE_RULES]


DEVICE_RULES = (
    "c *:* m", "b *:* m",  # mknod may create any node; opening one needs a rule below
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",  # tty console ptmx pts
    "c 10:200 rwm",  # tun
)  # fmt: skip


def device_list_is_default(text: str) -> bool:
    """Whether a v1 ``devices.list`` shows exactly the allow-list ``v1_device_writes`` sets."""
    return sorted(line.strip() for line in text.splitlines() if line.strip()) == sorted(DEVICE_RULES)


def cpu_weight(shares: int) -> int:
    """v1 cpu.shares (2..262144) -> v2 cpu.weight (1..10000), as runc converts it."""
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight(blkio_weight: int) -> int:
    """v1 blkio weight (10..1000) -> v2 io.weight (1..10000), as runc converts it when the kernel has
    no BFQ ``io.bfq.weight`` (which takes the v1 value as it is)."""
    return 1 + ((blkio_weight - 10) * 9999) // 990


OPTIONAL_FILES = frozenset({"memory.memsw.limit_in_bytes", "memory.swap.max"})
"""Files that only exist when the kernel accounts swap; skipped when absent."""


V2_BFQ_WEIGHT = "io.bfq.weight"
"""Written instead of io.weight, with the v1 value, when the disk scheduler is BFQ (runc does the same)."""


V2_ACCOUNTING = frozenset({"cpu", "memory", "pids"})
"""Enabled for every container where available, limits or not: its stats come from their files."""


def v2_controllers(limits: Limits) -> set[str]:
    """The v2 controllers that must be enabled in the parent's subtree_control for these limits."""
    needed = set()
    if limits.memory_bytes:
        needed.add("memory")
    if limits.nano_cpus:
        needed.add("cpu")
    if limits.pids:
        needed.add("pids")
    if limits.cpu_shares:
        needed.add("cpu")
    if limits.blkio_weight:
        needed.add("io")
    return needed


def v2_writes(limits: Limits) -> list[tuple[str, str]]:
    """(file, value) for a v2 cgroup, as runc writes docker's settings; memory.high stays ``max`` (docker
    sets no soft limit). memory.oom.group=1 so an OOM kills the whole container."""
    writes: list[tuple[str, str]] = []
    if limits.memory_bytes:
        writes.append(("memory.max", str(limits.memory_bytes)))
        swap = memory_swap_bytes(limits.memory_bytes) - limits.memory_bytes
        writes.append(("memory.swap.max", str(swap)))
        writes.append(("memory.oom.group", "1"))
    if limits.nano_cpus:
        writes.append(("cpu.max", f"{cfs_quota_us(limits.nano_cpus)} {CFS_PERIOD_US}"))
    if limits.cpu_shares:
        writes.append(("cpu.weight", str(cpu_weight(limits.cpu_shares))))
    if limits.pids:
        writes.append(("pids.max", str(limits.pids)))
    if limits.blkio_weight:
        writes.append(("io.weight", str(io_weight(limits.blkio_weight))))  # see V2_BFQ_WEIGHT
    return writes
