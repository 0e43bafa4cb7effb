"""Exploit (issue 11, Low): the control socket was born with the process umask and chmod-ed 0660 only later.

Whoever connects to the unix socket is an admin. Under a permissive umask (0) the socket existed
0777 between grpc's bind and the chmod: a local user connecting in that window kept an admin
connection. The fix binds under a restrictive umask; to show the window is gone, the later chmod is
taken away here and the socket must still be 0660. Its directory, when the manager creates it, is
0750, and ``--socket-group`` gives both to a group.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import stat

import pytest

from shoal.manager import localsocket
from shoal.manager.server import Manager, ManagerConfig, ManagerError
from shoal.node.options import ManagerOptions, NodeError

pytestmark = pytest.mark.etcd


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


async def _started(cfg: ManagerConfig) -> tuple[Manager, asyncio.Task]:
    mgr = Manager(cfg)
    task = asyncio.create_task(mgr.run())
    started = asyncio.create_task(mgr.started.wait())
    await asyncio.wait({task, started}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        started.cancel()
        task.result()
    return mgr, task


async def _stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _cfg(tmp_path, etcd_server, sock, **kw) -> ManagerConfig:
    return ManagerConfig(data_dir=tmp_path / "m", node_id="s" * 25, listen_addr="127.0.0.1:0", socket_path=str(sock), etcd_endpoints=[etcd_server.endpoint], etcd_tls=etcd_server.tls, **kw)


async def test_the_socket_is_born_0660_and_its_new_directory_0750(tmp_path, etcd_store, etcd_server, monkeypatch):
    monkeypatch.setattr(localsocket.os, "chmod", lambda *a, **k: None)  # no fixing up afterwards
    sock = tmp_path / "run" / "shoal" / "manager.sock"
    with umask(0):
        _mgr, task = await _started(_cfg(tmp_path, etcd_server, sock))
    try:
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660, "the socket must never be wider than 0660"
        assert stat.S_IMODE(sock.parent.stat().st_mode) & 0o027 == 0, "its directory is closed to others"
    finally:
        await _stop(task)
    assert not sock.exists(), "removed at exit"


async def test_the_socket_group_owns_socket_and_directory(tmp_path, etcd_store, etcd_server):
    group = grp.getgrgid(os.getgid() if os.getgid() else 1)  # some group other than root's own when possible
    sock = tmp_path / "run2" / "manager.sock"
    _mgr, task = await _started(_cfg(tmp_path, etcd_server, sock, socket_group=group.gr_name))
    try:
        assert sock.stat().st_gid == group.gr_gid and sock.parent.stat().st_gid == group.gr_gid
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660 and stat.S_IMODE(sock.parent.stat().st_mode) == 0o750
    finally:
        await _stop(task)


async def test_a_live_socket_is_not_taken_over(tmp_path, etcd_store, etcd_server):
    sock = tmp_path / "s" / "manager.sock"
    mgr, task = await _started(_cfg(tmp_path, etcd_server, sock))
    try:
        with pytest.raises(ExceptionGroup) as err:  # raised inside the manager's TaskGroup
            await _started(_cfg(tmp_path / "other", etcd_server, sock, ca_kek=mgr.ca.kek))
        assert err.group_contains(ManagerError, match="another manager is listening")
    finally:
        await _stop(task)


def test_an_unknown_socket_group_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(NodeError, match="--socket-group 'no-such-group-x'"):
        ManagerOptions(data_dir=tmp_path, socket_group="no-such-group-x").check()
    assert not any(tmp_path.iterdir())
