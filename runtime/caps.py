"""Capability names and Docker's default set: ``cap_add``/``cap_drop`` turned into one 64-bit mask.

Pure (names in, mask out) so the client validates and computes a container's capabilities once,
before anything is sent to the launcher. Dropping to that mask in a forked process is
``launcher/child/process.py``'s job.
"""

from __future__ import annotations

from shoal.runtime.errors import ConfigError

CAP_NUMBERS = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
}

DOCKER_DEFAULT_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)


def mask(names: tuple[str, ...] | list[str]) -> int:
    """The 64-bit capability mask of the named capabilities."""
    value = 0
    for name in names:
        value |= 1 << CAP_NUMBERS[name]
    return value


DOCKER_DEFAULT_MASK = mask(DOCKER_DEFAULT_CAPS)  # 0xa80425fb


def _normalize(name: str) -> str:
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full not in CAP_NUMBERS:
        raise ConfigError(f"unknown capability: {name!r}")
    return full


def adjust(add: list[str], drop: list[str]) -> int:
    """Docker's default set with ``--cap-add``/``--cap-drop`` applied (``ALL`` as docker reads it)."""
    adds = {_normalize(n) for n in add}
    drops = {_normalize(n) for n in drop}
    keep = set(CAP_NUMBERS) if "ALL" in adds else set(DOCKER_DEFAULT_CAPS)
    keep |= adds - {"ALL"}
    keep = set() if "ALL" in drops else keep - drops
    keep |= adds - {"ALL"} if "ALL" in drops else set()
    return mask(sorted(keep))
