"""Exploit: a task on the ``host`` image reads the node's secrets (issue 11, Medium).

The ``host`` image is the node's own root, read-only. Before the fix a container on it could read
the data dir's ``certificates/`` (node key, admin key, ``ca.kek``), etcd's data and every other
shoal state dir. The worker now lists them (``shoal.node.daemon.secret_paths``) in every container
config it makes (``masked_paths``); the runtime covers each one, knowing nothing of clusters.

Secrets live under /var/tmp here: /tmp is a fresh tmpfs inside a host container, so a file there
would be invisible anyway and prove nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.node.daemon import secret_paths
from shoal.proto import types_pb2 as pb
from shoal.runtime import ConfigError, ContainerConfig, Runtime, logs
from shoal.worker.runtime_executor import RuntimeExecutor

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root: runs containers")]
SH = shutil.which("sh") or "/bin/sh"
KEY = "-----BEGIN PRIVATE KEY-----secret-node-key"


@pytest.fixture
def data_dir() -> AsyncIterator[Path]:
    """A node data dir as a manager keeps it: certificates (node key, KEK), etcd data, agent state."""
    d = Path(tempfile.mkdtemp(prefix="shoal-test-node-", dir="/var/tmp"))
    (d / "certificates").mkdir()
    (d / "certificates" / "node.key").write_text(KEY)
    (d / "certificates" / "ca.kek").write_text("kek-secret")
    (d / "etcd" / "member").mkdir(parents=True)
    (d / "etcd" / "member" / "db").write_text("etcd-secret")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def host_task(tid: str, script: str) -> pb.Task:
    t = pb.Task(id=tid, service_id="svc", service_name="peek", slot=1, node_id="n1")
    t.spec.container.image = "host"
    t.spec.container.command.extend([SH, "-c", script])
    return t


async def test_a_host_task_cannot_read_the_nodes_keys_kek_or_etcd_data(rt: Runtime, data_dir: Path) -> None:
    executor = RuntimeExecutor(rt, masked_paths=secret_paths(data_dir, str(data_dir / "manager.sock")))
    script = (
        f"cat {data_dir}/certificates/node.key {data_dir}/certificates/ca.kek {data_dir}/etcd/member/db; "
        f"ls -A {data_dir} | wc -l; exit 0"
    )
    task = host_task("peek1", script)
    await executor.prepare(task)
    await executor.start(task)
    exit_ = await asyncio.wait_for(executor.wait(task.id), 20)
    records = list(logs.records((await rt.inspect(task.id)).log_path))
    log = "".join(r["log"] for r in records)
    stdout = "".join(r["log"] for r in records if r["stream"] == "stdout")
    assert exit_.exit_code == 0
    for secret in (KEY, "kek-secret", "etcd-secret"):
        assert secret not in log
    assert stdout.split() == ["0"], f"the data dir shows empty: {log!r}"


def test_the_worker_hides_the_data_dir_etc_shoal_and_the_control_socket(data_dir: Path) -> None:
    paths = secret_paths(data_dir, "/run/elsewhere/manager.sock")
    assert str(data_dir) in paths and "/etc/shoal" in paths and "/run/elsewhere/manager.sock" in paths


async def test_masked_paths_cover_directories_and_files(rt: Runtime, data_dir: Path) -> None:
    key = data_dir / "certificates" / "node.key"
    cfg = ContainerConfig(
        id="mask", image="host", args=[SH, "-c", f"cat {key}; ls -A {data_dir}/etcd | wc -l; exit 0"],
        masked_paths=[str(key), str(data_dir / "etcd"), "/no/such/path"],
    )  # fmt: skip
    await rt.create(cfg)
    await rt.start("mask")
    info = await asyncio.wait_for(rt.wait("mask"), 20)
    records = list(logs.records(info.log_path))
    stdout = "".join(r["log"] for r in records if r["stream"] == "stdout")
    assert info.exit_code == 0 and KEY not in "".join(r["log"] for r in records) and stdout.split() == ["0"]


@pytest.mark.parametrize("bad", ["relative/path", "/a\x00b", ""])
async def test_a_masked_path_must_be_absolute(rt: Runtime, bad: str) -> None:
    with pytest.raises(ConfigError, match="masked_paths"):
        await rt.create(ContainerConfig(id="m", image="host", args=["true"], masked_paths=[bad]))
