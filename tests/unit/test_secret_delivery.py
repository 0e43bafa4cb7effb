"""Secrets at rest and in flight: sealing with the cluster data key, which node receives which secret,
and what the agent holds. The attacks are written as tests: an etcd reader, a copied blob, a worker
that runs no task using a secret."""

from __future__ import annotations

import pytest

from shoal.manager import secretbox
from shoal.manager.dispatcher.payloads import PayloadSet, needed
from shoal.manager.sealing import SealError
from shoal.manager.store import objects
from shoal.manager.store.memory import MemoryStore
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.runtime.files import ContainerFile
from shoal.worker.files import MissingFile, TaskFiles

KEK = b"k" * 32
CLEAR = b"hunter2-the-password"


def test_sealed_secret_does_not_contain_the_clear_data_and_opens_only_for_its_id() -> None:
    box = secretbox.SecretBox(b"d" * 32)
    blob = box.seal("s1", CLEAR)
    assert CLEAR not in blob
    assert box.open("s1", blob) == CLEAR
    with pytest.raises(SealError):  # an etcd writer copying s1's blob onto s2 gets nothing
        box.open("s2", blob)
    with pytest.raises(SealError):
        secretbox.SecretBox(b"e" * 32).open("s1", blob)


def test_box_repr_never_shows_the_key() -> None:
    assert "ddd" not in repr(secretbox.SecretBox(b"d" * 32))


async def test_data_key_is_created_once_sealed_and_reopened_with_the_kek() -> None:
    store = MemoryStore()
    first = await secretbox.ensure(store, KEK)
    again = await secretbox.ensure(store, KEK)
    assert first.key == again.key
    stored = (await objects.data_key.get(store, "")).obj  # type: ignore[union-attr]
    assert first.key not in stored.key_sealed  # etcd holds it sealed only
    with pytest.raises(SealError, match="cannot be unsealed"):
        await secretbox.ensure(store, b"x" * 32)  # another cluster's KEK


def _task(tid: str, secrets: list[str], desired: int = pb.RUNNING, configs: list[str] = ()) -> pb.Task:  # type: ignore[assignment]
    t = pb.Task(id=tid, desired_state=desired)  # type: ignore[arg-type]
    for s in secrets:
        t.spec.container.secrets.add(secret_id=s, secret_name=s, file=pb.FileTarget(name=s, mode=0o400))
    for c in configs:
        t.spec.container.configs.add(config_id=c, config_name=c, file=pb.FileTarget(name="/etc/" + c))
    return t


def test_only_tasks_still_to_start_need_their_files() -> None:
    tasks = [_task("a", ["s1"]), _task("b", ["s2"]), _task("c", ["s3"], desired=pb.SHUTDOWN)]
    states = {"a": pb.ASSIGNED, "b": pb.RUNNING, "c": pb.ASSIGNED}
    assert needed(tasks, lambda t: states[t.id]) == ({"s1"}, set())


def test_a_node_gets_the_secrets_of_its_own_tasks_only() -> None:
    data = {"s1": b"one", "s2": b"two"}
    ps = PayloadSet()
    msg = ps.diff([_task("a", ["s1"])], {"a"}, lambda t: pb.ASSIGNED, True, data.get, data.get)
    assert msg is not None and [(f.id, f.data) for f in msg.secrets] == [("s1", b"one")]
    # a task the node was not sent (held back, or another node's) does not count
    assert ps.diff([_task("a", ["s1"]), _task("x", ["s2"])], {"a"}, lambda t: pb.ASSIGNED, False, data.get, data.get) is None


def test_secret_is_dropped_once_no_task_of_the_node_still_has_to_start() -> None:
    data = {"s1": b"one"}
    ps = PayloadSet()
    ps.diff([_task("a", ["s1"]), _task("b", ["s1"])], {"a", "b"}, lambda t: pb.ASSIGNED, True, data.get, data.get)
    states = {"a": pb.RUNNING, "b": pb.STARTING}
    assert ps.diff([_task("a", ["s1"]), _task("b", ["s1"])], {"a", "b"}, lambda t: states[t.id], False, data.get, data.get) is None
    states["b"] = pb.RUNNING
    msg = ps.diff([_task("a", ["s1"]), _task("b", ["s1"])], {"a", "b"}, lambda t: states[t.id], False, data.get, data.get)
    assert msg is not None and list(msg.removed_secrets) == ["s1"] and not msg.secrets
    assert ps.secrets == set()


def test_a_secret_that_cannot_be_opened_is_not_sent_and_not_counted_as_held() -> None:
    ps = PayloadSet()
    assert ps.diff([_task("a", ["gone"])], {"a"}, lambda t: pb.ASSIGNED, True, lambda _: None, lambda _: None) is None
    assert ps.secrets == set()


def test_files_over_the_budget_go_in_later_messages_and_their_tasks_wait() -> None:
    """A node's tasks may need more than one message carries: what does not fit is deferred, the tasks that
    need it are not complete, and the next diffs send the rest (secrets and configs share the budget)."""
    data = {f"s{i}": bytes([i]) * 10 for i in range(4)} | {"c0": b"c" * 10}
    tasks = [_task("a", ["s0", "s1"]), _task("b", ["s2", "s3"], configs=["c0"])]
    ps = PayloadSet()
    first = ps.diff(tasks, {"a", "b"}, lambda t: pb.ASSIGNED, True, data.get, data.get, budget=25)
    assert first is not None and [f.id for f in first.secrets] == ["s0", "s1"] and ps.deferred == {"s2", "s3", "c0"}
    assert ps.complete(tasks[0]) and not ps.complete(tasks[1])
    second = ps.diff(tasks, {"a", "b"}, lambda t: pb.ASSIGNED, False, data.get, data.get, budget=25)
    assert second is not None and [f.id for f in second.secrets] == ["s2", "s3"] and ps.deferred == {"c0"}
    third = ps.diff(tasks, {"a", "b"}, lambda t: pb.ASSIGNED, False, data.get, data.get, budget=25)
    assert third is not None and [f.id for f in third.configs] == ["c0"] and not ps.deferred and ps.complete(tasks[1])
    assert ps.diff(tasks, {"a", "b"}, lambda t: pb.ASSIGNED, False, data.get, data.get, budget=25) is None


def test_one_object_larger_than_the_budget_still_goes_alone() -> None:
    data = {"s0": b"x" * 40, "s1": b"y"}
    ps = PayloadSet()
    msg = ps.diff([_task("a", ["s0", "s1"])], {"a"}, lambda t: pb.ASSIGNED, True, data.get, data.get, budget=25)
    assert msg is not None and [f.id for f in msg.secrets] == ["s0"] and ps.deferred == {"s1"}


def test_a_secret_that_cannot_be_opened_does_not_hold_its_task_back() -> None:
    ps = PayloadSet()
    ps.diff([_task("a", ["gone"])], {"a"}, lambda t: pb.ASSIGNED, True, lambda _: None, lambda _: None, budget=1)
    assert ps.complete(_task("a", ["gone"])), "sent now: the node names the missing secret when the task cannot start"


def test_configs_travel_the_same_way() -> None:
    ps = PayloadSet()
    msg = ps.diff([_task("a", [], configs=["c1"])], {"a"}, lambda t: pb.PREPARING, True, lambda _: None, {"c1": b"cfg"}.get)
    assert msg is not None and [f.id for f in msg.configs] == ["c1"]


def test_agent_holds_what_it_is_sent_and_a_full_set_replaces_it() -> None:
    files = TaskFiles()
    files.apply(dpb.Assignments(full=True, secrets=[dpb.FileData(id="s1", data=b"one")]))
    files.apply(dpb.Assignments(secrets=[dpb.FileData(id="s2", data=b"two")], removed_secrets=["s1"]))
    assert files.held("secret") == {"s2"}
    files.apply(dpb.Assignments(full=True))
    assert files.held("secret") == set()


def test_files_for_a_task_carry_paths_owner_and_mode() -> None:
    files = TaskFiles()
    files.apply(dpb.Assignments(full=True, secrets=[dpb.FileData(id="s1", data=b"one")], configs=[dpb.FileData(id="c1", data=b"cfg")]))
    t = _task("a", ["s1"], configs=["c1"])
    t.spec.container.secrets[0].file.uid = "1000"
    got = files.files_for(t)
    assert got == [ContainerFile("/run/secrets/s1", b"one", 1000, 0, 0o400), ContainerFile("/etc/c1", b"cfg", 0, 0, 0o444)]
    assert "one" not in repr(got)  # a log line of the files never shows the data


def test_a_task_whose_secret_the_node_lacks_fails_naming_it() -> None:
    with pytest.raises(MissingFile, match="secret s9 is not available on this node"):
        TaskFiles().files_for(_task("a", ["s9"]))


def test_the_managers_limit_on_a_tasks_files_is_the_runtimes() -> None:
    from shoal import secretspec
    from shoal.runtime import files

    assert secretspec.MAX_TASK_FILES == files.MAX_TOTAL
    secretspec.check_task_files([secretspec.MAX_SIZE - 1] * 32)
    with pytest.raises(secretspec.SecretSpecError, match="at most 16777216 bytes"):
        secretspec.check_task_files([secretspec.MAX_SIZE - 1] * 34)


def test_a_relative_config_target_is_placed_under_the_root_as_dockers() -> None:
    """docker (moby's getConfigTargetPath) joins a relative config target to "/", a relative secret
    target to /run/secrets: ``--config src=app,target=app.conf`` is /app.conf in the task."""
    files = TaskFiles()
    files.apply(dpb.Assignments(full=True, secrets=[dpb.FileData(id="s1", data=b"one")], configs=[dpb.FileData(id="c1", data=b"cfg")]))
    t = _task("a", ["s1"], configs=["c1"])
    t.spec.container.configs[0].file.name = "conf.d/app.conf"
    t.spec.container.secrets[0].file.name = "keys/db"
    assert [f.target for f in files.files_for(t)] == ["/run/secrets/keys/db", "/conf.d/app.conf"]
