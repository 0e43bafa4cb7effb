"""The logs of this node's ended tasks, kept while the manager keeps the tasks in the task history.

Docker keeps an ended task's container, and with it the lines ``docker service logs`` shows, until
the task leaves the task history (``task_history_retention_limit`` tasks per slot). shoal deletes an
ended task's container when the task leaves the node's assignments -- its root filesystem, its network
-- but first moves its json-file log (``ctr.log`` and the rotated files) to ``<dir>/<task id>/`` with
the task itself (``task.pb``: which service it belongs to, for ``svc logs SERVICE`` after an agent
restart), if the manager has said the task is in the history (``Assignments.kept``). The log is
deleted when the manager says the task is gone from the store (``forgotten``: reaped, or its service
removed), when a full set (a new session) no longer lists it, and when the node stops or leaves.

Every change here is synchronous (renames and deletes in one directory tree): a keep and a forget of
the same task cannot interleave, so a log moved aside after its task was forgotten is deleted at once.
"""

from __future__ import annotations

import os
import shutil

from shoal import log
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb

_log = log.get(__name__)

TASK_FILE = "task.pb"
LOG_FILE = "ctr.log"  # the runtime's name: the rotated files keep theirs (ctr.log.1, ...)


class LogKeeper:
    def __init__(self, root: str | None) -> None:
        self.root = root  # None: this node keeps no logs (an executor without them)
        self.history: set[str] = set()  # the ids the manager keeps in the task history
        self.tasks: dict[str, pb.Task] = {}  # the kept logs, by task id

    def load(self) -> None:
        """The logs an earlier run of the agent kept: known again until the first full set settles them."""
        if self.root is None or not os.path.isdir(self.root):
            return
        for tid in os.listdir(self.root):
            try:
                with open(os.path.join(self.root, tid, TASK_FILE), "rb") as f:
                    self.tasks[tid] = pb.Task.FromString(f.read())
            except (OSError, ValueError):  # half kept when the agent died: nothing to show
                shutil.rmtree(os.path.join(self.root, tid), ignore_errors=True)

    def apply(self, a: dpb.Assignments) -> None:
        """An assignment set's history: a full set names all of it, a later one what joined and left."""
        if a.full:
            self.history = set(a.kept)
            for tid in [t for t in self.tasks if t not in self.history]:
                self.forget(tid)
            return
        self.history.update(a.kept)
        for tid in a.forgotten:
            self.history.discard(tid)
            self.forget(tid)

    def keep(self, task: pb.Task, files: list[str]) -> None:
        """``task``'s container is about to be deleted: move its log ``files`` here if the task is in the
        history (else they go with the container)."""
        if self.root is None or task.id not in self.history or not files:
            return
        d = os.path.join(self.root, task.id)
        try:
            os.makedirs(d, exist_ok=True)
            for path in files:
                shutil.move(path, os.path.join(d, os.path.basename(path)))
            with open(os.path.join(d, TASK_FILE), "wb") as f:
                f.write(task.SerializeToString())
        except OSError as exc:
            _log.warning("the log of an ended task could not be kept", task=task.id, error=str(exc))
            shutil.rmtree(d, ignore_errors=True)
            return
        self.tasks[task.id] = task

    def forget(self, task_id: str) -> None:
        """Delete a kept log (nothing if none is kept)."""
        self.tasks.pop(task_id, None)
        if self.root is not None:
            shutil.rmtree(os.path.join(self.root, task_id), ignore_errors=True)

    def log_path(self, task_id: str) -> str | None:
        """Where a kept log is (None: not kept here)."""
        if self.root is None or task_id not in self.tasks:
            return None
        return os.path.join(self.root, task_id, LOG_FILE)

    def clear(self) -> None:
        """The node stops or leaves: every kept log goes."""
        self.tasks.clear()
        self.history.clear()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
