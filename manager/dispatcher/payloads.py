"""Which secrets and configs a node receives, and the increments between two such sets.

Pure. A node is sent the data of a secret or config only while one of the tasks it was sent (or is being
sent) needs it: a task that is still to start (desired RUNNING, effective state before RUNNING). A message
carries at most ``BUDGET`` bytes of it; a task waits for the messages that bring all its files. Once the task runs,
its files are in its container; once no task of the node needs an object, the node is told to drop
it. So a node never holds the secret of a task it does not run, and holds it only as long as it must:
a stolen worker yields the secrets of the tasks it was about to start, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb

Data = Callable[[str], bytes | None]  # object id -> its clear data (None: gone, or cannot be opened)
BUDGET = 16 << 20
"""File data in one session message. A worker takes messages of up to 64 MiB (worker/join.py); the secrets
and configs a node's tasks need may add up to more (each is under 500 KiB, a node may run hundreds of
tasks): what does not fit is sent in the next message, and a task is sent once its files are there."""


def needs_files(task: pb.Task, state: int) -> bool:
    """Whether ``task`` (effective state ``state``) may still start, and so needs its files on the node."""
    return task.desired_state == pb.RUNNING and state < pb.RUNNING


def needed(tasks: Iterable[pb.Task], state_of: Callable[[pb.Task], int]) -> tuple[set[str], set[str]]:
    """The secret ids and config ids the tasks still to start refer to."""
    secrets: set[str] = set()
    configs: set[str] = set()
    for t in tasks:
        if needs_files(t, state_of(t)):
            secrets.update(r.secret_id for r in t.spec.container.secrets)
            configs.update(r.config_id for r in t.spec.container.configs)
    return secrets, configs


@dataclass
class PayloadSet:
    """What one node was last sent: secret ids and config ids it holds."""

    secrets: set[str] = field(default_factory=set)
    configs: set[str] = field(default_factory=set)
    deferred: set[str] = field(default_factory=set)  # needed, left for the next message (over the budget)

    def complete(self, task: pb.Task) -> bool:
        """Whether every secret and config ``task`` needs was sent (or cannot be: the node then says which)."""
        c = task.spec.container
        return not any(r.secret_id in self.deferred for r in c.secrets) and not any(r.config_id in self.deferred for r in c.configs)

    def diff(
        self,
        tasks: Iterable[pb.Task],
        sent: Collection[str],
        state_of: Callable[[pb.Task], int],
        full: bool,
        secret_data: Data,
        config_data: Data,
        budget: int = BUDGET,
    ) -> dpb.Assignments | None:
        """The secrets and configs to add and drop, as an (incremental) Assignments message; None if none.

        Only tasks whose ids are in ``sent`` (what the node was told it runs, or is about to be) count. A
        full session start sends everything needed, since the agent holds nothing it was not sent in this
        session. At most ``budget`` bytes of data go in one message (always one object at least): the rest
        is ``deferred`` to the next one, and a task that needs a deferred object waits (``complete``).
        """
        want_s, want_c = needed((t for t in tasks if t.id in sent), state_of)
        msg = dpb.Assignments(full=False)
        room = [budget, budget]
        self.deferred = set()
        self.secrets = _apply(want_s, set() if full else self.secrets, secret_data, msg.secrets, msg.removed_secrets, room, self.deferred)
        self.configs = _apply(want_c, set() if full else self.configs, config_data, msg.configs, msg.removed_configs, room, self.deferred)
        if not (msg.secrets or msg.removed_secrets or msg.configs or msg.removed_configs):
            return None
        return msg


def _apply(want: set[str], have: set[str], data: Data, add: Any, drop: Any, room: list[int], deferred: set[str]) -> set[str]:
    """Fill ``add``/``drop`` within ``room`` = [bytes left, the whole budget] (what does not fit goes to
    ``deferred``; the message's first object always fits); returns what the node holds after the message."""
    held = set(have & want)
    for oid in sorted(want - have):
        if room[0] <= 0:
            deferred.add(oid)
            continue
        blob = data(oid)
        if blob is None:
            continue  # gone, or cannot be opened: the node names it when the task cannot start
        if len(blob) > room[0] and room[0] < room[1]:
            deferred.add(oid)
            room[0] = 0
            continue
        add.append(dpb.FileData(id=oid, data=blob))
        room[0] -= len(blob)
        held.add(oid)
    drop.extend(sorted(have - want))
    return held
