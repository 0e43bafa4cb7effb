"""A task's docker-flag settings and templates as the node's runtime receives them (worker/taskspec)."""

from __future__ import annotations

import pytest

from shoal.proto import types_pb2 as pb
from shoal.runtime import ContainerConfig, ContainerFile
from shoal.runtime.spec import validate
from shoal.worker import taskspec
from shoal.worker.executor import ExecutorError
from shoal.worker.runtime_executor import RuntimeExecutor, container_config
from tests.fixtures.fake_runtime import Runtime


def _task(slot: int = 2, **container: object) -> pb.Task:
    t = pb.Task(id="t" * 25, service_id="s" * 25, service_name="web", slot=slot, node_id="n" * 25)
    t.spec.labels["tier"] = "front"
    t.spec.container.CopyFrom(pb.ContainerSpec(image="busybox:1", **container))  # type: ignore[arg-type]
    return t


def test_templates_expand_with_the_tasks_own_facts_on_its_node() -> None:
    t = _task(
        hostname="{{.Service.Name}}-{{.Task.Slot}}",
        env=["WHERE={{.Node.Hostname}}/{{.Node.ID}}", 'TIER={{index .Service.Labels "tier"}}', "NAME={{.Task.Name}}"],
        mounts=[pb.Mount(source="data-{{.Task.Slot}}", target="/data/{{.Service.ID}}"),
                pb.Mount(type=pb.Mount.BIND, source="/srv/{{.Task.ID}}", target="/srv", readonly=True)],
    )  # fmt: skip
    cfg = container_config(t, node_name="node-1")
    assert cfg.hostname == "web-2"
    assert f"WHERE=node-1/{'n' * 25}" in cfg.env and "TIER=front" in cfg.env
    assert f"NAME=web.2.{'t' * 25}" in cfg.env
    assert [(m["type"], m["source"], m["target"], m["readonly"]) for m in cfg.mounts] == [
        ("volume", "data-2", f"/data/{'s' * 25}", False), ("bind", f"/srv/{'t' * 25}", "/srv", True)]
    validate(cfg)  # what the runtime accepts


def test_a_global_task_has_its_node_as_slot() -> None:
    t = _task(slot=0, hostname="{{.Task.Slot}}")
    assert container_config(t, node_name="n").hostname == "n" * 25
    assert taskspec.full_task_name(t) == f"web.{'n' * 25}.{'t' * 25}"


def test_the_docker_flag_fields_reach_the_runtime_config() -> None:
    t = _task(read_only=True, cap_add=["NET_ADMIN"], cap_drop=["CHOWN"], stop_signal="SIGUSR1",
              ulimits=[pb.Ulimit(name="nofile", soft=10, hard=20)], sysctls={"net.core.somaxconn": "64"}, groups=["audio"],
              mounts=[pb.Mount(type=pb.Mount.TMPFS, target="/t", tmpfs_size_bytes=4096, tmpfs_mode=0o700),
                      pb.Mount(type=pb.Mount.VOLUME, source="logs", target="/l", volume_subpath="{{.Task.Slot}}"),
                      pb.Mount(type=pb.Mount.BIND, source="/srv", target="/srv", bind_propagation="rslave")])  # fmt: skip
    cfg = container_config(t)
    assert isinstance(cfg, ContainerConfig)
    assert (cfg.read_only, cfg.cap_add, cfg.cap_drop, cfg.stop_signal) == (True, ["NET_ADMIN"], ["CHOWN"], "SIGUSR1")
    assert (cfg.ulimits, cfg.sysctls, cfg.group_add) == ([{"name": "nofile", "soft": 10, "hard": 20}], {"net.core.somaxconn": "64"}, ["audio"])
    assert cfg.mounts[0] == {"type": "tmpfs", "source": "", "target": "/t", "readonly": False, "volume_nocopy": False,
                             "tmpfs_size": 4096, "tmpfs_mode": 0o700, "volume_subpath": "", "bind_propagation": ""}
    assert (cfg.log_max_size, cfg.log_max_files) == (0, 0), "no log options: the runtime's defaults"
    t.spec.container.log_options.update({"max-size": "2k", "max-file": "5"})
    assert (container_config(t).log_max_size, container_config(t).log_max_files) == (2048, 5)
    assert (cfg.mounts[1]["volume_subpath"], cfg.mounts[2]["bind_propagation"]) == ("2", "rslave"), "the subpath expands per slot"
    spec = validate(cfg)
    assert (spec.read_only, spec.stop_signal, spec.ulimits) == (True, 10, [["nofile", 10, 20]])


async def test_a_template_that_cannot_expand_rejects_the_task_with_the_reason() -> None:
    rt = Runtime()
    ex = RuntimeExecutor(rt)  # type: ignore[arg-type]  # the stand-in has every call the executor makes
    with pytest.raises(ExecutorError, match="unknown field"):
        await ex.prepare(_task(hostname="{{.Task.Nope}}"))
    assert rt.containers == {}


# ---- --dns* on a node without networking --------------------------------------------------------------


def test_resolv_conf_is_written_from_the_dns_flags() -> None:
    dns = pb.DNSConfig(nameservers=["10.0.0.2", "127.0.0.1"], search=["example.com", "corp"], options=["ndots:3", "timeout:1"])
    text = taskspec.resolv_conf(dns, ["192.0.2.53"])
    assert text == b"nameserver 10.0.0.2\nnameserver 127.0.0.1\nsearch example.com corp\noptions ndots:3 timeout:1\n"


def test_without_dns_the_hosts_servers_are_used_minus_loopback_ones() -> None:
    text = taskspec.resolv_conf(pb.DNSConfig(search=["example.com"]), ["127.0.0.53", "192.0.2.53", "::1", "2001:db8::1"])
    assert text == b"nameserver 192.0.2.53\nnameserver 2001:db8::1\nsearch example.com\n"


def test_no_dns_flag_leaves_the_images_resolv_conf() -> None:
    assert taskspec.resolv_conf(pb.DNSConfig(), ["192.0.2.53"]) is None


class Started(Runtime):
    """The stand-in runtime, keeping the files each start was given."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, list] = {}

    async def start(self, cid: str, files: list | None = None):  # type: ignore[no-untyped-def, override]
        self.files[cid] = list(files or [])
        return await super().start(cid)


async def test_a_task_on_a_node_without_networking_gets_the_resolv_conf_of_its_flags(tmp_path) -> None:  # type: ignore[no-untyped-def]
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 127.0.0.53\nnameserver 192.0.2.53\n")
    rt = Started()
    ex = RuntimeExecutor(rt)  # type: ignore[arg-type]  # the stand-in has every call the executor makes
    ex.resolv_conf_path = str(host)
    t = pb.Task(id="t" * 25, service_name="web", slot=1)
    t.spec.container.image = "busybox:1"
    t.spec.container.dns_config.search.append("example.com")
    await ex.prepare(t)
    await ex.start(t)
    (f,) = rt.files[t.id]
    assert (f.target, f.data, f.mode) == ("/etc/resolv.conf", b"nameserver 192.0.2.53\nsearch example.com\n", 0o644)
    plain = pb.Task(id="p" * 25, service_name="web", slot=2)
    plain.spec.container.image = "busybox:1"
    await ex.prepare(plain)
    await ex.start(plain)
    assert rt.files[plain.id] == [], "no --dns flag: started without files, the image's resolv.conf stays"


async def test_a_config_at_etc_resolv_conf_and_dns_flags_refuse_the_task() -> None:
    class Files:
        def files_for(self, task: pb.Task) -> list:
            return [ContainerFile("/etc/resolv.conf", b"nameserver 1.1.1.1\n")]

    ex = RuntimeExecutor(Started(), files=Files())  # type: ignore[arg-type]
    t = pb.Task(id="t" * 25, service_name="web", slot=1)
    t.spec.container.image = "busybox:1"
    t.spec.container.configs.add(config_name="r", file=pb.FileTarget(name="/etc/resolv.conf"))
    t.spec.container.dns_config.nameservers.append("10.0.0.2")
    with pytest.raises(ExecutorError, match="which a config also targets"):
        await ex.prepare(t)
