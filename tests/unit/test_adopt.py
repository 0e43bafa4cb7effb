"""What a restarted agent adopts, marks lost, or deletes (pure planning)."""

from __future__ import annotations

from shoal.proto import types_pb2 as pb
from shoal.worker.adopt import plan


def test_running_tasks_with_containers_are_adopted():
    p = plan({"a": pb.RUNNING, "b": pb.STARTING, "c": pb.ASSIGNED}, {"a", "b"})
    assert p.adopt == {"a": pb.RUNNING, "b": pb.STARTING} and not p.lost and not p.remove


def test_containers_of_unassigned_or_finished_tasks_are_removed():
    p = plan({"a": pb.RUNNING, "done": pb.COMPLETE}, {"a", "done", "replaced"})
    assert p.adopt == {"a": pb.RUNNING}
    assert p.remove == ["done", "replaced"]


def test_running_task_without_container_is_lost():
    p = plan({"a": pb.RUNNING, "new": pb.ASSIGNED}, set())
    assert p.lost == ["a"] and not p.adopt and not p.remove
