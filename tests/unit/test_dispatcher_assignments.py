"""The pure parts of the dispatcher: which tasks a node is told about, the increments, and the identity rules."""

from __future__ import annotations

import pytest

from shoal.manager.auth import request_id_mismatch, role_changed
from shoal.manager.dispatcher.assignments import AssignmentSet, wanted
from shoal.proto import types_pb2 as pb


def task(tid: str, desired: int = pb.RUNNING) -> pb.Task:
    return pb.Task(id=tid, node_id="n1", desired_state=desired)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "desired", "told"),
    [
        (pb.PENDING, pb.RUNNING, False),  # not placed yet (a global task waiting for the scheduler)
        (pb.ASSIGNED, pb.RUNNING, True),
        (pb.RUNNING, pb.RUNNING, True),
        (pb.FAILED, pb.RUNNING, True),  # ended but still wanted: the orchestrator decides, the agent keeps it
        (pb.RUNNING, pb.SHUTDOWN, True),  # must be stopped
        (pb.SHUTDOWN, pb.SHUTDOWN, False),  # stopped and unwanted: dropped, the agent cleans up
        (pb.COMPLETE, pb.COMPLETE, False),  # a finished job
        (pb.FAILED, pb.REMOVE, False),
        (pb.ASSIGNED, pb.SHUTDOWN, True),  # sent, never started: the agent still has to let it go
    ],
)
def test_which_tasks_a_node_is_told_about(state, desired, told):
    assert wanted(task("t", desired), state) is told


def states(**by_id: int):
    return lambda t: by_id[t.id]


def revs(**by_id: int):
    return lambda tid: by_id[tid]


def test_a_full_set_sends_every_wanted_task_with_its_revision_and_status():
    sent = AssignmentSet()
    tasks = [task("a"), task("b"), task("gone", pb.SHUTDOWN)]
    reports = {"a": pb.TaskStatus(state=pb.RUNNING), "b": pb.TaskStatus(state=pb.ASSIGNED)}
    msg = sent.diff(tasks, states(a=pb.RUNNING, b=pb.ASSIGNED, gone=pb.SHUTDOWN), revs(a=5, b=7, gone=9), True, lambda t: reports[t.id])
    assert msg.full and not msg.removed
    assert [(t.id, t.meta.version, t.status.state) for t in msg.updated] == [("a", 5, pb.RUNNING), ("b", 7, pb.ASSIGNED)]
    assert sent.sent == {"a": 5, "b": 7}


def test_a_full_set_is_sent_even_when_empty():
    msg = AssignmentSet().diff([], states(), revs(), True)
    assert msg is not None and msg.full and not msg.updated


def test_an_increment_names_what_changed_and_what_went():
    sent = AssignmentSet({"a": 5, "b": 7, "c": 8})
    tasks = [task("a"), task("b"), task("d")]
    msg = sent.diff(tasks, states(a=pb.RUNNING, b=pb.RUNNING, d=pb.ASSIGNED), revs(a=5, b=9, d=10), False)
    assert not msg.full
    assert [t.id for t in msg.updated] == ["b", "d"]
    assert list(msg.removed) == ["c"]
    assert sent.sent == {"a": 5, "b": 9, "d": 10}


def test_an_increment_carries_the_task_as_stored_not_a_status_merge():
    sent = AssignmentSet({"a": 5})
    t = task("a")
    t.status.state = pb.ASSIGNED
    msg = sent.diff([t], states(a=pb.RUNNING), revs(a=6), False, lambda _t: pb.TaskStatus(state=pb.RUNNING))
    assert msg.updated[0].status.state == pb.ASSIGNED, "only a full set (a restarted agent) resumes from the reports"


def test_nothing_changed_means_no_message():
    sent = AssignmentSet({"a": 5})
    assert sent.diff([task("a")], states(a=pb.RUNNING), revs(a=5), False) is None


def test_a_task_that_dropped_out_is_removed_once():
    sent = AssignmentSet({"a": 5})
    t = task("a", pb.SHUTDOWN)
    msg = sent.diff([t], states(a=pb.SHUTDOWN), revs(a=6), False)
    assert list(msg.removed) == ["a"]
    assert sent.diff([t], states(a=pb.SHUTDOWN), revs(a=6), False) is None


def test_removed_ids_are_sorted():
    sent = AssignmentSet({"c": 1, "a": 1, "b": 1})
    assert list(sent.diff([], states(), revs(), False).removed) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("record", "cert", "changed"),
    [
        (pb.NodeSpec.WORKER, "worker", False),
        (pb.NodeSpec.MANAGER, "manager", False),
        (pb.NodeSpec.MANAGER, "worker", True),  # promoted
        (pb.NodeSpec.WORKER, "manager", True),  # demoted
        (pb.NodeSpec.MANAGER, "admin", False),  # not a node certificate: no role to compare
        (pb.NodeSpec.WORKER, "", False),
    ],
)
def test_a_role_change_is_the_record_disagreeing_with_the_certificate(record, cert, changed):
    assert role_changed(record, cert) is changed


@pytest.mark.parametrize(
    ("cert_node", "requested", "mismatch"),
    [("n1", "n1", False), ("n1", "", False), ("n1", "n2", True)],
)
def test_a_request_may_name_only_the_callers_own_node(cert_node, requested, mismatch):
    assert request_id_mismatch(cert_node, requested) is mismatch
