"""The executor's side of secrets: a task gets its files at start (from the node's memory only), and a task
whose secret the node was not sent fails before any container is made, naming the secret."""

from __future__ import annotations

import pytest

from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.runtime import ContainerFile
from shoal.worker.executor import ExecutorError
from shoal.worker.files import TaskFiles
from shoal.worker.runtime_executor import RuntimeExecutor
from tests.fixtures.fake_runtime import Runtime


class FilesRuntime(Runtime):
    """The fake runtime, recording the files each start carried."""

    def __init__(self) -> None:
        super().__init__()
        self.started_with: dict[str, list[ContainerFile]] = {}

    async def start(self, cid: str, files: list[ContainerFile] | None = None):  # type: ignore[override]
        self.started_with[cid] = list(files or [])
        return await super().start(cid)


def task(*secrets: str) -> pb.Task:
    t = pb.Task(id="t1", service_name="web", slot=1)
    t.spec.container.image = "busybox:1"
    for s in secrets:
        t.spec.container.secrets.add(secret_id=f"id-{s}", secret_name=s, file=pb.FileTarget(name=s, uid="7", mode=0o400))
    return t


async def test_a_task_starts_with_its_secrets_as_files():
    files = TaskFiles()
    files.apply(dpb.Assignments(full=True, secrets=[dpb.FileData(id="id-db", data=b"pw")]))
    rt = FilesRuntime()
    ex = RuntimeExecutor(rt, files=files)  # type: ignore[arg-type]  # the stand-in has every call the executor makes
    await ex.prepare(task("db"))
    await ex.start(task("db"))
    assert rt.started_with["t1"] == [ContainerFile("/run/secrets/db", b"pw", 7, 0, 0o400)]


async def test_a_task_without_secrets_starts_without_files():
    rt = FilesRuntime()
    ex = RuntimeExecutor(rt, files=TaskFiles())  # type: ignore[arg-type]
    await ex.prepare(task())
    await ex.start(task())
    assert rt.started_with["t1"] == []


async def test_a_secret_the_node_lacks_fails_the_task_before_a_container_is_made():
    rt = FilesRuntime()
    ex = RuntimeExecutor(rt, files=TaskFiles())  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="secret db is not available on this node"):
        await ex.prepare(task("db"))
    assert rt.containers == {}


async def test_an_executor_without_a_file_store_refuses_tasks_with_secrets():
    ex = RuntimeExecutor(FilesRuntime())  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="cannot give tasks secrets"):
        await ex.prepare(task("db"))
