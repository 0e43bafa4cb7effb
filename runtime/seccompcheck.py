"""The client's half of seccomp: whether a container's ``seccomp`` setting can be sent to the launcher.

"" (shoal's default profile), ``unconfined``, or a profile document in Docker's JSON format; ``check``
names the first thing wrong with a document. Compiling and applying the filter are the launcher's
(seccomp.py, which loads libseccomp with ctypes); this module is apart so that a client validating a
config (``shoal run``, the worker) imports neither ctypes nor the default profile.
"""

from __future__ import annotations

import json

from shoal.runtime.errors import ConfigError

UNCONFINED = "unconfined"
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000,
}  # fmt: skip
OPS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}  # fmt: skip


def check(setting: str) -> str:
    """Validate a container's seccomp setting at the client; ConfigError naming what is wrong."""
    if setting in ("", UNCONFINED):
        return setting
    try:
        doc = json.loads(setting)
    except ValueError as exc:
        raise ConfigError(f"seccomp profile: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("defaultAction") not in ACTIONS:
        raise ConfigError(f"seccomp profile: defaultAction must be one of {', '.join(ACTIONS)}")
    for i, rule in enumerate(doc.get("syscalls") or []):
        names = rule.get("names") if isinstance(rule, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"seccomp profile: syscalls[{i}].names must be a list of names")
        if rule.get("action") not in ACTIONS:
            raise ConfigError(f"seccomp profile: syscalls[{i}].action {rule.get('action')!r} is unknown")
        for arg in rule.get("args") or []:
            if not isinstance(arg, dict) or arg.get("op") not in OPS or arg.get("index") not in range(6):
                raise ConfigError(f"seccomp profile: syscalls[{i}].args: bad argument rule {arg!r}")
    return setting
