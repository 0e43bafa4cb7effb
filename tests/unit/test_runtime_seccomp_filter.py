"""What a compiled seccomp filter decides, syscall by syscall: the profile compiled by libseccomp, then run
in a classic-BPF interpreter (tests/fixtures/bpf.py) over the syscall data the kernel would pass it.

Docker's rules a container relies on: an allow-list with EPERM for the rest, calls that need a
capability allowed only with it (``--cap-add`` widens the filter), argument rules (clone without
namespace flags, personality, socket), a custom ``errnoRet``, and the profile checks the client runs
before anything is sent. The numbers are x86_64's.
"""

from __future__ import annotations

import errno
import json
import os

import pytest

from shoal.runtime import caps, seccomp, seccomp_default
from shoal.runtime.errors import ConfigError
from tests.fixtures.bpf import ACTION_MASK, DATA_MASK, decide, instructions

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="the syscall numbers are x86_64's")

READ, WRITE, GETPID, CLONE, UNSHARE, KEYCTL, PTRACE, MOUNT = 0, 1, 39, 56, 272, 250, 101, 165
PERSONALITY, SOCKET, CLONE3, USERFAULTFD, REBOOT, CHROOT, BPF, SETNS = 135, 41, 435, 323, 169, 161, 321, 308
ALLOW = seccomp.ACTIONS["SCMP_ACT_ALLOW"]
ERRNO = seccomp.ACTIONS["SCMP_ACT_ERRNO"]
CLONE_NEWUSER, CLONE_NEWNET, CLONE_VM, SIGCHLD = 0x10000000, 0x40000000, 0x100, 17


def _needs_libseccomp() -> None:
    try:
        seccomp._lib()
    except Exception as exc:  # ContainerError: the library is missing on this machine
        pytest.skip(reason=f"libseccomp2 not installed: {exc}")


@pytest.fixture(scope="module")
def default_filter() -> bytes:
    _needs_libseccomp()
    return seccomp.compile_profile(seccomp_default.profile(), caps.DOCKER_DEFAULT_MASK)


@pytest.fixture(scope="module")
def admin_filter() -> bytes:
    _needs_libseccomp()
    return seccomp.compile_profile(seccomp_default.profile(), caps.DOCKER_DEFAULT_MASK | caps.mask(["CAP_SYS_ADMIN"]))


def eperm(action: int) -> bool:
    return action & ACTION_MASK == ERRNO and action & DATA_MASK == errno.EPERM


def test_the_program_is_whole_instructions(default_filter):
    assert default_filter and len(default_filter) % 8 == 0
    assert len(instructions(default_filter)) < 4096, "the kernel refuses longer programs"


@pytest.mark.parametrize("nr", [READ, WRITE, GETPID, CHROOT])
def test_everyday_calls_are_allowed(default_filter, nr):
    assert decide(default_filter, nr) == ALLOW


@pytest.mark.parametrize("nr", [KEYCTL, USERFAULTFD, PTRACE, MOUNT, UNSHARE, REBOOT, BPF, SETNS])
def test_refused_calls_fail_with_eperm(default_filter, nr):
    assert eperm(decide(default_filter, nr))


def test_a_call_the_profile_does_not_know_fails_with_eperm(default_filter):
    assert eperm(decide(default_filter, 999))


def test_clone_is_allowed_without_namespace_flags_only(default_filter):
    assert decide(default_filter, CLONE, (CLONE_VM | SIGCHLD,)) == ALLOW  # a thread or a fork
    assert eperm(decide(default_filter, CLONE, (CLONE_NEWUSER | SIGCHLD,)))
    assert eperm(decide(default_filter, CLONE, (CLONE_NEWNET,)))


def test_clone3_fails_with_enosys_so_libc_falls_back_to_clone(default_filter):
    action = decide(default_filter, CLONE3)
    assert action & ACTION_MASK == ERRNO and action & DATA_MASK == errno.ENOSYS


@pytest.mark.parametrize(("persona", "allowed"), [(0x0, True), (0x8, True), (0xFFFFFFFF, True),
                                                  (0x0040000, False), (0x0400000, False)])
def test_personality_accepts_only_the_harmless_personas(default_filter, persona, allowed):
    assert (decide(default_filter, PERSONALITY, (persona,)) == ALLOW) is allowed


def test_socket_refuses_af_vsock_only(default_filter):
    assert decide(default_filter, SOCKET, (2,)) == ALLOW  # AF_INET
    assert decide(default_filter, SOCKET, (1,)) == ALLOW  # AF_UNIX
    assert eperm(decide(default_filter, SOCKET, (seccomp_default.AF_VSOCK,)))


def test_cap_sys_admin_widens_the_filter_as_docker_does(admin_filter):
    for nr in (MOUNT, UNSHARE, SETNS, BPF):
        assert decide(admin_filter, nr) == ALLOW
    assert decide(admin_filter, CLONE, (CLONE_NEWUSER | SIGCHLD,)) == ALLOW, "the clone rule is excluded with the cap"
    assert decide(admin_filter, CLONE3) == ALLOW
    assert eperm(decide(admin_filter, KEYCTL)), "the keyring stays closed whatever the caps"


def test_a_dropped_capability_takes_its_calls_with_it():
    _needs_libseccomp()
    without_chroot = caps.DOCKER_DEFAULT_MASK & ~caps.mask(["CAP_SYS_CHROOT"])
    prog = seccomp.compile_profile(seccomp_default.profile(), without_chroot)
    assert eperm(decide(prog, CHROOT))
    ptrace = seccomp.compile_profile(seccomp_default.profile(), caps.DOCKER_DEFAULT_MASK | caps.mask(["CAP_SYS_PTRACE"]))
    assert decide(ptrace, PTRACE) == ALLOW


def test_a_foreign_architecture_is_not_allowed_through(default_filter):
    i386 = 0x40000003
    assert decide(default_filter, GETPID, arch=i386) != ALLOW


# -- custom profiles ------------------------------------------------------------------------------------


def test_a_custom_profile_with_its_own_default_errno_and_an_argument_rule():
    _needs_libseccomp()
    doc = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EACCES,
        "syscalls": [
            {"names": ["getpid", "read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_LE"}]},
            {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
            {"names": ["no_such_call_anywhere"], "action": "SCMP_ACT_ALLOW"},
        ],
    }  # fmt: skip
    prog = seccomp.compile_profile(doc, caps.DOCKER_DEFAULT_MASK)
    assert decide(prog, GETPID) == ALLOW and decide(prog, READ) == ALLOW
    assert decide(prog, WRITE, (1,)) == ALLOW and decide(prog, WRITE, (2,)) == ALLOW
    assert decide(prog, WRITE, (3,)) == ERRNO | errno.EACCES, "only stdout and stderr"
    assert decide(prog, KEYCTL) == ERRNO | errno.ENOSYS
    assert decide(prog, MOUNT) == ERRNO | errno.EACCES


def test_an_allow_by_default_profile_can_refuse_one_call():
    _needs_libseccomp()
    doc = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]}
    prog = seccomp.compile_profile(doc, 0)
    assert decide(prog, GETPID) == ERRNO | errno.EPERM  # errnoRet defaults to EPERM
    assert decide(prog, MOUNT) == ALLOW


def test_a_rule_for_a_capability_the_container_lacks_is_left_out():
    _needs_libseccomp()
    doc = {"defaultAction": "SCMP_ACT_ERRNO",
           "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_TIME"]}},
                        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_KILL"]}}]}
    plain = seccomp.compile_profile(doc, caps.mask(["CAP_KILL"]))
    assert eperm(decide(plain, GETPID)) and eperm(decide(plain, READ))
    timed = seccomp.compile_profile(doc, caps.mask(["CAP_SYS_TIME"]))
    assert decide(timed, GETPID) == ALLOW and decide(timed, READ) == ALLOW


def test_program_for_caches_per_setting_and_capabilities_and_unconfined_is_empty():
    _needs_libseccomp()
    assert seccomp.program_for(seccomp.UNCONFINED, caps.DOCKER_DEFAULT_MASK) == b""
    first = seccomp.program_for("", caps.DOCKER_DEFAULT_MASK)
    assert seccomp.program_for("", caps.DOCKER_DEFAULT_MASK) is first, "compiled once per launcher"
    custom = json.dumps({"defaultAction": "SCMP_ACT_ALLOW"})
    assert decide(seccomp.program_for(custom, 0), KEYCTL) == ALLOW


def test_apply_of_an_empty_program_does_nothing():
    seccomp.apply(b"")  # unconfined: no prctl, no error (the test process itself stays unfiltered)


# -- the client's check -----------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["", "unconfined", json.dumps(seccomp_default.profile()),
                                     '{"defaultAction": "SCMP_ACT_LOG"}'])
def test_valid_settings_pass_the_check_unchanged(setting):
    assert seccomp.check(setting) == setting


@pytest.mark.parametrize(("doc", "words"), [
    ("{not json", "not JSON"),
    ("[]", "defaultAction must be one of"),
    ('{"defaultAction": "SCMP_ACT_MAYBE"}', "defaultAction must be one of"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}',
     "syscalls[0].names must be a list"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}',
     "syscalls[0].action 'SCMP_ACT_NOPE' is unknown"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",'
     ' "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', "syscalls[0].args: bad argument rule"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",'
     ' "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SIMILAR"}]}]}', "bad argument rule"),
])  # fmt: skip
def test_a_bad_profile_is_one_clear_error(doc, words):
    with pytest.raises(ConfigError, match="seccomp profile: ") as e:
        seccomp.check(doc)
    assert words in str(e.value)
