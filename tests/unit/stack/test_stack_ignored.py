"""Keys shoal accepts but does not apply are named in the loader's one warning, never dropped silently;
and the deployable stacks of tests/fixtures/stacks (the e2e corpus) use every key shoal applies.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from shoal.stack import model_deploy, model_file, model_service
from shoal.stack.errors import Problems
from shoal.stack.ignored import IGNORED, ignored_options
from shoal.stack.loader import load_stack
from shoal.stack.model_base import Model
from shoal.stack.yamlfile import parse

STACKS = Path(__file__).resolve().parents[2] / "fixtures" / "stacks"
ENV = {"API_KEY": "k", "FROM_SHELL": "yes", "BIND_DIR": "/tmp"}


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "stack.yml"
    path.write_text(text)
    return load_stack([path], environ={})


SERVICE_KEYS = [
    ("ports: ['127.0.0.1:8080:80']", "ports.host_ip"),
    ("ports: [{target: 80, app_protocol: http}]", "ports.app_protocol"),
    ("networks: {n: {ipv4_address: 10.0.0.9}}", "networks.ipv4_address"),
    ("networks: {n: {mac_address: '02:42:ac:11:00:02'}}", "networks.mac_address"),
    ("networks: {n: {priority: 10}}", "networks.priority"),
    ("volumes: ['/srv:/srv:cached']", "volumes.consistency"),
    ("volumes: [{type: bind, source: /srv, target: /srv, bind: {create_host_path: true}}]", "volumes.bind.create_host_path"),
    ("volumes: ['/srv:/srv:z']", "volumes.bind.selinux"),
    ("depends_on: {other: {condition: service_started, restart: true}}", "depends_on.restart"),
    ("depends_on: {other: {condition: service_started, required: false}}", "depends_on.required"),
    ("deploy: {resources: {reservations: {generic_resources: [{discrete_resource_spec: {kind: gpu, value: 1}}]}}}",
     "deploy.resources.reservations.generic_resources"),
]  # fmt: skip


@pytest.mark.parametrize(("yaml", "key"), SERVICE_KEYS, ids=[k for _, k in SERVICE_KEYS])
def test_a_service_key_shoal_does_not_apply_is_named_with_its_service(tmp_path: Path, yaml: str, key: str):
    text = f"services:\n  web:\n    image: x\n    {yaml}\n  other:\n    image: x\n    networks: [n]\nnetworks:\n  n:\n"
    stack = load(tmp_path, text)
    assert stack.warnings == [f"Ignoring unsupported options: {key} (service: web)"]


TOP_KEYS = [
    ("networks:\n  n:\n    internal: true", "networks.n.internal"),
    ("networks:\n  n:\n    driver_opts: {encrypted: ''}", "networks.n.driver_opts"),
    ("networks:\n  n:\n    enable_ipv6: true", "networks.n.enable_ipv6"),
    ("networks:\n  n:\n    ipam: {driver: default, config: [{subnet: 10.9.0.0/24, gateway: 10.9.0.254}]}", "networks.n.ipam.config.gateway, networks.n.ipam.driver"),
    ("volumes:\n  v:\n    driver: nfs", "volumes.v.driver"),
    ("volumes:\n  v:\n    labels: {backup: daily}", "volumes.v.labels"),
    ("secrets:\n  s:\n    external: true\n    template_driver: golang", "secrets.s.template_driver"),
    ("configs:\n  c:\n    content: x\n    driver: vault", "configs.c.driver"),
]  # fmt: skip


@pytest.mark.parametrize(("yaml", "keys"), TOP_KEYS, ids=[k for _, k in TOP_KEYS])
def test_a_top_level_key_shoal_does_not_apply_is_named_in_full(tmp_path: Path, yaml: str, keys: str):
    stack = load(tmp_path, f"services:\n  web:\n    image: x\n{yaml}\n")
    assert stack.warnings == [f"Ignoring unsupported options: {keys}"]


def test_defaults_and_applied_values_are_not_named(tmp_path: Path):
    text = """
services:
  web:
    image: x
    build: .
    ports: ["8080:80", {target: 81, published: 81, mode: host, name: admin}]
    networks: {n: {aliases: [www]}}
    volumes: [{type: bind, source: /srv, target: /srv, bind: {propagation: rslave}}, "v:/data:ro"]
    depends_on: {db: {condition: service_healthy, required: true}}
    deploy: {resources: {reservations: {cpus: "0.5", memory: 64M}}}
  db:
    image: x
networks:
  n: {driver: overlay, attachable: true, ipam: {config: [{subnet: 10.9.0.0/24}]}}
volumes:
  v: {driver: local}
"""
    assert load(tmp_path, text).warnings == ["Ignoring unsupported options: build (service: web)"]


def test_the_deployable_stacks_set_nothing_shoal_ignores():
    for path in sorted(STACKS.glob("*.yml")):
        stack = load_stack([path], environ=ENV)
        assert stack.warnings == [], path.name
        assert ignored_options(stack.compose) == {}, path.name


def _keys(doc: object) -> set[str]:
    if isinstance(doc, dict):
        return {str(k) for k in doc} | {k for v in doc.values() for k in _keys(v)}
    if isinstance(doc, list):
        return {k for v in doc for k in _keys(v)}
    return set()


def test_the_everything_stack_uses_every_key_shoal_applies():
    """When a model gains a field, tests/fixtures/stacks/everything.yml (deployed on a lab by
    tests/e2e/test_stack_lab.py) must use it, or IGNORED must name it."""
    problems = Problems()
    doc, _ = parse((STACKS / "everything.yml").read_text(), "everything.yml", problems)
    assert not problems.items
    written = _keys(doc)
    models = [m for mod in (model_service, model_deploy, model_file) for _, m in inspect.getmembers(mod, inspect.isclass)
              if issubclass(m, Model) and m is not Model and m.__module__ == mod.__name__]  # fmt: skip
    missing = {
        f"{m.__name__}.{name}"
        for m in models
        for name in m.model_fields
        if name not in written and not any(name in IGNORED.get(c, ()) for c in m.__mro__)
    }
    assert not missing, sorted(missing)
