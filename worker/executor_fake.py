"""An in-memory executor for unit tests and the node simulator.

Its behaviour follows the task's container labels: ``fake.run_s`` (how long the task runs before it
exits; absent = until stopped), ``fake.exit_code`` (default 0), ``fake.oom_killed`` (``true``: that
exit was the OOM killer's), ``fake.fail_prepare`` / ``fake.fail_start`` (an error text that prepare /
start raises), ``fake.health`` (``healthy``, the default, or ``unhealthy``: what health probes
run through ``exec`` return). Given a ``log_dir``, each container has a json-file log there, as the
runtime's log daemon writes it: started containers write ``fake.log`` (a label) as their first line, and
``write_log`` appends more.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from shoal.proto import types_pb2 as pb
from shoal.worker.executor import Executor, ExecutorError, Exit


@dataclass
class _Ctr:
    labels: dict[str, str]
    task: pb.Task
    started: bool = False
    exited: asyncio.Future[Exit] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    timer: asyncio.TimerHandle | None = None


class FakeExecutor(Executor):
    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = log_dir
        self.containers: dict[str, _Ctr] = {}
        self.next_pid = 100
        self.started: list[str] = []  # every start, in order, for assertions

    async def prepare(self, task: pb.Task) -> None:
        if task.id in self.containers:
            raise ExecutorError(f"container {task.id} already exists")
        if err := task.spec.container.labels.get("fake.fail_prepare"):
            raise ExecutorError(err)
        self.containers[task.id] = _Ctr(dict(task.spec.container.labels), pb.Task(id=task.id, service_id=task.service_id, service_name=task.service_name, slot=task.slot))

    async def start(self, task: pb.Task) -> int:
        c = self.containers.get(task.id)
        if c is None:
            raise ExecutorError(f"no such container: {task.id}")
        if err := c.labels.get("fake.fail_start"):
            raise ExecutorError(err)
        c.started = True
        self.started.append(task.id)
        if self.log_dir is not None and "fake.log" in c.labels:
            self.write_log(task.id, c.labels["fake.log"] + "\n")
        if "fake.run_s" in c.labels:
            code = int(c.labels.get("fake.exit_code", "0"))
            oom = c.labels.get("fake.oom_killed") == "true"
            c.timer = asyncio.get_running_loop().call_later(float(c.labels["fake.run_s"]), self._exit, task.id, code, oom)
        self.next_pid += 1
        return self.next_pid

    def _exit(self, task_id: str, code: int, oom_killed: bool = False) -> None:
        c = self.containers.get(task_id)
        if c is not None and not c.exited.done():
            c.exited.set_result(Exit(code, oom_killed))

    async def wait(self, task_id: str) -> Exit:
        c = self.containers.get(task_id)
        if c is None:
            raise ExecutorError(f"no such container: {task_id}")
        return await asyncio.shield(c.exited)

    async def stop(self, task_id: str, grace_s: float | None) -> None:
        c = self.containers.get(task_id)
        if c is not None:
            if c.timer:
                c.timer.cancel()
            self._exit(task_id, 143 if c.started else 0)

    async def remove(self, task_id: str) -> None:
        c = self.containers.pop(task_id, None)
        if c is not None and c.timer:
            c.timer.cancel()
        if self.log_dir is not None:  # its log goes with it, as the runtime's
            shutil.rmtree(self.log_dir / task_id, ignore_errors=True)

    async def list(self) -> list[str]:
        return list(self.containers)

    async def made_for(self) -> dict[str, pb.Task]:
        return {tid: c.task for tid, c in self.containers.items()}

    async def never_started(self) -> set[str]:
        return {tid for tid, c in self.containers.items() if not c.started}

    def log_path(self, task_id: str) -> str | None:
        return str(self.log_dir / task_id / "ctr.log") if self.log_dir is not None else None

    def kept_logs_dir(self) -> str | None:
        return str(self.log_dir / "kept") if self.log_dir is not None else None

    def write_log(self, task_id: str, text: str, stream: str = "stdout") -> None:
        """Append ``text`` (one line, with its newline) to the task's log as the runtime's log daemon would."""
        path = self.log_path(task_id)
        assert path is not None, "a FakeExecutor without log_dir keeps no logs"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"
        with open(path, "a") as f:
            f.write(json.dumps({"log": text, "stream": stream, "time": stamp}) + "\n")

    async def exec(self, task_id: str, args: list[str], timeout: float) -> tuple[int, bytes]:
        c = self.containers.get(task_id)
        if c is None or not c.started or c.exited.done():
            raise ExecutorError(f"container {task_id} is not running")
        healthy = c.labels.get("fake.health", "healthy") == "healthy"
        return (0, b"ok") if healthy else (1, b"fake: unhealthy")
