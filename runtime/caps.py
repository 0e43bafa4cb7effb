"""Capability names and Docker's default set: ``cap_add``/``cap_drop`` turned into one 64-bit mask.

Pure (names in, mask out) so the client validates and computes a container's capabilities once,
before anything is sent to the launcher. Dropping to that mask in a forked process is
``launcher/child/process.py``'s job.
"""

from __future__ import annotations

from shoal import capnames
from shoal.runtime.errors import ConfigError

CAP_NUMBERS = capnames.CAP_NUMBERS

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
    try:
        return capnames.normalize(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def adjust(add: list[str], drop: list[str]) -> int:
    """Docker's default set with ``--cap-add``/``--cap-drop`` applied (``ALL`` as docker reads it)."""
    adds = {_normalize(n) for n in add}
    drops = {_normalize(n) for n in drop}
    keep = set(CAP_NUMBERS) if "ALL" in adds else set(DOCKER_DEFAULT_CAPS)
    keep |= adds - {"ALL"}
    keep = set() if "ALL" in drops else keep - drops
    keep |= adds - {"ALL"} if "ALL" in drops else set()
    return mask(sorted(keep))
