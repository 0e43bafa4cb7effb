"""The cgroup v2 device program, run by a small eBPF interpreter in the test against the v1 rules.

``devices.program`` emits bytecode by hand; the kernel's verifier and the real attach are exercised
in tests/security/test_device_filter.py. Here every (type, major, minor, access) of interest is fed
to the bytecode and the answer compared with the v1 allow-list read as the kernel reads it.
"""

from __future__ import annotations

import itertools
import struct

import pytest

from shoal.runtime.cgroup import devices
from shoal.runtime.cgroup.limits import DEVICE_RULES


def run(code: bytes, kind: int, major: int, minor: int, access: int) -> int:
    """Interpret the subset of eBPF the program uses; ctx = (access << 16 | type, major, minor)."""
    ctx = struct.pack("<III", (access << 16) | kind, major, minor)
    regs = [0] * 11
    insns = [struct.unpack("<BBhi", code[i : i + 8]) for i in range(0, len(code), 8)]
    pc = 0
    for _ in range(10_000):
        op, regbyte, off, imm = insns[pc]
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        mask = (1 << 64) - 1
        if op == 0x61:
            assert src == 1, "the program reads only the context (r1)"
            regs[dst] = struct.unpack_from("<I", ctx, regs[src] + off)[0]
        elif op == 0x57:
            regs[dst] &= imm & mask
        elif op == 0x77:
            regs[dst] >>= imm
        elif op == 0xBF:
            regs[dst] = regs[src]
        elif op == 0xB7:
            regs[dst] = imm & mask
        elif op == 0x55:
            if regs[dst] != imm & mask:
                pc += off
        elif op == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
    raise AssertionError("no exit")


def v1_allows(kind: int, major: int, minor: int, access: int) -> bool:
    for rule in DEVICE_RULES:
        rkind, rmajor, rminor, raccess = devices.parse_rule(rule)
        if rkind == kind and rmajor in (None, major) and rminor in (None, minor) and access & ~raccess == 0:
            return True
    return False


def test_the_program_answers_as_the_v1_list_for_every_interesting_device() -> None:
    code = devices.program()
    assert len(code) % 8 == 0 and len(code) // 8 < 4096
    majors = [0, 1, 5, 8, 10, 136, 253, 259]
    minors = [0, 1, 2, 3, 5, 7, 8, 9, 200, 4242]
    accesses = range(1, 8)
    for kind, major, minor, access in itertools.product((1, 2), majors, minors, accesses):
        want = v1_allows(kind, major, minor, access)
        assert run(code, kind, major, minor, access) == int(want), (kind, major, minor, access)


@pytest.mark.parametrize(
    ("kind", "major", "minor", "access", "allowed"),
    [
        (devices.DEV_BLOCK, 8, 0, devices.ACC_READ, False),  # /dev/sda
        (devices.DEV_BLOCK, 8, 0, devices.ACC_MKNOD, True),  # mknod stays (CAP_MKNOD is kept)
        (devices.DEV_CHAR, 1, 1, devices.ACC_READ | devices.ACC_WRITE, False),  # /dev/mem
        (devices.DEV_CHAR, 1, 3, devices.ACC_READ | devices.ACC_WRITE, True),  # /dev/null
        (devices.DEV_CHAR, 136, 4242, devices.ACC_WRITE, True),  # a pty
        (devices.DEV_CHAR, 10, 200, devices.ACC_READ, True),  # tun
        (devices.DEV_CHAR, 10, 229, devices.ACC_READ, False),  # fuse
    ],
)
def test_the_cases_that_matter(kind: int, major: int, minor: int, access: int, allowed: bool) -> None:
    assert run(devices.program(), kind, major, minor, access) == int(allowed)


def test_rules_parse_as_the_v1_file_writes_them() -> None:
    assert devices.parse_rule("c 1:3 rwm") == (devices.DEV_CHAR, 1, 3, 7)
    assert devices.parse_rule("b *:* m") == (devices.DEV_BLOCK, None, None, 1)
    assert devices.parse_rule("c 136:* rw") == (devices.DEV_CHAR, 136, None, 6)
