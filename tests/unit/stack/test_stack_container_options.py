"""Compose keys for mounts and container options, in their several YAML shapes, as the service spec gets them."""

from __future__ import annotations

from pathlib import Path

from shoal.proto import types_pb2 as pb
from shoal.stack.convert import convert_stack
from shoal.stack.loader import load_stack


def _container(tmp_path: Path, service_yaml: str, extra: str = "") -> pb.ContainerSpec:
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n" + service_yaml + extra)
    plan = convert_stack(load_stack([tmp_path / "s.yml"], environ={}).compose, "app")
    return plan.services["app_web"].spec.container


def test_list_and_string_forms(tmp_path: Path) -> None:
    c = _container(tmp_path, "    sysctls: [net.core.somaxconn=1024]\n    dns: 10.0.0.2\n    dns_search: [a.org, b.org]\n"
                             "    group_add: [100]\n    tmpfs: /run\n")  # fmt: skip
    assert dict(c.sysctls) == {"net.core.somaxconn": "1024"}
    assert list(c.dns_config.nameservers) == ["10.0.0.2"] and list(c.dns_config.search) == ["a.org", "b.org"]
    assert list(c.groups) == ["100"] and [(m.type, m.target) for m in c.mounts] == [(pb.Mount.TMPFS, "/run")]


def test_named_volumes_take_the_stack_prefix_unless_external_or_named(tmp_path: Path) -> None:
    c = _container(tmp_path, "    volumes: [data:/data, ext:/ext, fixed:/fixed, /anon]\n",
                   "volumes:\n  data: {}\n  ext: {external: true}\n  fixed: {name: shared-data}\n")
    assert [(m.source, m.target) for m in c.mounts] == [("app_data", "/data"), ("ext", "/ext"), ("shared-data", "/fixed"), ("", "/anon")]


def test_a_service_without_options_sets_none(tmp_path: Path) -> None:
    c = _container(tmp_path, "")
    assert not (c.mounts or c.read_only or c.cap_add or c.cap_drop or c.stop_signal or c.ulimits or c.sysctls or c.groups)
    assert not c.HasField("dns_config"), "an unset DNS config stays unset (a spec equal to the one stored)"


def test_init_is_kept_as_written_and_unset_when_absent(tmp_path: Path) -> None:
    """A stack redeployed unchanged must give an equal spec: ``init`` absent stays unset; ``init: false`` is
    kept (docker's inspect shows it)."""
    assert not _container(tmp_path, "").HasField("init")
    off = _container(tmp_path, "    init: false\n")
    assert off.HasField("init") and not off.init
    assert _container(tmp_path, "    init: true\n").init
