"""The deployment files stay consistent: the stack example is compose-shaped YAML, the units use
only variables their example environment files define, and the demo script is valid bash."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

SERVICE_KEYS = {"image", "command", "working_dir", "environment", "ports", "healthcheck", "networks", "deploy"}
DEPLOY_KEYS = {"mode", "replicas", "placement", "resources", "restart_policy", "update_config", "rollback_config", "endpoint_mode", "labels"}


def test_stack_example_is_a_compose_stack():
    doc = YAML(typ="safe").load((DEPLOY / "stack.example.yml").read_text())
    assert set(doc) == {"services", "networks"}
    for name, svc in doc["services"].items():
        assert set(svc) <= SERVICE_KEYS, name
        assert set(svc["deploy"]) <= DEPLOY_KEYS, name
        assert set(svc["networks"]) <= set(doc["networks"]), name
    assert doc["services"]["web"]["deploy"]["replicas"] == 6
    assert doc["services"]["ticker"]["deploy"]["mode"] == "global"


@pytest.mark.parametrize(("unit", "env"), [("shoal-manager", "manager"), ("shoal-worker", "worker"), ("shoal-etcd", "etcd")])
def test_units_use_only_variables_of_their_env_file(unit: str, env: str):
    text = (DEPLOY / "systemd" / f"{unit}.service").read_text()
    defined = set(re.findall(r"^([A-Z_]+)=", (DEPLOY / "systemd" / f"{env}.env.example").read_text(), re.M))
    used = set(re.findall(r"\$\{?([A-Z_]+)\}?", text))
    assert used <= defined, used - defined
    assert f"EnvironmentFile=/etc/shoal/{env}.env" in text
    assert "NoNewPrivileges=yes" in text


def test_demo_script_is_valid_bash():
    if shutil.which("bash") is None:
        pytest.skip(reason="bash not installed")
    subprocess.run(["bash", "-n", str(DEPLOY / "demo.sh")], check=True)
