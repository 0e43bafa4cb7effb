"""Exploits: syscalls Docker's seccomp policy refuses, made from inside a container (issue 11, Medium).

Before the fix no filter was installed: a container's root could create a user namespace (and in it
regain every capability over its own namespaces: the door to most container-escape kernel bugs),
use the kernel keyring, userfaultfd (a tool of kernel exploits), change its personality and so on.
The probe is the host's own Python (ctypes, raw syscall numbers), run on the ``host`` image so no
image has to carry it; each call prints its errno (0: it worked).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from shoal.cli.run import parse_security_opts
from shoal.runtime import ConfigError, ContainerConfig, Runtime, logs

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: runs containers"),
    pytest.mark.skipif(os.uname().machine != "x86_64", reason="the probe's syscall numbers are x86_64's"),
]

PROBE = r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    res = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    return 0 if res >= 0 else ctypes.get_errno()
pid = libc.syscall(56, ctypes.c_long(0x10000000 | 17), 0, 0, 0, 0)  # clone(CLONE_NEWUSER|SIGCHLD)
if pid == 0:
    os._exit(0)
clone_newuser = 0 if pid > 0 else ctypes.get_errno()
if pid > 0:
    os.waitpid(pid, 0)
out = {
    "clone_newuser": clone_newuser,
    "keyctl": call(250, 0, -3, 0, 0, 0),                # keyctl(GET_KEYRING_ID, SESSION)
    "userfaultfd": call(323, 0),
    "personality": call(135, 0x0040000),                # ADDR_NO_RANDOMIZE
    "personality_query": call(135, 0xFFFFFFFF),
    "ptrace": call(101, 16, 1, 0, 0),                   # PTRACE_ATTACH to pid 1
    "getpid": call(39),
    "unshare_user": call(272, 0x10000000),             # unshare(CLONE_NEWUSER), last: it changes us
}
print(json.dumps(out))
"""
EPERM = 1

# the interpreter itself, not the venv's link to it: the `host` image gives containers a /tmp of their own,
# so a checkout (and its venv) under /tmp is not visible inside
PYTHON = os.path.realpath(sys.executable)


async def probe(rt: Runtime, cid: str, **kw: object) -> dict[str, int]:
    await rt.create(ContainerConfig(id=cid, image="host", args=[PYTHON, "-S", "-c", PROBE], **kw))  # type: ignore[arg-type]
    await rt.start(cid)
    info = await asyncio.wait_for(rt.wait(cid), 30)
    stdout = [r["log"] for r in logs.records(info.log_path) if r["stream"] == "stdout"]
    assert info.exit_code == 0 and stdout, list(logs.records(info.log_path))
    return json.loads(stdout[-1])


async def test_the_default_profile_refuses_what_dockers_refuses(rt: Runtime) -> None:
    got = await probe(rt, "sc1")
    for call in ("unshare_user", "clone_newuser", "keyctl", "userfaultfd", "personality", "ptrace"):
        assert got[call] == EPERM, (call, got)
    assert got["getpid"] == 0 and got["personality_query"] == 0, got


async def test_unconfined_installs_no_filter(rt: Runtime) -> None:
    got = await probe(rt, "sc2", seccomp="unconfined")
    assert got["unshare_user"] == 0 and got["clone_newuser"] == 0 and got["keyctl"] == 0, got


async def test_a_profile_file_in_dockers_format_is_applied(rt: Runtime, tmp_path: Path) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    got = await probe(rt, "sc3", seccomp=parse_security_opts([f"seccomp={path}"]))
    assert got["getpid"] == 13 and got["unshare_user"] == 0, got


async def test_cap_sys_admin_widens_the_profile_as_in_docker(rt: Runtime) -> None:
    got = await probe(rt, "sc4", cap_add=["SYS_ADMIN"])
    assert got["unshare_user"] == 0 and got["keyctl"] == EPERM, got


async def test_exec_and_init_processes_are_filtered_too(rt: Runtime) -> None:
    await rt.create(ContainerConfig(id="sc5", image="host", args=["sleep", "30"], init=True))
    await rt.start("sc5")
    res = await rt.exec("sc5", [PYTHON, "-S", "-c", PROBE], timeout=20)
    got = json.loads(res.output.decode().strip().splitlines()[-1])
    assert got["unshare_user"] == EPERM and got["keyctl"] == EPERM, got
    status = Path(f"/proc/{(await rt.inspect('sc5')).pid}/status").read_text()
    assert "Seccomp:\t2" in status, "the container's PID 1 (the init) runs under the filter"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "not JSON"),
        ('{"defaultAction": "SCMP_ACT_MAYBE"}', "defaultAction"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "getpid", "action": "SCMP_ACT_ERRNO"}]}', "names"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 9, "op": "SCMP_CMP_EQ"}]}]}', "args"),
    ],
)
async def test_a_broken_profile_is_refused_before_anything_is_made(rt: Runtime, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        await rt.create(ContainerConfig(id="bad", image="host", args=["true"], seccomp=value))
    assert await rt.list() == []


def test_security_opt_parsing(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    assert parse_security_opts([]) == "" and parse_security_opts(["seccomp=unconfined"]) == "unconfined"
    assert parse_security_opts([f"seccomp={tmp_path / 'p.json'}"]) == '{"defaultAction": "SCMP_ACT_ALLOW"}'
    assert parse_security_opts(["no-new-privileges"]) == ""
    with pytest.raises(ConfigError, match="apparmor"):
        parse_security_opts(["apparmor=unconfined"])
    with pytest.raises(ConfigError, match="No such file"):
        parse_security_opts([f"seccomp={tmp_path / 'missing.json'}"])
