"""Which tasks a node must know about, and the increments between two such sets.

Pure: a node is sent every task placed on it that it still has to act on (run it, or stop it); a task
that is done and no longer wanted drops out of the set, which tells the agent to clean it up. Such a
task stays in the task history until the orchestrator reaps it: the node is told its id (``kept``),
keeps its log for ``svc logs`` meanwhile, and is told when it is gone from the store (``forgotten``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL


def wanted(task: pb.Task, state: int) -> bool:
    """Whether the agent must still be told about ``task`` whose effective state is ``state``."""
    if state < pb.ASSIGNED:
        return False
    return not (task.desired_state != pb.RUNNING and state >= TERMINAL)


def kept(task: pb.Task, state: int) -> bool:
    """Whether ``task`` (of the node) is in the task history: ended on the node and no longer wanted,
    but still in the store. The node keeps its log until it is not (``forgotten``)."""
    return state >= pb.ASSIGNED and not wanted(task, state)


@dataclass
class AssignmentSet:
    """What was last sent to one node: task id -> the task's mod revision; the history task ids."""

    sent: dict[str, int] = field(default_factory=dict)
    history: set[str] = field(default_factory=set)

    def diff(
        self,
        tasks: Iterable[pb.Task],
        state_of: Callable[[pb.Task], int],
        rev_of: Callable[[str], int],
        full: bool,
        status_of: Callable[[pb.Task], pb.TaskStatus] | None = None,
        ready: Callable[[pb.Task], bool] | None = None,
        fill: Callable[[pb.Task], None] | None = None,
        hold: Callable[[pb.Task], bool] | None = None,
    ) -> dpb.Assignments | None:
        """The message that brings the node from ``sent`` to the current set (None if nothing changed).

        With ``status_of``, a full set carries each task's effective status: a restarted agent resumes
        its tasks from there (re-adopting their containers). A task ``ready`` refuses (its addresses are
        not recorded yet) is held back until it is, unless the node already has it; ``fill`` completes
        each task sent (its addresses). A change of a task the node already has that ``hold`` refuses (a
        stop waiting for the nodes' meshes, see ``drain``) is held back too: the node keeps the version it has.
        """
        tasks = list(tasks)
        current: dict[str, pb.Task] = {
            t.id: t for t in tasks if wanted(t, state_of(t)) and (ready is None or t.id in self.sent or ready(t))
        }
        msg = dpb.Assignments(full=full)
        held: dict[str, int] = {}
        for tid, t in current.items():
            rev = rev_of(tid)
            if not full and tid in self.sent and self.sent[tid] != rev and hold is not None and hold(t):
                held[tid] = self.sent[tid]
            elif full or self.sent.get(tid) != rev:
                out = msg.updated.add()
                out.CopyFrom(t)
                out.meta.version = rev
                if fill is not None:
                    fill(out)
                if full and status_of is not None:
                    out.status.CopyFrom(status_of(t))
        history = {t.id for t in tasks if kept(t, state_of(t))}
        msg.kept.extend(sorted(history if full else history - self.history))
        if not full:
            msg.removed.extend(sorted(set(self.sent) - set(current)))
            msg.forgotten.extend(sorted((set(self.sent) | self.history) - set(current) - history))
        self.sent = {tid: held.get(tid) or rev_of(tid) for tid in current}
        self.history = history
        if not full and not msg.updated and not msg.removed and not msg.kept and not msg.forgotten:
            return None
        return msg
