"""Exploits against service mounts and container options: a bad spec must not reach outside its container.

Each case is an attack through the control API (a spec written by any API client, not only the CLI)
or through a template that only expands on the node; the manager's validation refuses it and the
runtime refuses it again, so no node ever writes a host sysctl or mounts a volume outside its
volumes directory.
"""

from __future__ import annotations

import pytest

from shoal import spec as specs
from shoal.proto import types_pb2 as pb
from shoal.runtime import ConfigError, ContainerConfig
from shoal.runtime.launcher.volumes import VolumeStore
from shoal.runtime.spec import validate as validate_container
from shoal.worker.runtime_executor import container_config


def _service(**container: object) -> pb.ServiceSpec:
    s = pb.ServiceSpec(name="evil")
    s.container.CopyFrom(pb.ContainerSpec(image="busybox", **container))  # type: ignore[arg-type]
    return s


@pytest.mark.parametrize("key", ["kernel.core_pattern", "kernel.modprobe", "vm.panic_on_oom", "net/../../kernel/core_pattern",
                                 "net.core...kernel.core_pattern", "fs.mqueue/../../../kernel/core_pattern"])
def test_a_host_wide_sysctl_is_refused_by_the_manager_and_the_runtime(key: str) -> None:
    with pytest.raises(specs.SpecError, match="sysctls"):
        specs.validate(_service(sysctls={key: "|/tmp/pwn"}), images=frozenset({"busybox"}))
    with pytest.raises(ConfigError):
        validate_container(ContainerConfig(id="c", image="host", args=["true"], sysctls={key: "|/tmp/pwn"}))


@pytest.mark.parametrize("source", ["../../etc", "/etc", "a/../../etc", "..", "x/y"])
def test_a_volume_name_cannot_name_a_directory_outside_the_volumes_dir(source: str, tmp_path) -> None:
    mount = pb.Mount(type=pb.Mount.VOLUME, source=source, target="/data")
    with pytest.raises(specs.SpecError, match="invalid volume name"):
        specs.validate(_service(mounts=[mount]), images=frozenset({"busybox"}))
    with pytest.raises(ConfigError, match="invalid volume name"):
        validate_container(ContainerConfig(id="c", image="host", args=["true"],
                                           mounts=[{"type": "volume", "source": source, "target": "/data"}]))
    with pytest.raises(ConfigError, match="invalid volume name"):
        VolumeStore(str(tmp_path / "volumes")).ensure(source)
    assert not (tmp_path / "volumes").exists() or not any((tmp_path / "volumes").iterdir())


@pytest.mark.parametrize("target", ["/a/../proc", "/../etc", "data", "", "/x/\x00"])
def test_a_mount_target_is_absolute_without_dot_dot(target: str) -> None:
    mount = pb.Mount(type=pb.Mount.TMPFS, target=target)
    with pytest.raises(specs.SpecError, match="mounts"):
        specs.validate(_service(mounts=[mount]), images=frozenset({"busybox"}))


def test_a_template_cannot_smuggle_a_path_into_a_volume_name() -> None:
    """A label's value expanded into a volume name: refused by the manager, and by the node if the label
    were changed behind the manager's back (the spec a task carries is what the node expands)."""
    s = _service(mounts=[pb.Mount(type=pb.Mount.VOLUME, source='{{index .Service.Labels "v"}}', target="/data")])
    s.labels["v"] = "../../../etc"
    with pytest.raises(specs.SpecError, match="invalid volume name '../../../etc'"):
        specs.validate(s, images=frozenset({"busybox"}))
    task = pb.Task(id="t" * 25, service_id="s" * 25, service_name="evil", slot=1, node_id="n" * 25, spec=s)
    with pytest.raises(ConfigError, match="invalid volume name '../../../etc'"):
        validate_container(container_config(task))
