"""The executor: how the agent turns a task into a container and back, behind a small interface.

``RuntimeExecutor`` (runtime_executor.py) drives the embedded runtime; ``FakeExecutor``
(executor_fake.py) stands in for unit tests and the node simulator.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from shoal.proto import types_pb2 as pb


@dataclass(frozen=True)
class Exit:
    exit_code: int
    oom_killed: bool = False


class ExecutorError(Exception):
    """A task could not be prepared or started; the message is shown in ``svc ps``."""


class Executor(abc.ABC):
    @abc.abstractmethod
    async def prepare(self, task: pb.Task) -> None:
        """Create the container (not running yet)."""

    @abc.abstractmethod
    async def start(self, task: pb.Task) -> int:
        """Start it; returns its pid."""

    @abc.abstractmethod
    async def wait(self, task_id: str) -> Exit: ...

    @abc.abstractmethod
    async def stop(self, task_id: str, grace_s: float | None) -> None:
        """SIGTERM, then SIGKILL after the grace (None: the container's own stop grace); returns once it
        has exited. A missing container is fine."""

    @abc.abstractmethod
    async def remove(self, task_id: str) -> None:
        """Delete the container and everything it holds; a missing container is fine."""

    @abc.abstractmethod
    async def list(self) -> list[str]:
        """Ids of the containers this executor holds (task ids)."""

    async def made_for(self) -> dict[str, pb.Task]:
        """The task each container this executor holds was made for, as far as the container tells (its
        id, and its service and slot where known: what a kept log needs after an agent restart)."""
        return {tid: pb.Task(id=tid) for tid in await self.list()}

    async def never_started(self) -> set[str]:
        """Ids of the containers that were created but never started (an agent died while starting them)."""
        return set()  # by default every container counts as started

    async def adopt(self, task: pb.Task) -> None:
        """A container an earlier run of the agent started is taken over (its networking is checked)."""
        return None  # nothing to check by default

    def log_path(self, task_id: str) -> str | None:
        """Where the task's container writes its json-file log (None: this executor keeps no logs)."""
        return None

    def kept_logs_dir(self) -> str | None:
        """Where the logs of ended tasks still in the task history are kept once their containers are
        deleted (logkeep.py), on the logs' own filesystem; None: not kept."""
        return None

    async def exec(self, task_id: str, args: list[str], timeout: float) -> tuple[int, bytes]:
        """Run ``args`` in the task's running container: (exit code, output). Used by health checks."""
        raise ExecutorError("this executor cannot exec into containers")
