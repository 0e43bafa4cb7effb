"""docker's ``--security-opt`` for ``shoal run`` and ``shoal service create``: the seccomp setting.

``seccomp=unconfined`` turns the filter off, ``seccomp=FILE`` reads a profile in Docker's JSON format
(read here, on the client: the file need not exist on the nodes); ``no-new-privileges`` is accepted
because shoal always sets it. Anything else is refused by name. The profile itself is checked by
the runtime's ``seccompcheck.check`` before anything is sent.
"""

from __future__ import annotations

from shoal.runtime import seccompcheck as seccomp
from shoal.runtime.errors import ConfigError


def parse(values: tuple[str, ...] | list[str]) -> str:
    """The runtime's seccomp setting ("" for the default profile); ValueError naming the bad option."""
    setting = ""
    for value in values:
        key, sep, arg = value.partition("=") if "=" in value else value.partition(":")
        if key == "no-new-privileges" and arg in ("", "true"):
            continue
        if key != "seccomp" or not sep or not arg:
            raise ValueError(f"unsupported --security-opt {value!r} (shoal knows seccomp=unconfined|FILE)")
        if arg == seccomp.UNCONFINED:
            setting = arg
            continue
        try:
            with open(arg, encoding="utf-8") as f:
                setting = f.read()
        except OSError as exc:
            raise ValueError(f"--security-opt seccomp={arg}: {exc.strerror}") from None
    try:
        return seccomp.check(setting)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
