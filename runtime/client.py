"""``Runtime``: the asyncio API the worker agent uses; it forwards every call to the launcher.

The agent never forks containers itself (it is multi-threaded and large): ``open()`` starts the
launcher process with ``subprocess`` (posix_spawn-fast, in a new session) or connects to the one
already serving this state dir, and each call is one JSON request on a unix-socket connection
that is reused for later calls (see transport). Nothing here blocks the event loop: socket I/O is asyncio's, and starting the
launcher runs in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from shoal import log
from shoal.runtime import protocol, transport
from shoal.runtime.config import (
    STATUS_RUNNING,
    ContainerConfig,
    ContainerInfo,
    ContainerStats,
    ExecResult,
    validate,
)
from shoal.runtime.errors import ContainerError, from_wire
from shoal.runtime.imagestore import Image
from shoal.runtime.state import Layout

LAUNCHER_START_TIMEOUT_S = 15.0
EXEC_OUTPUT_CAP = 64 * 1024
"""``Runtime.exec`` keeps the last this many bytes of output."""
_log = log.get(__name__)


class Runtime:
    """Containers of one state directory, kept apart from other runtimes by ``cgroup_parent``."""

    def __init__(
        self, state_dir: str | Path, cgroup_parent: str = "shoal", image_root: str | Path | None = None
    ) -> None:
        self.layout = Layout(state_dir)
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
        deadline = time.monotonic() + LAUNCHER_START_TIMEOUT_S
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
            status = await asyncio.to_thread(self._spawn_launcher)
            if status.startswith("error"):
                raise ContainerError(
                    f"launcher failed to start: {status[6:]} (see {self.layout.launcher_log})"
                )
            if time.monotonic() > deadline:
                raise ContainerError(f"launcher did not come up within {LAUNCHER_START_TIMEOUT_S}s: {status}")
            if status == "busy":  # another launcher holds the lock and is (re)binding: retry shortly
                await asyncio.sleep(0.05)

    def _spawn_launcher(self) -> str:
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        cmd = [
            sys.executable, "-E", "-s", "-m", "shoal.runtime.launcher",
            "--state-dir", self.layout.root, "--cgroup-parent", self.cgroup_parent, "--ready-fd", str(ready_w),
            "--image-root", self.image_root,
        ]  # fmt: skip
        try:
            with open(self.layout.launcher_log, "ab") as log_file:
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file,
                    pass_fds=(ready_w,), cwd="/", start_new_session=True, close_fds=True,
                )  # fmt: skip
        finally:
            os.close(ready_w)
        try:
            text = b""
            deadline = time.monotonic() + LAUNCHER_START_TIMEOUT_S
            while time.monotonic() < deadline:
                ready, _, _ = select.select([ready_r], [], [], deadline - time.monotonic())
                chunk = os.read(ready_r, 4096) if ready else b""
                if not chunk:
                    break
                text += chunk
        finally:
            os.close(ready_r)
        status = text.decode("utf-8", "replace").strip()
        if not status.startswith("ready"):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            status = status or f"error exited with status {self._proc.poll()} before it was ready"
        return status

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
        if reply.get("exiting"):
            await asyncio.to_thread(self._await_launcher_exit)
        self._sock.close()
        self._sock = None

    def _await_launcher_exit(self) -> None:
        """Wait (bounded) for the launcher to go away; reap it if this object spawned it."""
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _log.warning("launcher did not exit after shutdown", pid=self._proc.pid)
            else:
                self._proc = None
            return
        if self.launcher_pid is None:
            return
        try:
            fd = os.pidfd_open(self.launcher_pid)
        except OSError:
            return  # already gone
        try:
            select.select([fd], [], [], 10)
        finally:
            os.close(fd)

    _hang_up = staticmethod(transport.hang_up)

    async def __aenter__(self) -> Runtime:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- container operations -------------------------------------------------------------------

    async def create(self, config: ContainerConfig) -> ContainerInfo:
        """Make the cgroup, directories and state of a container; it does not run yet."""
        validate(config)
        reply = await self._call({"op": "create", "config": config.to_dict()})
        return ContainerInfo.from_dict(reply["info"])

    async def start(self, container_id: str) -> ContainerInfo:
        """Run a created container; returns once its command has been exec'd (raises StartError)."""
        reply = await self._call({"op": "start", "id": container_id})
        return ContainerInfo.from_dict(reply["info"])

    async def wait(self, container_id: str) -> ContainerInfo:
        """Return once the container has exited (immediately if it is not running)."""
        reply = await self._call({"op": "wait", "id": container_id})
        return ContainerInfo.from_dict(reply["info"])

    async def kill(self, container_id: str, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the container's PID 1 (a PID 1 without a handler ignores SIGTERM)."""
        await self._call({"op": "kill", "id": container_id, "signal": int(sig)})

    async def stop(self, container_id: str, grace_s: float | None = None) -> ContainerInfo:
        """SIGTERM, then SIGKILL to the whole cgroup after the grace; returns the exited info.

        The grace defaults to the container's ``stop_grace_s``.
        """
        reply = await self._call({"op": "inspect", "id": container_id})
        info = ContainerInfo.from_dict(reply["info"])
        if info.status != STATUS_RUNNING:
            return info
        grace = float(reply.get("stop_grace_s", 10.0)) if grace_s is None else grace_s
        with contextlib.suppress(ContainerError):
            await self.kill(container_id, signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.wait(container_id), timeout=max(grace, 0.0))
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
        from shoal.runtime import imageload, imagestore

        store = imagestore.ImageStore(self.image_root)
        return await asyncio.to_thread(imageload.load, store, os.fspath(path))

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
        """Run ``args`` inside the running container and collect its output (see ExecResult)."""
        chunks: list[bytes] = []
        size = 0

        def keep(data: bytes) -> None:
            nonlocal size
            chunks.append(data)
            size += len(data)
            while size - len(chunks[0]) >= EXEC_OUTPUT_CAP:
                size -= len(chunks.pop(0))

        result = await self.exec_stream(container_id, args, keep, timeout=timeout, env=env)
        output = b"".join(chunks)[-EXEC_OUTPUT_CAP:]
        return ExecResult(result.exit_code, output, result.timed_out)

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
        reader, writer = await self._connect()
        feeder: asyncio.Task[None] | None = None
        request = {
            "op": "exec", "id": container_id, "args": list(args), "env": list(env or []),
            "timeout": timeout, "interactive": stdin is not None,
        }  # fmt: skip
        try:
            writer.write(protocol.encode(request))
            await writer.drain()
            while True:
                line = await reader.readline()
                if not line:
                    raise ContainerError(f"exec in {container_id}: the launcher closed the connection")
                msg = protocol.decode(line)
                if not msg.get("ok"):
                    raise from_wire(msg.get("error") or {})
                if "out" in msg:
                    on_output(base64.b64decode(msg["out"]))
                elif msg.get("event") == "started" and stdin is not None:
                    feeder = asyncio.ensure_future(_feed_stdin(writer, stdin))
                elif "exit_code" in msg:
                    if msg.get("error"):
                        on_output(msg["error"].encode() + b"\n")
                    return ExecResult(int(msg["exit_code"]), b"", bool(msg.get("timed_out")))
        finally:
            if feeder is not None:
                feeder.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feeder
            await self._hang_up(writer)

    # -- transport ------------------------------------------------------------------------------

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._sock is None:
            raise ContainerError("runtime is not open")
        return await asyncio.open_unix_connection(self._sock.path, limit=protocol.MAX_LINE)

    _exchange = staticmethod(transport.exchange)

    async def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request on a pooled connection (see transport; a ``wait`` holds one until the exit)."""
        return await self._pool.call(request)


async def _feed_stdin(writer: asyncio.StreamWriter, stdin: AsyncIterator[bytes]) -> None:
    async for data in stdin:
        writer.write(protocol.encode({"stdin": base64.b64encode(data).decode()}))
        await writer.drain()
    writer.write(protocol.encode({"stdin_eof": True}))
    await writer.drain()
