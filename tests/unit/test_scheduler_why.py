"""``svc ps --why`` / ``svc inspect``: the scheduler's full explanations grouped by reason."""

from shoal.cli.service_views import pending_reasons, why_lines
from shoal.proto import types_pb2 as pb


def t(slot, state=pb.PENDING, err="", desired=pb.RUNNING) -> pb.Task:
    task = pb.Task(id=f"t{slot}", service_id="s", service_name="web", slot=slot, desired_state=desired)
    task.status.state = state
    task.status.err = err
    return task


def test_pending_tasks_are_grouped_by_reason():
    mem = "no suitable node (3 nodes lack 512MiB memory; 2 nodes fail node.labels.zone==east)"
    tasks = [t(1, pb.RUNNING), t(2, err=mem), t(3, err=mem), t(4, err="no suitable node (1 node is not ready)"), t(5, err=mem, desired=pb.SHUTDOWN)]
    assert pending_reasons(tasks) == {mem: ["web.2", "web.3"], "no suitable node (1 node is not ready)": ["web.4"]}
    assert why_lines(tasks)[0] == f"web.2, web.3: {mem}"
    assert why_lines([t(1, pb.RUNNING)]) == []
