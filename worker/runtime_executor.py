"""The executor on the embedded runtime: a task becomes a container config, then a container.

The mapping from a task to a container config is a pure function, tested on its own. Every
container config carries the node's ``masked_paths`` (its data dir with keys and etcd data,
/etc/shoal, the control socket: see shoal.node.daemon.secret_paths), which the runtime hides inside
the container; it matters for the ``host`` image, whose root is the node's own.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Awaitable, Callable

from shoal import log
from shoal.proto import types_pb2 as pb
from shoal.runtime import (
    ContainerConfig,
    ContainerError,
    ContainerFile,
    ContainerNotFound,
    ImageNotFound,
    Runtime,
)
from shoal.runtime.config import STATUS_CREATED
from shoal.worker import taskspec
from shoal.worker.executor import Executor, ExecutorError, Exit
from shoal.worker.files import MissingFile, TaskFiles
from shoal.worker.netagent import NetAgent
from shoal.worker.network.dns import read_resolv_conf
from shoal.worker.network.links import PlumbingError
from shoal.worker.network.netns import NetnsError
from shoal.worker.tasknet import Wiring

_log = log.get(__name__)


def task_name(task: pb.Task) -> str:
    """``<service>.<slot>`` (a global service's task: ``<service>.<node id>``), as ``svc ps`` names it."""
    return f"{task.service_name}.{task.slot if task.slot else task.node_id[:12]}"


def task_env(task: pb.Task, node_name: str = "") -> list[str]:
    """The spec's env, then what a task may want to know about itself (unless the spec sets it):
    ``SHOAL_TASK_NAME``, ``SHOAL_TASK_ID``, ``SHOAL_SERVICE_NAME``, ``SHOAL_NODE_ID``, ``SHOAL_NODE_HOSTNAME``."""
    env = list(task.spec.container.env)
    keys = {e.partition("=")[0] for e in env}
    facts = {"SHOAL_TASK_NAME": task_name(task), "SHOAL_TASK_ID": task.id, "SHOAL_SERVICE_NAME": task.service_name,
             "SHOAL_NODE_ID": task.node_id, "SHOAL_NODE_HOSTNAME": node_name}
    return env + [f"{k}={v}" for k, v in facts.items() if v and k not in keys]


def task_from_labels(container_id: str, labels: dict[str, str]) -> pb.Task:
    """The task a container was made for, as its labels (``container_config``'s) tell: id, service, slot."""
    slot = labels.get("shoal.task.slot", "")
    return pb.Task(id=container_id, service_id=labels.get("shoal.service.id", ""), service_name=labels.get("shoal.service.name", ""),
                   slot=int(slot) if slot.isdigit() else 0)  # fmt: skip


def container_config(task: pb.Task, masked_paths: list[str] | None = None, wiring: Wiring | None = None,
                     node_name: str = "") -> ContainerConfig:
    """The runtime config for a task (pure); ``masked_paths``: the node's paths to hide inside; ``wiring``:
    the network namespace it joins, if wired; ``node_name``: the node's hostname (in its env)."""
    c = task.spec.container
    ctx = taskspec.context(task, node_name)  # docker's templates, expanded here on the node
    env = taskspec.env(task_env(task, node_name), ctx)  # the image's Env, then the runtime's PATH default, fill in the rest
    limits = task.spec.resources.limits
    return ContainerConfig(
        id=task.id,
        image=c.image,
        entrypoint=list(c.command) if c.command else None,  # --entrypoint replaces the image's
        args=list(c.args),  # the command after the image replaces the image's Cmd
        env=env,
        workdir=c.dir,
        user=c.user,
        hostname=taskspec.hostname(task, ctx),
        memory_bytes=limits.memory_bytes,
        pids_limit=limits.pids,
        nano_cpus=limits.nano_cpus,
        stop_grace_s=c.stop_grace_period_ns / 1e9 if c.HasField("stop_grace_period_ns") else 10.0,
        masked_paths=list(masked_paths or []),
        seccomp=c.seccomp_profile,
        init=c.init,
        labels={"shoal.service.id": task.service_id, "shoal.service.name": task.service_name, "shoal.task.id": task.id, "shoal.task.slot": str(task.slot)},
        netns_path=wiring.netns_path if wiring else "",
        mounts=taskspec.mounts(task, ctx) + (list(wiring.mounts) if wiring else []),
        **taskspec.options(task),
    )


Puller = Callable[[str], Awaitable[bool]]
RESOLV_CONF = "/etc/resolv.conf"


class RuntimeExecutor(Executor):
    def __init__(
        self,
        runtime: Runtime,
        node_name: str = "",
        puller: Puller | None = None,
        masked_paths: list[str] | None = None,
        network: NetAgent | None = None,
        files: TaskFiles | None = None,
    ) -> None:
        self.runtime = runtime
        self.files = files
        """The secrets and configs this node was sent (in memory); None: tasks get no files."""
        self.masked_paths = list(masked_paths or [])
        """The node's secrets, hidden inside every container (see the module doc)."""
        self.node_name = node_name
        self.puller = puller
        """Fetches a cluster image the node lacks (see image_pull); None: node-local images only."""
        self.network = network
        """Wires tasks that have addresses into the node's networks; None: every task gets loopback only."""
        self.resolv_conf_path = "/etc/resolv.conf"
        """The host's resolver configuration: its servers for a task that sets --dns-search/--dns-option only."""

    def _files(self, task: pb.Task) -> list[ContainerFile]:
        """The files the task's container gets at start: its secrets and configs, and on a node without
        networking the resolv.conf of its ``--dns*`` flags (a networked node's resolv.conf names its responder)."""
        out = self._secret_files(task)
        if self.network is None:
            servers = [host for host, _port in read_resolv_conf(self.resolv_conf_path)]
            if (data := taskspec.resolv_conf(task.spec.container.dns_config, servers)) is not None:
                if any(f.target == RESOLV_CONF for f in out):
                    raise ExecutorError(f"--dns, --dns-search and --dns-option write {RESOLV_CONF}, which a config also targets")
                out.append(ContainerFile(RESOLV_CONF, data, mode=0o644))
        return out

    def _secret_files(self, task: pb.Task) -> list[ContainerFile]:
        c = task.spec.container
        if not (c.secrets or c.configs):
            return []
        if self.files is None:
            raise ExecutorError("this node cannot give tasks secrets or configs")
        try:
            return self.files.files_for(task)
        except MissingFile as exc:
            raise ExecutorError(str(exc)) from None

    async def prepare(self, task: pb.Task) -> None:
        """Wire the task's network and create the container in it, side by side (the create needs only the
        namespace's path); whichever fails undoes both."""
        self._files(task)  # a secret the node lacks fails the task before anything is made
        began = time.monotonic()
        took: dict[str, float] = {}
        failed: list[BaseException] = []

        async def create(wiring: Wiring | None) -> None:
            t0 = time.monotonic()
            try:
                await self._create(task, wiring)
            except BaseException as exc:
                failed.append(exc)
                raise
            took["create_s"] = round(time.monotonic() - t0, 4)

        try:
            if self.network is None or await self.network.wire(task, alongside=create) is None:
                await create(None)  # not wired: the create alone
        except (PlumbingError, NetnsError, OSError) as exc:
            await self._undo_create(task.id, took)
            if exc in failed:  # the create's own error, as it was
                raise
            raise ExecutorError(f"network setup failed: {exc}") from exc
        except BaseException:
            await self._undo_create(task.id, took)
            raise
        _log.debug("container prepared", task=task.id, wire_s=round(time.monotonic() - began, 4),
                   create_s=took["create_s"])

    async def _undo_create(self, task_id: str, took: dict[str, float]) -> None:
        """Created, but the wiring failed (or the prepare was cancelled): the container goes too."""
        if "create_s" in took:
            with contextlib.suppress(ContainerError):
                await self.runtime.delete(task_id, force=True)

    async def adopt(self, task: pb.Task) -> None:
        if self.network is not None:
            try:
                await self.network.rewire(task)
            except (PlumbingError, NetnsError, OSError) as exc:
                raise ExecutorError(f"network re-wiring failed: {exc}") from exc

    async def _create(self, task: pb.Task, wiring: Wiring | None) -> None:
        """Create the container; an image the node lacks is pulled from the cluster first."""
        image = task.spec.container.image
        for attempt in (1, 2):
            try:
                config = container_config(task, self.masked_paths, wiring, self.node_name)
            except ValueError as exc:  # a template that cannot expand on this node
                raise ExecutorError(str(exc)) from exc
            try:
                await self.runtime.create(config)
                return
            except ImageNotFound as exc:
                pulled = False
                if attempt == 1 and self.puller is not None:
                    try:
                        pulled = await self.puller(image)
                    except ContainerError as pull_exc:
                        raise ExecutorError(str(pull_exc)) from pull_exc
                if not pulled:
                    node = self.node_name or task.node_id
                    raise ExecutorError(f"image {image} not found on node {node}") from exc
            except ContainerError as exc:
                raise ExecutorError(str(exc)) from exc

    async def start(self, task: pb.Task) -> int:
        try:
            files = self._files(task)
            return (await (self.runtime.start(task.id, files=files) if files else self.runtime.start(task.id))).pid
        except ContainerError as exc:
            raise ExecutorError(str(exc)) from exc

    async def wait(self, task_id: str) -> Exit:
        info = await self.runtime.wait(task_id)
        return Exit(info.exit_code if info.exit_code is not None else -1, info.oom_killed)

    async def stop(self, task_id: str, grace_s: float | None) -> None:
        try:
            await self.runtime.stop(task_id, grace_s)
        except ContainerError:
            pass  # gone already

    async def remove(self, task_id: str) -> None:
        deleted = True
        try:
            await self.runtime.delete(task_id, force=True)
        except ContainerNotFound:
            pass  # gone already
        except ContainerError:
            deleted = False  # not deleted: something may still run in its namespace, whose links are taken now
        if self.network is not None:
            await self.network.unwire(task_id, emptied=deleted)

    async def list(self) -> list[str]:
        return [c.id for c in await self.runtime.list()]

    async def made_for(self) -> dict[str, pb.Task]:
        return {c.id: task_from_labels(c.id, c.labels) for c in await self.runtime.list()}

    async def never_started(self) -> set[str]:
        return {c.id for c in await self.runtime.list() if c.status == STATUS_CREATED}

    def log_path(self, task_id: str) -> str | None:
        return self.runtime.layout.log_path(task_id)

    def kept_logs_dir(self) -> str | None:
        return os.path.join(self.runtime.layout.root, "kept-logs")

    async def exec(self, task_id: str, args: list[str], timeout: float) -> tuple[int, bytes]:
        try:
            res = await self.runtime.exec(task_id, args, timeout=timeout)
        except ContainerError as exc:
            raise ExecutorError(str(exc)) from exc
        return res.exit_code, res.output
