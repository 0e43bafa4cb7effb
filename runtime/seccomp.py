"""Seccomp for containers: a Docker-format profile compiled once with libseccomp, applied last before exec.

A container's ``seccomp`` setting is "" (shoal's default profile, seccomp_default.py), ``unconfined``,
or a profile document in Docker's JSON format (``--security-opt seccomp=FILE``: the client reads FILE
and ``check`` validates it; seccompcheck.py, re-exported here). The launcher compiles the profile for
the container's capabilities (Docker's ``includes``/``excludes.caps``) into a classic BPF program
through Debian's libseccomp2, loaded with ctypes only there, and caches it: the same profile and
capability set are compiled once per launcher. The forked child then needs one ``prctl(PR_SET_SECCOMP)`` and no library: ``apply``
installs the bytes as the last step before execve (after no_new_privs, which it requires), in PID 1
(before a ``--init`` forks, so both are filtered) and in every exec'd process.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
from typing import Any

from shoal.runtime import caps as capnames
from shoal.runtime import seccomp_default
from shoal.runtime.errors import ConfigError, ContainerError
from shoal.runtime.seccompcheck import ACTIONS, OPS, UNCONFINED, check

__all__ = ["ACTIONS", "OPS", "UNCONFINED", "apply", "check", "compile_profile", "program_for"]

_FLTATR_CTL_OPTIMIZE = 8
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]


def _lib() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        raise ContainerError(
            "libseccomp2 is not installed (apt-get install libseccomp2), or run with --security-opt seccomp=unconfined"
        ) from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    return lib


def _action(rule: dict[str, Any], default_errno: int) -> int:
    value = ACTIONS[rule["action"]]
    if rule["action"] in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        value |= int(rule.get("errnoRet", default_errno if rule["action"] == "SCMP_ACT_ERRNO" else 0)) & 0xFFFF
    return value


def _applies(rule: dict[str, Any], held: set[str]) -> bool:
    """Docker's conditions: every ``includes.caps`` held, no ``excludes.caps`` held."""
    includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
    return set(includes.get("caps") or []) <= held and not set(excludes.get("caps") or []) & held


def compile_profile(doc: dict[str, Any], caps: int) -> bytes:
    """The BPF program (``struct sock_filter`` array) of a profile for a container holding ``caps``."""
    lib = _lib()
    default_errno = int(doc.get("defaultErrnoRet", errno.EPERM))
    default = _action({"action": doc["defaultAction"], "errnoRet": default_errno}, default_errno)
    held = {name for name, bit in capnames.CAP_NUMBERS.items() if caps & (1 << bit)}
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise ContainerError("seccomp_init failed")
    try:
        lib.seccomp_attr_set(ctx, _FLTATR_CTL_OPTIMIZE, 2)  # a binary tree: fewer steps per syscall
        for arch in doc.get("architectures") or []:
            token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if token and lib.seccomp_arch_add(ctx, token) not in (0, -errno.EEXIST):
                raise ConfigError(f"seccomp profile: architecture {arch} cannot be added")
        for rule in doc.get("syscalls") or []:
            if _applies(rule, held) and _action(rule, default_errno) != default:
                _add_rule(lib, ctx, rule, _action(rule, default_errno))
        fd = os.memfd_create("seccomp", os.MFD_CLOEXEC)
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise ContainerError(f"seccomp_export_bpf: {os.strerror(-rc)}")
            return os.pread(fd, os.fstat(fd).st_size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def _add_rule(lib: ctypes.CDLL, ctx: int, rule: dict[str, Any], action: int) -> None:
    args = rule.get("args") or []
    array = (_ArgCmp * max(1, len(args)))()
    for i, arg in enumerate(args):
        array[i] = _ArgCmp(int(arg["index"]), OPS[arg["op"]], int(arg.get("value", 0)), int(arg.get("valueTwo", 0)))
    for name in rule["names"]:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr == -1:  # unknown to this libseccomp: Docker skips such names too
            continue
        rc = lib.seccomp_rule_add_array(ctx, action, nr, len(args), array)
        if rc < 0:
            raise ConfigError(f"seccomp profile: rule for {name} refused by libseccomp: {os.strerror(-rc)}")


_cache: dict[tuple[str, int], bytes] = {}


def program_for(setting: str, caps: int) -> bytes:
    """The compiled filter for a container's setting and capabilities (b"" when unconfined), cached."""
    if setting == UNCONFINED:
        return b""
    key = (setting, caps)
    if key not in _cache:
        doc = seccomp_default.profile() if not setting else json.loads(setting)
        _cache[key] = compile_profile(doc, caps)
    return _cache[key]


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up once, before any fork


def apply(program: bytes) -> None:
    """Install ``program`` on the calling thread (needs no_new_privs or CAP_SYS_ADMIN); b"" does nothing."""
    if not program:
        return
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _Fprog(len(program) // 8, ctypes.addressof(buf))
    res = _prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), ctypes.c_ulong(0), ctypes.c_ulong(0))
    if res != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: {os.strerror(err)}")
