"""The node's side of ``svc logs``: read its own tasks' logs and send the lines to the asking manager.

The session brings the live subscriptions that cover this node's tasks (the whole set each time it
changes). Each runs here until it leaves the set: readers go over the json-file logs of the matching
tasks this node holds (``tail``/``since`` applied per task); with ``follow`` they keep reading as the
containers write, and tasks that start later get a reader too. The lines go to the subscriber
(``publish_to``) over this node's mutual-TLS channel, which accepts only a manager's certificate, so
the node answers managers only, and only about the tasks it runs. A subscription survives the
session: a reconnect (to any manager) sends the set again, and a subscription still in it just goes
on; a broken publish stream is opened again and the batch that failed is sent again.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from shoal import log
from shoal.proto import logs_pb2 as lpb
from shoal.proto import logs_pb2_grpc as lgrpc
from shoal.proto import types_pb2 as pb
from shoal.retry import Backoff
from shoal.runtime import logs as jsonlog

_log = log.get(__name__)

POLL_S = 0.2
"""How often a following reader looks for new lines, and for new matching tasks."""
BATCH = 200


@dataclass(frozen=True)
class Sources:
    """What the feed needs from the agent: the tasks it holds and where their logs are."""

    tasks: Callable[[], list[pb.Task]]
    log_path: Callable[[str], str | None]
    channel: Callable[[str], grpc.aio.Channel]


def covers(sub: lpb.LogSubscription, task: pb.Task) -> bool:
    return task.service_id in sub.service_ids or task.id in sub.task_ids


def to_line(task_id: str, rec: dict) -> lpb.LogLine | None:
    """A json-file record as a LogLine (None for a record without a usable time)."""
    ts = parse_time(str(rec.get("time", "")))
    if ts is None:
        return None
    return lpb.LogLine(task_id=task_id, timestamp_ns=ts, stream=str(rec.get("stream", "stdout")), data=str(rec["log"]).encode())


def parse_time(text: str) -> int | None:
    """``2024-05-01T10:00:00.123456789Z`` -> unix ns (the shim's and docker's format)."""
    base, _, frac = text.rstrip("Z").partition(".")
    try:
        secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    digits = (frac + "000000000")[:9]
    return secs * 1_000_000_000 + int(digits) if digits.isdigit() else None


def select(lines: list[lpb.LogLine], tail: int, since_ns: int) -> list[lpb.LogLine]:
    """``--since`` then ``--tail`` on one task's lines, oldest first. Pure."""
    kept = [ln for ln in lines if ln.timestamp_ns >= since_ns] if since_ns else lines
    return kept[len(kept) - tail :] if 0 <= tail < len(kept) else kept


class _Follower:
    """Reads one log file from an offset on, across a rotation (the open file keeps the old inode)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.f = open(path, "rb")  # noqa: SIM115  # kept open while following
        self.partial = b""

    def read(self) -> list[dict]:
        out = []
        while True:
            chunk = self.f.read(1 << 16)
            if not chunk:
                if self._rotated():
                    continue
                return out
            data = self.partial + chunk
            *complete, self.partial = data.split(b"\n")
            out += [r for line in complete if (r := jsonlog.parse(line)) is not None]

    def _rotated(self) -> bool:
        try:
            moved = os.stat(self.path).st_ino != os.fstat(self.f.fileno()).st_ino
        except FileNotFoundError:
            return False
        if moved:
            self.f.close()
            self.f = open(self.path, "rb")  # noqa: SIM115
            self.partial = b""
        return moved

    def close(self) -> None:
        self.f.close()


class LogFeed:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.running: dict[str, asyncio.Task] = {}

    def apply(self, subs: lpb.LogSubscriptions) -> None:
        """The session's current set: start what is new, stop what left it."""
        wanted = {s.id: s for s in subs.subscriptions}
        for sid in list(self.running):
            if sid not in wanted:
                self.running.pop(sid).cancel()
        for sid, sub in wanted.items():
            task = self.running.get(sid)
            if task is None or (task.done() and sub.follow):
                self.running[sid] = asyncio.get_running_loop().create_task(self._serve(sub))

    async def stop(self) -> None:
        for t in self.running.values():
            t.cancel()
        for t in list(self.running.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.running.clear()

    async def _serve(self, sub: lpb.LogSubscription) -> None:
        queue: asyncio.Queue[lpb.LogLine | None] = asyncio.Queue()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read(sub, queue))
                tg.create_task(self._send(sub, queue))
        except* grpc.aio.AioRpcError as group:
            _log.info("log subscription ended by the manager", subscription=sub.id, error=str(group.exceptions[0]))

    async def _read(self, sub: lpb.LogSubscription, queue: asyncio.Queue[lpb.LogLine | None]) -> None:
        """Readers for every matching task (and, with follow, for those that start later)."""
        readers: dict[str, asyncio.Task] = {}
        try:
            while True:
                for task in self.sources.tasks():
                    if task.id not in readers and covers(sub, task):
                        readers[task.id] = asyncio.get_running_loop().create_task(self._task_lines(sub, task.id, queue))
                if not sub.follow:
                    await asyncio.gather(*readers.values())
                    await queue.put(None)
                    return
                await asyncio.sleep(POLL_S)
        finally:
            for r in readers.values():
                r.cancel()

    async def _task_lines(self, sub: lpb.LogSubscription, task_id: str, queue: asyncio.Queue[lpb.LogLine | None]) -> None:
        path = self.sources.log_path(task_id)
        while sub.follow and (path is None or not os.path.exists(path)):  # the container is not created yet
            await asyncio.sleep(POLL_S)
            path = self.sources.log_path(task_id)
        for _ in range(2):  # the task's container deleted meanwhile: its log may have moved (logkeep.py)
            if path is None or not os.path.exists(path):
                return
            rotated = [p for p in jsonlog.files(path) if p != path]
            old = [r for p in rotated for r in _records_of(p)]
            try:
                follower = _Follower(path)
                break
            except FileNotFoundError:
                path = self.sources.log_path(task_id)
        else:
            return
        try:
            recs = old + follower.read()
            for line in select([ln for r in recs if (ln := to_line(task_id, r)) is not None], sub.tail, sub.since_ns):
                await queue.put(line)
            while sub.follow:
                await asyncio.sleep(POLL_S)
                for r in follower.read():
                    ln = to_line(task_id, r)
                    if ln is not None and ln.timestamp_ns >= sub.since_ns:
                        await queue.put(ln)
        finally:
            follower.close()

    async def _send(self, sub: lpb.LogSubscription, queue: asyncio.Queue[lpb.LogLine | None]) -> None:
        """Batches of lines to the subscriber; a broken stream is opened again (the failed batch resent)."""
        backoff = Backoff(0.1, 1.0)
        pending: lpb.PublishLogsMessage | None = None
        done = False
        while not done:
            try:
                async with self.sources.channel(sub.publish_to) as ch:
                    call = lgrpc.LogsStub(ch).PublishLogs()
                    while True:
                        if pending is None:
                            pending, done = await _batch(sub.id, queue)
                        await call.write(pending)
                        pending = None
                        backoff.reset()
                        if done:
                            await call.done_writing()
                            await call
                            return
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                    raise
                _log.warning("log stream to the manager broke; opening it again", subscription=sub.id, error=exc.code().name)
            except asyncio.InvalidStateError:
                pass
            await backoff.sleep()


async def _batch(sub_id: str, queue: asyncio.Queue[lpb.LogLine | None]) -> tuple[lpb.PublishLogsMessage, bool]:
    """The next message: at least one line (or the end), then whatever else is already queued."""
    msg = lpb.PublishLogsMessage(subscription_id=sub_id)
    item = await queue.get()
    while True:
        if item is None:
            msg.close = True
            return msg, True
        msg.lines.append(item)
        if len(msg.lines) >= BATCH or queue.empty():
            return msg, False
        item = queue.get_nowait()


def _records_of(path: str) -> list[dict]:
    try:
        with open(path, "rb") as f:
            return [r for line in f if (r := jsonlog.parse(line)) is not None]
    except FileNotFoundError:
        return []
