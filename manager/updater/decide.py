"""The update supervisor's decision: which outdated tasks to replace now, and the update's state.

Pure and synchronous (``now`` is passed in). Everything it needs is in the store -- the service (its
spec, previous spec and ``update_status``) and its tasks with their effective status -- so a new
leader decides exactly where the old one left off: nothing about an update lives in memory.

One pass, for a replicated or global service (jobs start a new run on a spec change instead):

* A *slot* (the slot number; for a global service, the node) is **to do** when its live task runs an
  outdated spec (``shoal.rollout.outdated``) and no replacement is on its way; **in flight** when a
  replacement exists but is not yet ready (RUNNING, and healthy when the service has a health check),
  or when its old task is stopping or has stopped and the orchestrator has not filled the slot yet (it
  fills every replicated slot); **done** when a ready task of the current spec holds it.
* ``parallelism`` slots (0: all) are in flight at once; a slot that became ready less than ``delay`` ago
  still holds its place, so batches are ``delay`` apart. Slots are taken lowest first.
* stop-first stops the old task (the orchestrator creates the replacement in the same slot);
  start-first creates the replacement in the slot and leaves the old one running (the orchestrator
  stops it once the replacement is ready).
* A slot whose restart policy gave up (condition none, or ``max_attempts`` reached) is neither in flight
  nor to do again: its failed replacements are the update's failures, and the update goes on without it
  (or pauses or rolls back by the failure action) instead of waiting for a task nobody will start.
* A replacement made by this update that fails (ends other than by a shutdown) is a failure, and its
  slot is done for the update (SwarmKit's updater moves on once a replacement reached RUNNING or later;
  the restart policy keeps trying the slot), unless the old task still runs beside it (start-first:
  the slot tries again after the restart delay); more than
  ``max_failure_ratio`` of the slots failing triggers ``failure_action``: pause, continue, or roll
  back (the previous spec becomes the spec, and the rollback runs by ``rollback_config``). A failing
  rollback pauses (``rollback_paused``) unless its own action is continue.
* The update completes ``monitor`` after its last replacement became ready, failures in that window
  still counting.
* An update starts when a slot is outdated and no update is running or paused, and its first slots are
  taken in the same pass; a paused update waits
  for the user (``svc update`` resumes it, ``svc rollback`` rolls it back: the control API resets the state).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from shoal import rollout
from shoal.proto import types_pb2 as pb
from shoal.restartpolicy import restart_due
from shoal.views import TaskView, new_task

US = pb.UpdateStatus
_SKIPPED_MODES = (pb.ServiceSpec.REPLICATED_JOB, pb.ServiceSpec.GLOBAL_JOB)


@dataclass
class Plan:
    """What one pass decided for one service."""

    create: list[pb.Task] = field(default_factory=list)  # start-first replacements
    stop: list[str] = field(default_factory=list)  # stop-first: old tasks to shut down
    service: pb.Service | None = None  # the service to write back (its update status changed, or rolled back)
    wake_at_ns: int | None = None  # a delay or a monitoring period ends then

    def wake(self, at_ns: int) -> None:
        self.wake_at_ns = at_ns if self.wake_at_ns is None else min(self.wake_at_ns, at_ns)

    def __bool__(self) -> bool:
        return bool(self.create or self.stop or self.service is not None)


@dataclass
class Slots:
    """The service's slots sorted by what the update still has to do with them."""

    todo: list[TaskView] = field(
        default_factory=list
    )  # the outdated live task of each slot to do, in slot order
    in_flight: int = 0
    ready_at: list[int] = field(
        default_factory=list
    )  # when each replacement made by this update became ready
    failures: list[TaskView] = field(default_factory=list)  # replacements made by this update that failed
    retry_at: list[int] = field(default_factory=list)  # when slots whose replacement failed may try again
    total: int = 0


def config(service: pb.Service) -> pb.UpdateConfig:
    """The policy the running update follows: ``rollback_config`` while rolling back."""
    return (
        service.spec.rollback_config
        if service.update_status.state in rollout.ROLLBACK_STATES
        else service.spec.update_config
    )


def _slot(t: TaskView) -> object:
    return t.task.slot if t.task.slot else t.task.node_id


def _order(slot: object) -> tuple[int, str]:
    return (slot, "") if isinstance(slot, int) else (0, str(slot))


def survey(service: pb.Service, tasks: list[TaskView], now_ns: int) -> Slots:
    """Sort the slots (1..replicas, or every node holding a task) into to do, in flight and done."""
    key = rollout.task_key(service.spec)
    memo: dict[int, bool] = {}
    started = service.update_status.started_at_ns
    groups: dict[object, list[TaskView]] = defaultdict(list)
    replicated = service.spec.mode == pb.ServiceSpec.REPLICATED
    for t in tasks:
        if not (replicated and t.task.slot > service.spec.replicas):
            groups[_slot(t)].append(t)
    out = Slots(total=service.spec.replicas if replicated else len(groups))
    retry_delay = service.spec.restart_policy.delay_ns
    for slot in sorted(groups, key=_order):
        fresh: list[TaskView] = []
        old: list[TaskView] = []
        stopping, failed_at = False, 0
        for t in sorted(groups[slot], key=lambda t: t.created):
            is_old = rollout.outdated(service, t.task, key, memo)
            ours = not is_old and started > 0 and t.created >= started
            if t.terminal:
                if ours and t.state != pb.SHUTDOWN:
                    out.failures.append(t)
                    failed_at = max(failed_at, t.status.timestamp_ns)
                continue
            if t.task.desired_state != pb.RUNNING:
                stopping = stopping or is_old
                continue
            (old if is_old else fresh).append(t)
            if ours and rollout.ready(t.task.spec, t.status):
                out.ready_at.append(t.status.timestamp_ns)
        if any(rollout.ready(t.task.spec, t.status) for t in fresh):
            continue  # done (an old task left beside it is the orchestrator's to stop)
        if failed_at and not old:
            continue  # its replacement failed (a failure above): done for the update, as SwarmKit's moves on
        if fresh or (stopping and not old):
            out.in_flight += 1
        elif _gave_up(service, groups[slot], now_ns):
            continue  # its restart policy gave up (a failure above if ours): neither in flight nor to do again
        elif old and failed_at and failed_at + retry_delay > now_ns:
            out.in_flight += 1  # its replacement failed: the next try waits out the restart delay
            out.retry_at.append(failed_at + retry_delay)
        elif old:
            out.todo.append(old[-1])
        elif _ended(groups[slot]):
            out.in_flight += 1  # empty until the orchestrator restarts its failed task: not done yet
        elif replicated:
            out.in_flight += 1  # its old task stopped (stop-first) before the orchestrator filled the slot
    return out


def _ended(slot_tasks: list[TaskView]) -> TaskView | None:
    """The slot's newest task if it ended on its own (not stopped), else None."""
    last = max(slot_tasks, key=lambda t: t.created)
    return last if last.terminal and last.state != pb.SHUTDOWN else None


def _gave_up(service: pb.Service, slot_tasks: list[TaskView], now_ns: int) -> bool:
    """Whether the slot's newest task ended on its own and the restart policy will not replace it (condition
    none, on-failure after a success, or max attempts reached): nobody will fill the slot for this update."""
    last = _ended(slot_tasks)
    return last is not None and restart_due(service, slot_tasks, last, now_ns) is None


def _status(state: int, now_ns: int, message: str, started_ns: int | None = None) -> pb.UpdateStatus:
    st = pb.UpdateStatus(state=state, message=message)  # type: ignore[arg-type]  # an UpdateStatus.State value
    st.started_at_ns = now_ns if started_ns is None else started_ns
    if state in (US.COMPLETED, US.ROLLBACK_COMPLETED):
        st.completed_at_ns = now_ns
    return st


def _with_status(service: pb.Service, status: pb.UpdateStatus) -> pb.Service:
    out = pb.Service()
    out.CopyFrom(service)
    out.update_status.CopyFrom(status)
    return out


def _failure(service: pb.Service, failed: TaskView, now_ns: int) -> pb.Service | None:
    """The service after its failure action (None: continue)."""
    cfg = config(service)
    why = f"failure or early termination of task {failed.id}" + (
        f": {failed.status.err}" if failed.status.err else ""
    )
    if cfg.failure_action == pb.UpdateConfig.CONTINUE:
        return None
    started = service.update_status.started_at_ns
    if service.update_status.state == US.ROLLBACK_STARTED:
        return _with_status(
            service, _status(US.ROLLBACK_PAUSED, now_ns, f"rollback paused due to {why}", started)
        )
    if cfg.failure_action == pb.UpdateConfig.ROLLBACK and service.HasField("previous_spec"):
        return rollout.rolled_back(service, now_ns, f"update rolled back due to {why}")
    return _with_status(service, _status(US.PAUSED, now_ns, f"update paused due to {why}", started))


def decide(service: pb.Service, tasks: list[TaskView], now_ns: int) -> Plan:
    """What to do now for the rolling update (or rollback) of ``service``."""
    plan = Plan()
    state = service.update_status.state
    if service.spec.mode in _SKIPPED_MODES or state in rollout.PAUSED_STATES:
        return plan
    slots = survey(service, tasks, now_ns)
    if state not in rollout.ACTIVE_STATES:
        if not slots.todo:
            return plan
        # the spec changed (or a task of an old spec came back): an update starts, its first slots in the same
        # pass (a round trip through the store less); none of the tasks so far is this update's
        service = plan.service = _with_status(service, _status(US.UPDATING, now_ns, "update in progress"))
        slots = survey(service, tasks, now_ns)
    cfg = config(service)
    if slots.failures and len(slots.failures) > cfg.max_failure_ratio * slots.total:
        failed = _failure(service, slots.failures[-1], now_ns)
        if failed is not None:
            plan.service = failed
            return plan
    if not slots.todo and not slots.in_flight:
        last = max(slots.ready_at, default=0)
        monitor = cfg.monitor_ns if cfg.HasField("monitor_ns") else 0
        if now_ns >= last + monitor:
            done = US.ROLLBACK_COMPLETED if state == US.ROLLBACK_STARTED else US.COMPLETED
            word = "rollback completed" if done == US.ROLLBACK_COMPLETED else "update completed"
            why = service.update_status.message
            if done == US.ROLLBACK_COMPLETED and why.startswith("update rolled back due to"):
                word += f"; {why}"  # why it rolled back stays readable once it is over
            plan.service = _with_status(
                service, _status(done, now_ns, word, service.update_status.started_at_ns)
            )
        else:
            plan.wake(last + monitor)
        return plan
    _replace(service, cfg, slots, now_ns, plan)
    return plan


def _replace(service: pb.Service, cfg: pb.UpdateConfig, slots: Slots, now_ns: int, plan: Plan) -> None:
    """Start as many slots as parallelism and delay allow."""
    parallelism = cfg.parallelism if cfg.HasField("parallelism") else 1
    limit = parallelism or slots.total or len(slots.todo)
    resting = (
        [at + cfg.delay_ns for at in slots.ready_at if at + cfg.delay_ns > now_ns] if cfg.delay_ns else []
    )
    budget = limit - slots.in_flight - len(resting)
    for at in slots.retry_at:
        plan.wake(at)
    if budget <= 0 and resting and slots.todo:
        plan.wake(min(resting))
    for old in slots.todo[: max(budget, 0)]:
        if cfg.order == pb.UpdateConfig.START_FIRST:
            node = old.task.node_id if not old.task.slot else ""
            plan.create.append(new_task(service, old.task.slot, now_ns, node_id=node))
        else:
            plan.stop.append(old.id)
