"""Where the guest's CPU goes: BSD process accounting inside the cgroup-v2 VM (V2VM_ACCT=1 make test-v2 ...).

Under software emulation the suite is CPU-bound, and a per-test duration does not say which process
spent it (the pytest process, a manager, etcd, the CLI started per command, a launcher). The kernel
writes one record per exited process; ``report`` sums them by command name.

usage: acct.py on FILE | acct.py off | acct.py report FILE
"""

from __future__ import annotations

import collections
import ctypes
import os
import struct
import sys

RECORD = struct.Struct("=BBH6If8H16s")  # struct acct_v3 (linux/acct.h), 64 bytes
AHZ = 100  # the units of ac_utime/ac_stime/ac_etime


def comp_t(v: int) -> int:
    """13-bit mantissa, 3-bit base-8 exponent."""
    return (v & 0x1FFF) << (3 * (v >> 13))


def switch(path: str | None) -> None:
    if path is not None:
        open(path, "wb").close()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.acct(path.encode() if path else None) != 0:
        err = ctypes.get_errno()
        raise SystemExit(f"acct({path}): {os.strerror(err)}")


def report(path: str, top: int = 25) -> str:
    with open(path, "rb") as f:
        data = f.read()
    cpu: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    elapsed: collections.Counter[str] = collections.Counter()
    for off in range(0, len(data) - RECORD.size + 1, RECORD.size):
        rec = RECORD.unpack_from(data, off)
        if rec[1] != 3:
            continue
        comm = rec[-1].split(b"\0", 1)[0].decode(errors="replace")
        cpu[comm] += (comp_t(rec[10]) + comp_t(rec[11])) / AHZ
        elapsed[comm] += rec[9] / AHZ
        count[comm] += 1
    total = sum(cpu.values())
    lines = [f"{len(data) // RECORD.size} processes exited, {total:.1f} s of CPU in all; by command:"]
    lines += [f"  {s:8.1f} s cpu {count[c]:5d} procs {elapsed[c]:9.1f} s alive  {c}" for c, s in cpu.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    cmd = sys.argv[1:2]
    if cmd == ["on"]:
        switch(sys.argv[2])
    elif cmd == ["off"]:
        switch(None)
    elif cmd == ["report"]:
        print(report(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
