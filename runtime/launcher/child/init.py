"""``--init``: a tiny init as the container's PID 1 that forwards signals and reaps zombies.

A process that is PID 1 ignores signals it has no handler for (SIGTERM included), and nobody reaps
its orphans. With ``init`` set, the container's PID 1 forks the command and stays behind as this
loop (like tini): every signal it gets is passed on to the command, every exited child is reaped,
and when the command exits, PID 1 exits with the same status (128+N for signal N). It runs after
pivot_root with the container's capabilities, using only builtins already imported.
"""

from __future__ import annotations

import os
import signal
from typing import NoReturn

from shoal.runtime import linux

_NEVER = {signal.SIGKILL, signal.SIGSTOP}


def run(path: str, args: list[str], env: dict[str, str], exec_w: int) -> None:
    """Fork the command; in the child return (the caller execs), in PID 1 never return."""
    sigs = set(signal.valid_signals()) - _NEVER
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return
    os.close(exec_w)  # the command's copy (close-on-exec) is what the launcher waits on
    _loop(pid, sigs)


def _loop(main: int, sigs: set[int]) -> NoReturn:
    try:
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
    except OSError:
        pass
    status: int | None = None
    while True:
        info = signal.sigwaitinfo(sigs)
        if info.si_signo != signal.SIGCHLD:
            try:
                os.kill(main, info.si_signo)
            except ProcessLookupError:
                pass
            continue
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == main:
                status = st
        if status is not None:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)
