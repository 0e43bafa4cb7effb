"""Thin ctypes bindings to the Linux calls Python 3.11 lacks.

The launcher and the container child need ``unshare``, ``setns``, ``mount``, ``umount2``,
``pivot_root``, ``mount_setattr``, ``close_range``, ``prctl`` and ``capset``; Python 3.11's ``os``
has none of them (``os.unshare``/``os.setns`` arrived in 3.12). Every wrapper raises ``OSError``
with the real errno and the path involved, so errors reach the user as text such as
``mount /tmp: Operation not permitted``.
"""

from __future__ import annotations

import ctypes
import os

# dlopen(NULL): the interpreter's own symbols, libc's among them. (ctypes.util.find_library would
# import subprocess, tempfile and random into the launcher, whose size every fork() pays for.)
_libc = ctypes.CDLL(None, use_errno=True)

# Namespace flags (linux/sched.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags (linux/mount.h).
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# mount_setattr(2).
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NODEV = 0x4
AT_FDCWD = -100

# prctl(2) options.
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

CLOSE_RANGE_CLOEXEC = 1 << 2

# openat2(2) resolve flags (linux/openat2.h).
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# Raw syscall numbers for calls glibc 2.36 has no wrapper for (or wraps awkwardly).
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "capset": 126, "close_range": 436, "openat2": 437, "mount_setattr": 442},
    "aarch64": {"pivot_root": 41, "capset": 91, "close_range": 436, "openat2": 437, "mount_setattr": 442},
}
_NR = _SYSCALLS.get(os.uname().machine, {})


def _check(result: int, what: str, path: str | None = None) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return result


def _syscall(name: str, *args: object) -> int:
    nr = _NR.get(name)
    if nr is None:
        raise OSError(38, f"{name}: no syscall number known for {os.uname().machine}")
    return _check(_libc.syscall(ctypes.c_long(nr), *args), name)


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (``unshare(2)``)."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    """Join the namespace ``fd`` refers to (``setns(2)``)."""
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    """``mount(2)``; raises OSError naming the target."""
    res = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
    _check(res, f"mount {target}", target)


def umount2(target: str, flags: int = 0) -> None:
    """``umount2(2)``."""
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount {target}", target)


def pivot_root(new_root: str, put_old: str) -> None:
    """``pivot_root(2)``; ``pivot_root(".", ".")`` stacks the old root under the new one."""
    _syscall("pivot_root", _b(new_root), _b(put_old))


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount_setattr(path: str, attr_set: int, recursive: bool = True) -> None:
    """Set mount attributes (e.g. read-only) on ``path`` and, if recursive, every mount below it."""
    attr = _MountAttr(attr_set, 0, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    _syscall(
        "mount_setattr",
        ctypes.c_int(AT_FDCWD),
        _b(path),
        ctypes.c_uint(flags),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """``openat2(2)`` (Linux 5.6): open ``path`` relative to ``dir_fd`` under the ``RESOLVE_*`` rules.

    Raises OSError with the kernel's errno (EXDEV: the path would leave ``dir_fd``; ENOSYS: too old).
    """
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    nr = _NR.get("openat2")
    if nr is None:
        raise OSError(38, f"openat2: no syscall number known for {os.uname().machine}", path)
    res = _libc.syscall(
        ctypes.c_long(nr), ctypes.c_int(dir_fd), _b(path), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))
    )
    if res == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(res)


def close_range_cloexec(first: int) -> None:
    """Mark every fd >= ``first`` close-on-exec in one call (``close_range(2)``, Linux 5.11)."""
    _syscall(
        "close_range", ctypes.c_uint(first), ctypes.c_uint(0xFFFFFFFF), ctypes.c_uint(CLOSE_RANGE_CLOEXEC)
    )


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """``prctl(2)`` with integer arguments."""
    res = _libc.prctl(
        ctypes.c_int(option),
        ctypes.c_ulong(arg2),
        ctypes.c_ulong(arg3),
        ctypes.c_ulong(arg4),
        ctypes.c_ulong(arg5),
    )
    return _check(res, f"prctl({option})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's capability sets (64-bit masks, ``capset(2)`` version 3)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _syscall("capset", ctypes.byref(header), data)
