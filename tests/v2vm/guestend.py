"""The cgroup-v2 VM guest's last steps after pytest (tests/v2vm/guest.sh), in one Python process.

Under emulation every external command is a slow fork+exec: the shell loop over /proc this replaces
(a ``readlink``, ``tr`` and ``cut`` per process) took about 30 s at the end of every run.

- The launchers' own logs of failed tests, which live in the guest's tmpfs only, go to
  ``OUT/launcher-logs.txt`` (the host prints where to find them).
- Every process still running that is not the guest's own (PID 1, kernel threads, this process and the
  shells above it) is something the tests left behind: each is printed as ``left running: PID CMD`` and
  killed, so that nothing writes to the checkout image while it is unmounted.

usage: guestend.py OUT_DIR
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

TMP = Path("/tmp/pytest-of-root")


def process_table(proc: Path = Path("/proc")) -> dict[int, tuple[int, str]]:
    """pid -> (ppid, command line) of every process; a kernel thread's command line is empty."""
    table = {}
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # exited meanwhile
            continue
        table[int(d.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmd)
    return table


def leftovers(table: dict[int, tuple[int, str]], me: int) -> list[int]:
    """The processes that are not the guest's own: PID 1, kernel threads (kthreadd, PID 2, and its
    children; no command line) and ``me`` with its ancestors (the shells running guest.sh) are."""
    own = {1, 2}
    pid = me
    while pid in table and pid not in own:
        own.add(pid)
        pid = table[pid][0]
    return sorted(p for p, (ppid, cmd) in table.items() if p not in own and ppid != 2 and cmd)


def launcher_logs(tmp: Path = TMP, most: int = 50) -> str:
    """The tail of each launcher log of the run that has an error or a traceback in it."""
    out = []
    for path in sorted(tmp.rglob("launcher.log"))[:most] if tmp.is_dir() else []:
        text = path.read_text(errors="replace")
        if "error" in text.lower() or "traceback" in text.lower():
            out.append(f"== {path}\n" + "\n".join(text.splitlines()[-30:]) + "\n")
    return "".join(out)


def main(out_dir: str) -> int:
    Path(out_dir, "launcher-logs.txt").write_text(launcher_logs())
    table = process_table()
    left = leftovers(table, os.getpid())
    for pid in left:
        print(f"v2vm-guest: left running: {pid} {table[pid][1][:200]}", flush=True)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(running(p) for p in left):
        time.sleep(0.1)
    return 0


def running(pid: int) -> bool:
    """Not gone and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
