"""The runtime joins a network namespace its caller made and wired (``netns_path``), as the agent does.

The caller (here the test, in the agent the worker's networking) creates a named namespace, puts
interfaces and addresses in it, and the container's PID 1 joins it instead of making one with only
loopback. The namespace is the caller's: it outlives the container. Traffic only between namespaces
this test made.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator

import pytest

from shoal.runtime import ContainerConfig, Runtime, StartError
from tests.fixtures.runtime import wait_for_log
from tests.integration.netkit import Kit, needs_root

pytestmark = [*needs_root, pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup"), reason="no cgroup filesystem")]

SERVE = "import socket,sys\ns=socket.create_server(('0.0.0.0',8080))\nprint('ready',flush=True)\n" \
        "while True:\n c,a=s.accept(); c.sendall(('hello '+a[0]).encode()); c.close()\n"

# the interpreter itself, not the venv's link to it: the `host` image gives containers a /tmp of their own,
# so a checkout (and its venv) under /tmp is not visible inside
PYTHON = os.path.realpath(sys.executable)


@pytest.fixture
def kit() -> Iterator[Kit]:
    k = Kit()
    try:
        yield k
    finally:
        k.close()


async def test_a_container_joins_the_wired_namespace_and_serves_through_it(rt: Runtime, kit: Kit) -> None:
    task, client = kit.ns("task"), kit.ns("client")
    kit.veth(task, "eth0", client, "eth0")
    kit.ip(task, "addr add 10.77.0.2/24 dev eth0\n")
    kit.ip(client, "addr add 10.77.0.1/24 dev eth0\n")
    await rt.create(ContainerConfig(id="joined", image="host", args=[PYTHON, "-c", SERVE],
                                    netns_path=kit.path(task)))
    info = await rt.start("joined")
    await wait_for_log(info, "ready")
    assert os.stat(f"/proc/{info.pid}/ns/net").st_ino == os.stat(kit.path(task)).st_ino
    for ns in ("pid", "mnt", "uts", "ipc"):  # only the network namespace is shared
        assert os.readlink(f"/proc/{info.pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
    answer = kit.run(client, PYTHON, "-c", "import socket;s=socket.create_connection(('10.77.0.2',8080),3);"
                     "print(s.recv(100).decode())")
    assert answer.strip() == "hello 10.77.0.1"
    await rt.delete("joined", force=True)
    assert os.path.exists(kit.path(task)), "the namespace is the caller's: it outlives the container"
    kit.run(task, "ip", "link", "show", "eth0")


async def test_the_container_sees_the_joined_namespaces_interfaces_in_its_own_sysfs(rt: Runtime, kit: Kit) -> None:
    task = kit.ns("task")
    kit.ip(task, "link add shtv0 type veth peer name shtv1\n")
    await rt.create(ContainerConfig(id="sysfs", image="host", args=["/bin/sh", "-c", "ls /sys/class/net; echo done"],
                                    netns_path=kit.path(task)))
    info = await rt.start("sysfs")
    log = await wait_for_log(info, "done")
    assert {"lo", "shtv0", "shtv1"} <= set(log.split())


async def test_a_namespace_that_is_gone_fails_the_start_with_its_reason(rt: Runtime) -> None:
    missing = f"/run/netns/shoal-missing-{uuid.uuid4().hex[:6]}"
    await rt.create(ContainerConfig(id="gone", image="host", args=["/bin/true"], netns_path=missing))
    with pytest.raises(StartError, match="join network namespace.*No such file"):
        await rt.start("gone")
    assert (await rt.inspect("gone")).status == "created"


LOOPBACK = "import socket\ns=socket.create_server(('127.0.0.1',0))\nsocket.create_connection(s.getsockname(),2)\nprint('lo ok')\n"


@pytest.mark.parametrize("lo", ["own", "joined down", "joined up"])
async def test_the_container_has_loopback_up_in_its_own_namespace_and_in_a_joined_one(rt: Runtime, kit: Kit, lo: str) -> None:
    path = ""
    if lo != "own":
        task = kit.ns("task")  # (loopback up, as the agent's wiring leaves it)
        if lo == "joined down":
            kit.ip(task, "link set lo down\n")
        path = kit.path(task)
    cid = f"lo-{lo.replace(' ', '-')}"
    await rt.create(ContainerConfig(id=cid, image="host", args=[PYTHON, "-c", LOOPBACK], netns_path=path))
    info = await rt.start(cid)
    assert "lo ok" in await wait_for_log(info, "lo ok")
    await rt.delete(cid, force=True)
