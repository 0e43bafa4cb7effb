"""The executor on the embedded runtime: a task's container config (pure), and how runtime errors surface.

The runtime here is a stand-in with the calls the executor makes; the real runtime runs in
tests/integration (test_health_checks, test_runtime_cluster_images, the e2e suite).
"""

from __future__ import annotations

import pytest

from shoal.proto import types_pb2 as pb
from shoal.runtime import ContainerError, ContainerNotFound
from shoal.worker.executor import ExecutorError, Exit
from shoal.worker.runtime_executor import RuntimeExecutor, container_config
from tests.fixtures.fake_runtime import Info, Runtime


def task(**container) -> pb.Task:
    t = pb.Task(id="abcdefghijklmnopqrstuvwxy", service_id="svc1", service_name="web", slot=3, node_id="node-9")
    t.spec.container.image = "busybox:1"
    for k, v in container.items():
        f = getattr(t.spec.container, k)
        if isinstance(v, list):
            f.extend(v)
        else:
            setattr(t.spec.container, k, v)
    return t


# ---- container_config (pure) --------------------------------------------------------------------------


def test_the_seccomp_setting_init_and_the_nodes_masked_paths_reach_the_container() -> None:
    cfg = container_config(task(seccomp_profile="unconfined", init=True), ["/var/lib/shoal", "/etc/shoal"])
    assert (cfg.seccomp, cfg.init, cfg.masked_paths) == ("unconfined", True, ["/var/lib/shoal", "/etc/shoal"])
    assert container_config(task()).seccomp == "" and container_config(task()).masked_paths == []


def test_a_task_becomes_a_container_named_after_it_with_docker_like_defaults():
    cfg = container_config(task())
    assert cfg.id == "abcdefghijklmnopqrstuvwxy" and cfg.image == "busybox:1"
    assert cfg.hostname == "abcdefghijkl", "the hostname defaults to the first 12 characters of the id"
    assert cfg.entrypoint is None and cfg.args == []
    assert cfg.env == ["SHOAL_TASK_NAME=web.3", "SHOAL_TASK_ID=abcdefghijklmnopqrstuvwxy", "SHOAL_SERVICE_NAME=web",
                       "SHOAL_NODE_ID=node-9"]
    assert cfg.stop_grace_s == 10.0, "docker's default stop grace"
    assert (cfg.memory_bytes, cfg.pids_limit, cfg.nano_cpus) == (0, 0, 0)


def test_the_service_and_slot_are_labels_on_the_container():
    assert container_config(task()).labels == {
        "shoal.service.id": "svc1",
        "shoal.service.name": "web",
        "shoal.task.id": "abcdefghijklmnopqrstuvwxy",
        "shoal.task.slot": "3",
    }


def test_command_replaces_the_entrypoint_and_args_the_cmd():
    cfg = container_config(task(command=["/bin/sh", "-c"], args=["echo hi"]))
    assert cfg.entrypoint == ["/bin/sh", "-c"] and cfg.args == ["echo hi"]


def test_args_alone_keep_the_images_entrypoint():
    cfg = container_config(task(args=["sleep", "5"]))
    assert cfg.entrypoint is None and cfg.args == ["sleep", "5"]


def test_env_dir_user_and_hostname_pass_through():
    cfg = container_config(task(env=["A=1", "B=2"], dir="/srv", user="1000:1000", hostname="web-3"))
    assert (cfg.env[:2], cfg.workdir, cfg.user, cfg.hostname) == (["A=1", "B=2"], "/srv", "1000:1000", "web-3")


def test_a_task_knows_its_name_and_node_unless_its_spec_says_otherwise():
    env = container_config(task(env=["SHOAL_TASK_NAME=mine"]), node_name="worker2").env
    assert env[0] == "SHOAL_TASK_NAME=mine" and "SHOAL_NODE_HOSTNAME=worker2" in env
    assert not any(e.startswith("SHOAL_TASK_NAME=web") for e in env)
    global_task = task()
    global_task.slot = 0
    assert "SHOAL_TASK_NAME=web.node-9" in container_config(global_task).env


def test_limits_and_stop_grace_come_from_the_spec():
    t = task(stop_grace_period_ns=2_500_000_000)
    lim = t.spec.resources.limits
    lim.memory_bytes, lim.pids, lim.nano_cpus = 64 << 20, 50, 500_000_000
    cfg = container_config(t)
    assert (cfg.memory_bytes, cfg.pids_limit, cfg.nano_cpus, cfg.stop_grace_s) == (64 << 20, 50, 500_000_000, 2.5)


def test_an_explicit_zero_stop_grace_is_kept():
    assert container_config(task(stop_grace_period_ns=0)).stop_grace_s == 0.0


# ---- RuntimeExecutor ---------------------------------------------------------------------------------


class Puller:
    def __init__(self, rt: Runtime, has: bool = True, error: str = "") -> None:
        self.rt, self.has, self.error, self.asked = rt, has, error, []

    async def __call__(self, ref: str) -> bool:
        self.asked.append(ref)
        if self.error:
            raise ContainerError(self.error)
        if self.has:
            self.rt.images.add(ref)
        return self.has


async def test_a_restarted_agent_reads_which_task_a_leftover_container_ran_from_its_labels():
    """What keeping a history task's log needs after a kill -9 (its service, for ``svc logs SERVICE``)."""
    rt = Runtime()
    t = task()
    await RuntimeExecutor(rt).prepare(t)  # type: ignore[arg-type]
    again = RuntimeExecutor(rt)  # type: ignore[arg-type]
    assert await again.made_for() == {t.id: pb.Task(id=t.id, service_id="svc1", service_name="web", slot=3)}
    rt.containers[t.id].labels["shoal.task.slot"] = "x"  # a label that does not parse: no slot, nothing raised
    assert (await again.made_for())[t.id].slot == 0


async def test_prepare_creates_the_container_and_start_returns_its_pid():
    rt = Runtime()
    ex = RuntimeExecutor(rt)  # type: ignore[arg-type]  # the stand-in has every call the executor makes
    t = task()
    await ex.prepare(t)
    assert await ex.start(t) == 4321 and await ex.list() == [t.id]


async def test_an_image_the_node_lacks_is_pulled_from_the_cluster_then_created():
    rt = Runtime(images=set())
    puller = Puller(rt)
    ex = RuntimeExecutor(rt, puller=puller)  # type: ignore[arg-type]
    await ex.prepare(task())
    assert puller.asked == ["busybox:1"] and await ex.list() == ["abcdefghijklmnopqrstuvwxy"]


async def test_an_image_nobody_has_names_the_image_and_the_node():
    rt = Runtime(images=set())
    ex = RuntimeExecutor(rt, node_name="w1", puller=Puller(rt, has=False))  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="^image busybox:1 not found on node w1$"):
        await ex.prepare(task())


async def test_without_a_puller_a_missing_image_names_the_tasks_node():
    ex = RuntimeExecutor(Runtime(images=set()))  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="^image busybox:1 not found on node node-9$"):
        await ex.prepare(task())


async def test_a_failed_pull_says_why():
    rt = Runtime(images=set())
    ex = RuntimeExecutor(rt, puller=Puller(rt, error="cannot pull layer sha256:aa: manager gone"))  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="cannot pull layer sha256:aa: manager gone"):
        await ex.prepare(task())


async def test_a_pulled_image_that_still_is_not_there_is_not_pulled_twice():
    rt = Runtime(images=set())

    class Liar(Puller):
        async def __call__(self, ref: str) -> bool:
            self.asked.append(ref)
            return True  # says yes, stores nothing

    liar = Liar(rt)
    ex = RuntimeExecutor(rt, node_name="w1", puller=liar)  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="not found on node w1"):
        await ex.prepare(task())
    assert liar.asked == ["busybox:1"]


@pytest.mark.parametrize("call", ["create", "start"])
async def test_runtime_errors_while_preparing_or_starting_become_executor_errors(call):
    rt = Runtime()
    rt.fail[call] = ContainerError(f"{call}: exec: nosuch: not found")
    ex = RuntimeExecutor(rt)  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match=f"{call}: exec: nosuch: not found"):
        await ex.prepare(task())
        await ex.start(task())


async def test_wait_reports_the_exit_and_an_oom_kill():
    rt = Runtime()
    rt.containers["t"] = Info("t", exit_code=137, oom_killed=True)
    assert await RuntimeExecutor(rt).wait("t") == Exit(137, True)  # type: ignore[arg-type]


async def test_an_exit_without_a_code_is_minus_one():
    rt = Runtime()
    rt.containers["t"] = Info("t", exit_code=None)
    assert (await RuntimeExecutor(rt).wait("t")).exit_code == -1  # type: ignore[arg-type]


async def test_stop_and_remove_of_a_container_that_is_gone_are_fine():
    rt = Runtime()
    rt.fail["stop"] = ContainerError("no such container: t")
    rt.fail["delete"] = ContainerError("no such container: t")
    ex = RuntimeExecutor(rt)  # type: ignore[arg-type]
    await ex.stop("t", 1.0)
    await ex.remove("t")


async def test_stop_passes_the_grace_on():
    rt = Runtime()
    await RuntimeExecutor(rt).stop("t", 7.5)  # type: ignore[arg-type]
    assert rt.stopped == [("t", 7.5)]


async def test_exec_runs_a_probe_and_an_exec_error_is_an_executor_error():
    rt = Runtime()
    ex = RuntimeExecutor(rt)  # type: ignore[arg-type]
    assert await ex.exec("t", ["true"], 1.0) == (0, b"out")
    rt.fail["exec"] = ContainerError("container t is not running")
    with pytest.raises(ExecutorError, match="not running"):
        await ex.exec("t", ["true"], 1.0)


# ---- networking: a wired task joins its namespace; the wiring is undone with the container -------------


class Network:
    """Stands in for ``NetAgent``: records what it was asked to wire, re-wire and unwire."""

    def __init__(self, fail: str = "") -> None:
        self.fail, self.wired, self.rewired, self.unwired = fail, [], [], []

    async def wire(self, t: pb.Task, alongside=None):
        """As ``TaskWiring.wire``: ``alongside`` runs while the namespace is made; either's failure undoes the wiring."""
        from shoal.worker.network.links import PlumbingError
        from shoal.worker.tasknet import Wiring

        wiring = Wiring(f"/state/{t.id}/netns", [{"type": "bind", "source": f"/state/{t.id}/resolv.conf",
                                                  "target": "/etc/resolv.conf", "readonly": True}])
        if alongside is not None:
            try:
                await alongside(wiring)
            except BaseException:
                self.unwired.append(t.id)
                raise
        if self.fail:
            self.unwired.append(t.id)
            raise PlumbingError(self.fail)
        self.wired.append(t.id)
        return wiring

    async def rewire(self, t: pb.Task) -> None:
        self.rewired.append(t.id)

    async def unwire(self, task_id: str, emptied: bool = False) -> None:
        self.unwired.append(task_id)
        self.emptied = emptied


def test_a_wired_task_joins_its_namespace_with_the_nodes_resolver():
    from shoal.worker.tasknet import Wiring

    wiring = Wiring("/state/t1/netns", [{"type": "bind", "source": "/state/t1/resolv.conf", "target": "/etc/resolv.conf",
                                         "readonly": True}])
    cfg = container_config(task(), wiring=wiring)
    assert cfg.netns_path == "/state/t1/netns"
    assert cfg.mounts == wiring.mounts and cfg.mounts is not wiring.mounts
    assert (container_config(task()).netns_path, container_config(task()).mounts) == ("", [])


async def test_prepare_wires_first_and_remove_unwires_after_the_container_is_gone():
    rt, net = Runtime(), Network()
    ex = RuntimeExecutor(rt, network=net)  # type: ignore[arg-type]
    t = task()
    await ex.prepare(t)
    assert net.wired == [t.id] and t.id in rt.containers
    await ex.adopt(t)
    assert net.rewired == [t.id]
    await ex.remove(t.id)
    assert net.unwired == [t.id] and t.id not in rt.containers
    assert net.emptied  # nothing runs in its namespace: its links go with it


@pytest.mark.parametrize(("error", "emptied"), [(ContainerNotFound("no such container"), True),
                                                (ContainerError("cgroup busy"), False)])
async def test_a_namespace_keeps_its_links_to_the_kernel_only_when_the_container_is_gone(error, emptied):
    rt, net = Runtime(), Network()
    ex = RuntimeExecutor(rt, network=net)  # type: ignore[arg-type]
    t = task()
    await ex.prepare(t)
    rt.fail["delete"] = error
    await ex.remove(t.id)
    assert net.unwired == [t.id] and net.emptied is emptied  # a container not deleted may still use its veth


async def test_a_create_that_fails_undoes_the_wiring():
    rt, net = Runtime(images=set()), Network()
    ex = RuntimeExecutor(rt, node_name="w1", network=net)  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="not found on node w1"):
        await ex.prepare(task())
    assert net.unwired == ["abcdefghijklmnopqrstuvwxy"]


async def test_a_wiring_failure_fails_the_task_with_its_reason_and_leaves_no_container():
    rt = Runtime()
    ex = RuntimeExecutor(rt, network=Network(fail="bridge shoal0 does not exist"))  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="^network setup failed: bridge shoal0 does not exist$"):
        await ex.prepare(task())
    assert rt.containers == {}  # created while the namespace was made, deleted when that failed


async def test_the_create_runs_while_the_namespace_is_made_and_joins_it():
    rt, net = Runtime(), Network()
    configs = []
    create = rt.create

    async def recording(config):
        assert not net.wired, "the create runs before the wiring is done"
        configs.append(config)
        return await create(config)

    rt.create = recording  # type: ignore[method-assign]
    ex = RuntimeExecutor(rt, network=net)  # type: ignore[arg-type]
    t = task()
    await ex.prepare(t)
    assert net.wired == [t.id] and t.id in rt.containers
    assert [c.netns_path for c in configs] == [f"/state/{t.id}/netns"]


async def test_a_create_error_that_is_an_os_error_is_not_called_a_network_failure():
    rt, net = Runtime(), Network()
    rt.fail["create"] = ConnectionResetError("the launcher went away")  # type: ignore[assignment]
    ex = RuntimeExecutor(rt, network=net)  # type: ignore[arg-type]
    with pytest.raises(ConnectionResetError):
        await ex.prepare(task())
    assert net.unwired == [task().id] and rt.containers == {}
