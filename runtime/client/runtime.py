"""``Runtime``: the asyncio API the worker agent uses; it forwards every call to the launcher.

The agent never forks containers itself (it is multi-threaded and large): ``open()`` starts the
launcher process (see spawn) or connects to the one already serving this state dir, and each call
is one JSON request on a unix-socket connection that is reused for later calls (see transport);
``exec`` streams on a connection of its own (see exec). A ContainerConfig is validated here, once,
before it is sent. Nothing here blocks the event loop: socket I/O is asyncio's, and starting the
launcher runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from shoal.runtime import protocol
from shoal.runtime.client import exec as execio
from shoal.runtime.client import spawn, transport
from shoal.runtime.config import STATUS_RUNNING, ContainerConfig, ContainerInfo, ContainerStats, ExecResult
from shoal.runtime.errors import ContainerError
from shoal.runtime.files import ContainerFile, to_wire
from shoal.runtime.files import validate as validate_files
from shoal.runtime.image.store import Image, ImageStore
from shoal.runtime.layout import Layout
from shoal.runtime.spec import validate


class Runtime:
    """Containers of one state directory, kept apart from other runtimes by ``cgroup_parent``."""

    def __init__(
        self, state_dir: str | Path, cgroup_parent: str = "shoal", image_root: str | Path | None = None, linger_s: float = 0.0
    ) -> None:
        self.layout = Layout(state_dir)
        self.linger_s = linger_s  # how long a launcher this client starts stays once idle (see launcher/server.py)
        self.cgroup_parent = cgroup_parent
        self.image_root = os.path.abspath(image_root) if image_root else self.layout.default_images
        self._sock: protocol.SocketPath | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._session: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._pool = transport.Pool(self._connect)
        self.launcher_pid: int | None = None

    # -- lifecycle of the launcher --------------------------------------------------------------

    async def open(self) -> None:
        """Start the launcher for this state dir, or connect to the one already running.

        The ``hello`` connection stays open as this client's session: the launcher lives while
        any session is open or any container runs.
        """
        if self._session is not None:
            return
        await asyncio.to_thread(self.layout.ensure)
        if self._sock is None:
            self._sock = protocol.SocketPath(self.layout.socket)
        deadline = time.monotonic() + spawn.LAUNCHER_START_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError, ConnectionError):
                reader, writer = await self._connect()
                try:
                    reply = await self._exchange(reader, writer, {"op": "hello"})
                except BaseException:
                    await self._hang_up(writer)
                    raise
                self._session = (reader, writer)
                self.launcher_pid = int(reply["pid"])
                return
            status, self._proc = await asyncio.to_thread(
                spawn.spawn, self.layout, self.cgroup_parent, self.image_root, self.linger_s
            )
            if status.startswith("error"):
                raise ContainerError(
                    f"launcher failed to start: {status[6:]} (see {self.layout.launcher_log})"
                )
            if time.monotonic() > deadline:
                raise ContainerError(
                    f"launcher did not come up within {spawn.LAUNCHER_START_TIMEOUT_S}s: {status}"
                )
            if status == "busy":  # another launcher holds the lock and is (re)binding: retry shortly
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        """End this client's session; never kills containers.

        The launcher exits (and this waits for it) when no other session is open and no container
        runs; otherwise it stays to reap the running containers and record their exit codes.
        """
        if self._sock is None:
            return
        await self._pool.close()
        reply: dict[str, Any] = {"exiting": True}
        if self._session is not None:
            reader, writer = self._session
            self._session = None
            try:
                reply = await self._exchange(reader, writer, {"op": "shutdown"})
            except (OSError, ConnectionError, RuntimeError, ContainerError):
                pass  # launcher gone, or the session belongs to a closed event loop
            finally:
                await self._hang_up(writer)
        if reply.get("exiting") and await asyncio.to_thread(spawn.await_exit, self._proc, self.launcher_pid):
            self._proc = None
        self._sock.close()
        self._sock = None

    _hang_up = staticmethod(transport.hang_up)

    async def __aenter__(self) -> Runtime:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- container operations -------------------------------------------------------------------

    async def create(self, config: ContainerConfig) -> ContainerInfo:
        """Make the cgroup, directories and state of a container; it does not run yet.

        The config is validated here, once (ConfigError names the first wrong field); the launcher
        receives the resulting ContainerSpec and only resolves it against the image.
        """
        spec = validate(config)
        reply = await self._call({"op": "create", "spec": spec.to_dict()})
        return ContainerInfo.from_dict(reply["info"])

    async def start(self, container_id: str, files: list[ContainerFile] | None = None) -> ContainerInfo:
        """Run a created container; returns once its command has been exec'd (raises StartError).

        ``files`` (e.g. secrets) are placed in the container on a tmpfs of its own, from memory: they
        are never written to the state dir (see shoal.runtime.files).
        """
        request: dict[str, Any] = {"op": "start", "id": container_id}
        if files:
            request["files"] = to_wire(validate_files(files))
        reply = await self._call(request)
        return ContainerInfo.from_dict(reply["info"])

    async def wait(self, container_id: str) -> ContainerInfo:
        """Return once the container has exited (immediately if it is not running)."""
        reply = await self._call({"op": "wait", "id": container_id})
        return ContainerInfo.from_dict(reply["info"])

    async def kill(self, container_id: str, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the container's PID 1 (a PID 1 without a handler ignores SIGTERM)."""
        await self._call({"op": "kill", "id": container_id, "signal": int(sig)})

    async def stop(self, container_id: str, grace_s: float | None = None) -> ContainerInfo:
        """The container's stop signal (SIGTERM unless configured), then SIGKILL to the whole cgroup after
        the grace; returns the exited info.

        The grace defaults to the container's ``stop_grace_s``.
        """
        reply = await self._call({"op": "inspect", "id": container_id})
        info = ContainerInfo.from_dict(reply["info"])
        if info.status != STATUS_RUNNING:
            return info
        grace = float(reply.get("stop_grace_s", 10.0)) if grace_s is None else grace_s
        with contextlib.suppress(ContainerError):
            await self.kill(container_id, int(reply.get("stop_signal") or signal.SIGTERM))
        try:
            async with asyncio.timeout(max(grace, 0.0)):
                return await self.wait(container_id)
        except TimeoutError:
            pass
        with contextlib.suppress(ContainerError):
            await self._call({"op": "kill", "id": container_id, "signal": int(signal.SIGKILL), "all": True})
        return await self.wait(container_id)

    async def delete(self, container_id: str, force: bool = False) -> None:
        """Remove cgroup, leftover mounts, directories and state; ``force`` kills it first."""
        if force:
            info = await self.inspect(container_id)
            if info.status == STATUS_RUNNING:  # like ``docker rm -f``: SIGKILL, no grace
                with contextlib.suppress(ContainerError):
                    await self._call(
                        {"op": "kill", "id": container_id, "signal": int(signal.SIGKILL), "all": True}
                    )
                await self.wait(container_id)
        await self._call({"op": "delete", "id": container_id})

    async def list(self) -> list[ContainerInfo]:
        reply = await self._call({"op": "list"})
        return [ContainerInfo.from_dict(c) for c in reply["containers"]]

    async def inspect(self, container_id: str) -> ContainerInfo:
        reply = await self._call({"op": "inspect", "id": container_id})
        return ContainerInfo.from_dict(reply["info"])

    async def stats(self, container_id: str) -> ContainerStats:
        """CPU seconds, memory (usage, peak, limit) and pids from the container's cgroup."""
        data = (await self._call({"op": "stats", "id": container_id}))["stats"]
        return ContainerStats(
            cpu_seconds=float(data["cpu_seconds"]),
            memory_bytes=int(data["memory_bytes"]),
            memory_peak_bytes=int(data["memory_peak_bytes"]),
            memory_limit_bytes=int(data["memory_limit_bytes"]),
            pids=int(data["pids"]),
        )

    # -- images and volumes -----------------------------------------------------------------------

    async def load_image(self, path: str | Path) -> list[str]:
        """Load a docker-save or OCI tarball (gzip or not) into the image store; docker's output lines."""
        from shoal.runtime.image import load

        return await asyncio.to_thread(load.load, ImageStore(self.image_root), os.fspath(path))

    async def images(self) -> list[Image]:
        return [Image.from_dict(d) for d in (await self._call({"op": "image_ls"}))["images"]]

    async def inspect_image(self, ref: str) -> Image:
        return Image.from_dict((await self._call({"op": "image_inspect", "ref": ref}))["image"])

    async def remove_image(self, ref: str) -> list[str]:
        """Untag or delete an image; ImageInUse while a container uses it."""
        return list((await self._call({"op": "image_rm", "ref": ref}))["done"])

    async def volume(self, op: str, name: str = "") -> dict[str, Any]:
        """``create``, ``ls``, ``inspect`` or ``rm`` a named volume (rm refused while in use)."""
        return await self._call({"op": f"volume_{op}", "name": name})

    async def exec(
        self,
        container_id: str,
        args: list[str],
        timeout: float | None = None,
        env: list[str] | None = None,
    ) -> ExecResult:
        """Run ``args`` inside the running container and collect its output (see ExecResult).

        The launcher runs it without a helper process and answers once it exited (launcher/lightexec.py):
        what health checks use, every interval in every container."""
        tail = execio.OutputTail()
        request = {"op": "exec", "id": container_id, "args": list(args), "env": list(env or []),
                   "timeout": timeout, "interactive": False, "collect": True}  # fmt: skip
        result = await execio.stream(await self._connect(), request, tail, None)
        return ExecResult(result.exit_code, tail.value(), result.timed_out)

    async def exec_stream(
        self,
        container_id: str,
        args: list[str],
        on_output: Callable[[bytes], None],
        timeout: float | None = None,
        env: list[str] | None = None,
        stdin: AsyncIterator[bytes] | None = None,
    ) -> ExecResult:
        """Like ``exec``, but hands output to ``on_output`` as it comes and feeds ``stdin``.

        The returned ExecResult has empty ``output``. Raises ContainerError if the container does
        not exist or is not running; a command that cannot be exec'd is exit code 126/127 with the
        reason as output, like ``docker exec``.
        """
        request = {
            "op": "exec", "id": container_id, "args": list(args), "env": list(env or []),
            "timeout": timeout, "interactive": stdin is not None,
        }  # fmt: skip
        return await execio.stream(await self._connect(), request, on_output, stdin)

    # -- transport ------------------------------------------------------------------------------

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._sock is None:
            raise ContainerError("runtime is not open")
        return await asyncio.open_unix_connection(self._sock.path, limit=protocol.MAX_LINE)

    _exchange = staticmethod(transport.exchange)

    async def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request on a pooled connection (see transport; a ``wait`` holds one until the exit)."""
        return await self._pool.call(request)
