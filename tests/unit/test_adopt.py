"""What a restarted agent adopts, marks lost, or deletes (pure planning)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shoal.proto import types_pb2 as pb
from shoal.worker.adopt import plan

TIDS = st.sampled_from([f"t{i}" for i in range(8)])


def test_running_tasks_with_containers_are_adopted():
    p = plan({"a": pb.RUNNING, "b": pb.PREPARING, "c": pb.ASSIGNED}, {"a", "b"})
    assert p.adopt == {"a": pb.RUNNING, "b": pb.PREPARING} and not p.lost and not p.remove


def test_a_starting_task_resumes_waiting_on_its_container_but_not_as_healthy():
    """A task with a health check is reported STARTING while its started container waits to be healthy:
    starting it again would fail on the running container, so it waits on it -- still gated on a check."""
    p = plan({"b": pb.STARTING, "r": pb.RUNNING}, {"b", "r"})
    assert p.adopt == {"b": pb.RUNNING, "r": pb.RUNNING} and p.healthy == {"r"}


def test_a_starting_task_whose_container_never_started_is_started_again():
    p = plan({"b": pb.STARTING, "c": pb.PREPARING}, {"b", "c"}, never_started={"b", "c"})
    assert p.adopt == {"b": pb.PREPARING, "c": pb.PREPARING} and not p.healthy


def test_containers_of_unassigned_tasks_are_removed_and_those_of_ended_ones_held_for_their_logs():
    p = plan({"a": pb.RUNNING, "done": pb.COMPLETE}, {"a", "done", "replaced", "old"}, history={"old", "gone"})
    assert p.adopt == {"a": pb.RUNNING}
    assert p.ended == {"done": pb.COMPLETE}, "still assigned: held until it leaves the set, like any ended task"
    assert p.history == ["old"], "in the task history: its log is kept before the container goes"
    assert p.remove == ["replaced"]


def test_running_task_without_container_is_lost():
    p = plan({"a": pb.RUNNING, "new": pb.ASSIGNED}, set())
    assert p.lost == ["a"] and not p.adopt and not p.remove




def test_a_task_whose_container_was_being_prepared_is_adopted_where_it_was():
    assert plan({"a": pb.PREPARING}, {"a"}).adopt == {"a": pb.PREPARING}


def test_a_task_not_yet_prepared_is_neither_adopted_nor_lost():
    p = plan({"a": pb.ACCEPTED, "b": pb.ASSIGNED}, set())
    assert not p.adopt and not p.lost and not p.remove


def test_a_container_prepared_before_the_cluster_heard_of_it_is_adopted_as_preparing():
    # the agent created the container and went down before its PREPARING report reached a manager
    assert plan({"a": pb.ACCEPTED, "b": pb.ASSIGNED}, {"a", "b"}).adopt == {"a": pb.PREPARING, "b": pb.PREPARING}


@given(
    assigned=st.dictionaries(TIDS, st.sampled_from(list(pb.TaskState.values())), max_size=8),
    leftovers=st.sets(TIDS, max_size=8),
    history=st.sets(TIDS, max_size=8),
)
def test_every_leftover_container_is_adopted_or_deleted_exactly_once(assigned, leftovers, history):
    p = plan(assigned, leftovers, history=history)
    settled = list(p.adopt) + list(p.ended) + p.history + p.remove
    assert sorted(settled) == sorted(leftovers)
    assert set(p.history) <= history and not set(p.remove) & history, "a history task's container keeps its log"
    assert all(assigned[t] >= pb.COMPLETE for t in p.ended)
    assert not set(p.lost) & leftovers, "a task with a container is never lost"
    assert all(assigned[t] < pb.COMPLETE for t in list(p.adopt) + p.lost), "only live tasks are adopted or lost"
    assert all(state >= pb.PREPARING for state in p.adopt.values()), "an adopted task has a container: it was prepared"
