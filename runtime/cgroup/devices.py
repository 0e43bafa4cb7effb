"""The device allow-list on cgroup v2: a ``BPF_CGROUP_DEVICE`` program, as runc and crun attach.

cgroup v2 has no ``devices.allow`` file: the kernel asks an eBPF program attached to the cgroup
whether an access (mknod, read, write) to a (block or char, major, minor) device is allowed. Without
one, a container root with CAP_MKNOD on a v2-only host could make and open the host's disks
(issue 11, High 4). ``program`` compiles the same rules as the v1 list (``limits.DEVICE_RULES``)
into eBPF bytecode: pure bytes out, unit tested; ``DeviceFilter`` loads it once per launcher
(``bpf(BPF_PROG_LOAD)``) and attaches it to each container's cgroup (``BPF_PROG_ATTACH`` with
``BPF_F_ALLOW_MULTI``, so a program systemd put above still applies too). The attachment keeps the
program alive; it goes with the cgroup.

The program reads ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}``, where
``access_type`` is ``(access << 16) | type``, walks the rules in order and returns 1 (allow) at
the first that matches, 0 (deny: EPERM) when none does.
"""

from __future__ import annotations

import ctypes
import os
import struct

from shoal.runtime.cgroup.limits import DEVICE_RULES

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
_ACCESS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
_NR_BPF = {"x86_64": 321, "aarch64": 280}

# eBPF opcodes (linux/bpf_common.h, linux/bpf.h).
_LDX_W = 0x61  # dst = *(u32 *)(src + off)
_AND64_K = 0x57
_RSH64_K = 0x77
_MOV64_X = 0xBF
_MOV64_K = 0xB7
_JNE_K = 0x55  # if dst != imm: pc += off
_EXIT = 0x95


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def parse_rule(rule: str) -> tuple[int, int | None, int | None, int]:
    """``"c 1:3 rwm"`` -> (type, major or None for ``*``, minor or None, access mask)."""
    kind, numbers, access = rule.split()
    major, minor = numbers.split(":")
    mask = 0
    for ch in access:
        mask |= _ACCESS[ch]
    return (
        {"c": DEV_CHAR, "b": DEV_BLOCK}[kind],
        None if major == "*" else int(major),
        None if minor == "*" else int(minor),
        mask,
    )


def _rule_block(kind: int, major: int | None, minor: int | None, access: int) -> list[bytes]:
    """Instructions that return 1 when the request (r2 type, r3 access, r4 major, r5 minor) matches."""
    checks: list[tuple[int, int, int]] = [(_JNE_K, 2, kind)]  # (opcode, register, value)
    body: list[bytes] = []
    if access != ACC_MKNOD | ACC_READ | ACC_WRITE:
        body += [_insn(_MOV64_X, dst=1, src=3), _insn(_AND64_K, dst=1, imm=~access)]
        checks.append((_JNE_K, 1, 0))  # an access bit outside the rule's
    if major is not None:
        checks.append((_JNE_K, 4, major))
    if minor is not None:
        checks.append((_JNE_K, 5, minor))
    # Layout: type check, [access computation, access check], major, minor, mov r0 1, exit.
    n_jumps = len(checks)
    total = n_jumps + len(body) + 2
    out: list[bytes] = []
    pos = 0
    for i, (code, reg, value) in enumerate(checks):
        if i == 1 and body:
            out += body
            pos += len(body)
        pos += 1
        out.append(_insn(code, dst=reg, off=total - pos, imm=value))
    return out + [_insn(_MOV64_K, dst=0, imm=1), _insn(_EXIT)]


def program(rules: tuple[str, ...] = DEVICE_RULES) -> bytes:
    """The eBPF bytecode of an allow-list: the rules in order, then deny."""
    prologue = [
        _insn(_LDX_W, dst=2, src=1, off=0),
        _insn(_AND64_K, dst=2, imm=0xFFFF),  # device type
        _insn(_LDX_W, dst=3, src=1, off=0),
        _insn(_RSH64_K, dst=3, imm=16),  # access
        _insn(_LDX_W, dst=4, src=1, off=4),  # major
        _insn(_LDX_W, dst=5, src=1, off=8),  # minor
    ]
    blocks = [b for rule in rules for b in _rule_block(*parse_rule(rule))]
    return b"".join(prologue + blocks + [_insn(_MOV64_K, dst=0, imm=0), _insn(_EXIT)])


_libc = ctypes.CDLL(None, use_errno=True)


def _bpf(cmd: int, attr: bytes) -> int:
    nr = _NR_BPF.get(os.uname().machine)
    if nr is None:
        raise OSError(38, f"bpf: no syscall number known for {os.uname().machine}")
    buf = ctypes.create_string_buffer(attr, 128)
    res = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), buf, ctypes.c_uint(128))
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return int(res)


def load(code: bytes) -> int:
    """Load a cgroup device program; its fd."""
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    attr = struct.pack(
        "<IIQQIIQII16sII",
        BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8, ctypes.addressof(insns), ctypes.addressof(license_),
        1, len(log), ctypes.addressof(log), 0, 0, b"shoal_devices", 0, BPF_CGROUP_DEVICE,
    )  # fmt: skip
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as exc:
        detail = log.value.decode(errors="replace").strip().splitlines()[-3:]
        raise OSError(exc.errno, f"{exc.strerror}; verifier: {' | '.join(detail)}") from None


def attach(prog_fd: int, cgroup_dir: str) -> None:
    """Attach the program to a cgroup v2 directory (``BPF_F_ALLOW_MULTI``)."""
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _bpf(BPF_PROG_ATTACH, struct.pack("<IIII", fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI))
    finally:
        os.close(fd)


def attached(cgroup_dir: str) -> int:
    """How many device programs are attached to a cgroup v2 directory itself (``BPF_PROG_QUERY``):
    what `shoal`'s tests and a curious admin check instead of v1's devices.list."""
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        attr = ctypes.create_string_buffer(struct.pack("<IIIIQI", fd, BPF_CGROUP_DEVICE, 0, 0, 0, 0), 128)
        nr = _NR_BPF.get(os.uname().machine)
        if nr is None or _libc.syscall(ctypes.c_long(nr), ctypes.c_int(BPF_PROG_QUERY), attr, ctypes.c_uint(128)) < 0:
            err = ctypes.get_errno() or 38
            raise OSError(err, f"bpf(BPF_PROG_QUERY) on {cgroup_dir}: {os.strerror(err)}")
        return int(struct.unpack_from("<I", attr.raw, 24)[0])  # query.prog_cnt
    finally:
        os.close(fd)


class DeviceFilter:
    """Docker's device allow-list, loaded once (lazily) and attached to each container's cgroup."""

    def __init__(self, rules: tuple[str, ...] = DEVICE_RULES) -> None:
        self.rules = rules
        self.fd = -1

    def attach(self, cgroup_dir: str) -> None:
        if self.fd < 0:
            self.fd = load(program(self.rules))
            os.set_inheritable(self.fd, False)
        attach(self.fd, cgroup_dir)
