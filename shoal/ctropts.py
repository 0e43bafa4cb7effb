"""The small container options docker users type: ``--ulimit``, ``--sysctl``, ``--stop-signal``, ``--dns*``.

One parser and one rule each, shared by ``shoal run`` (through the runtime), ``svc create/update``,
the manager's spec validation and the stack loader. Pure functions; errors are ValueError with the
one line to show.

Sysctls are limited to those the kernel keeps per namespace, so a container can only change its own
network stack and IPC limits, never the node's (``kernel.core_pattern`` would run a program of the
container's choosing as root on the host): ``net.*``, ``kernel.shm*``, ``kernel.msg*``, ``kernel.sem``
and ``fs.mqueue.*``, as docker allows. A key is dot-separated words, so it cannot climb out of
/proc/sys (``net...``, ``net/../kernel``).
"""

from __future__ import annotations

import re
import signal

ULIMITS = (
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
    "rtprio", "rttime", "sigpending", "stack",
)
UNLIMITED = -1
SYSCTL_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")
IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                         "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})
DNS_OPTION_RE = re.compile(r"^[A-Za-z0-9_-]+(:[0-9]+)?$")
DNS_SEARCH_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$")


def parse_ulimit(text: str) -> tuple[str, int, int]:
    """docker's ``NAME=SOFT[:HARD]`` (``-1``: unlimited) -> (name, soft, hard)."""
    name, sep, limits = text.partition("=")
    name = name.strip()
    if not sep or not limits.strip():
        raise ValueError(f"invalid ulimit {text!r}: expected NAME=SOFT[:HARD], e.g. nofile=1024:2048")
    soft_text, _, hard_text = limits.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if hard_text else soft
    except ValueError:
        raise ValueError(f"invalid ulimit {text!r}: limits must be whole numbers (-1 for unlimited)") from None
    check_ulimit(name, soft, hard)
    return name, soft, hard


def check_ulimit(name: str, soft: int, hard: int) -> None:
    if name not in ULIMITS:
        raise ValueError(f"invalid ulimit name {name!r}: use one of {', '.join(ULIMITS)}")
    for value in (soft, hard):
        if value < UNLIMITED:
            raise ValueError(f"invalid ulimit {name}: {value} (use -1 for unlimited)")
    if hard != UNLIMITED and (soft == UNLIMITED or soft > hard):
        raise ValueError(f"invalid ulimit {name}: soft limit {soft} is above the hard limit {hard}")


def check_ulimits(ulimits: list[tuple[str, int, int]]) -> None:
    names = [u[0] for u in ulimits]
    for u in ulimits:
        check_ulimit(*u)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"ulimit {dupes[0]} is given twice")


def namespaced(key: str) -> bool:
    """Whether sysctl ``key`` belongs to the container's own namespaces (see the module docstring)."""
    return key.startswith(("net.", "fs.mqueue.")) or key in IPC_SYSCTLS


def check_sysctl(key: str, value: str) -> None:
    if not SYSCTL_KEY_RE.fullmatch(key):
        raise ValueError(f"invalid sysctl {key!r}: expected dot-separated words such as net.core.somaxconn")
    if not namespaced(key):
        raise ValueError(f"sysctl {key!r} is not allowed: only namespaced ones (net.*, kernel.shm*, kernel.msg*, "
                         "kernel.sem, fs.mqueue.*) can be set in a container")
    if not value or any(c in value for c in "\n\x00"):
        raise ValueError(f"invalid value {value!r} for sysctl {key}")


def parse_sysctl(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> (key, value), checked."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"invalid sysctl {text!r}: expected KEY=VALUE")
    check_sysctl(key.strip(), value.strip())
    return key.strip(), value.strip()


def signal_number(text: str) -> int:
    """``SIGUSR1``, ``usr1`` or ``10`` -> 10; ValueError naming an unknown signal."""
    raw = text.strip()
    if raw.isdigit():
        number = int(raw)
        if not 1 <= number < signal.NSIG:
            raise ValueError(f"invalid signal: {text}")
        return number
    name = raw.upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    sig = getattr(signal, name, None)
    if not isinstance(sig, signal.Signals) or name.startswith("SIG_"):
        raise ValueError(f"invalid signal: {text}")
    return int(sig)


def check_nameserver(text: str) -> None:
    import ipaddress  # loaded by the one check that needs it (a CLI's start-up pays for every import)

    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"invalid nameserver {text!r}: expected an IP address") from None


def check_dns_search(text: str) -> None:
    if text != "." and not DNS_SEARCH_RE.fullmatch(text):
        raise ValueError(f"invalid DNS search domain {text!r}")


def check_dns_option(text: str) -> None:
    if not DNS_OPTION_RE.fullmatch(text):
        raise ValueError(f"invalid DNS option {text!r}: expected NAME or NAME:NUMBER, e.g. ndots:2")
