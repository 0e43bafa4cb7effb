"""Secrets and configs on a lab (1 manager, 2 workers), only through the ``shoal`` CLI, as a user would.

A secret is readable at /run/secrets/NAME in the task and a config at its target; the secret's bytes
are on no disk of the lab (every node's data dir: runtime state, logs, the manager's etcd files, read
raw), its mount shows only in the task's own mount namespace, and is gone when the task ends. Bad
input (unknown secret, over 500 KiB, bad mode or uid) is one clear error each, with nothing written.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets as pysecrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.lab_fixtures import LabCli, running_lab

SECRET = f"lab-secret-{pysecrets.token_hex(12)}".encode()
CONFIG = b"listen = 8080\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCli]:
    with running_lab(tmp_path_factory.mktemp("labs"), "sec", "--workers", "2") as lab:
        yield lab


def create_from_stdin(lab: LabCli, kind: str, name: str, data: bytes, check: bool = True):  # type: ignore[no-untyped-def]
    import subprocess

    from tests.e2e.clicluster import SHOAL

    res = subprocess.run([SHOAL, "--lab", lab.name, kind, "create", name, "-"], input=data, env=lab.env, capture_output=True, timeout=60)
    if check:
        assert res.returncode == 0, res.stderr
    return res


def on_disk(root: Path, needle: bytes) -> list[str]:
    """Every file under ``root`` whose bytes contain ``needle`` (a thief with the lab's disks)."""
    hits = []
    for r, _ds, fs in os.walk(root):
        for n in fs:
            p = os.path.join(r, n)
            try:
                if os.path.isfile(p) and not os.path.islink(p) and needle in Path(p).read_bytes():
                    hits.append(p)
            except OSError:
                continue
    return hits


def task_container(lab: LabCli, service: str) -> tuple[str, dict]:
    """(node, runtime state) of the service's running task's container."""
    tasks = [t for t in lab.tasks("svc", "ps", service) if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running")]
    assert len(tasks) == 1, tasks
    for f in lab.dir.glob(f"*/runtime/containers/{tasks[0]['ID']}/state.json"):
        return f.parts[-5], json.loads(f.read_text())
    raise AssertionError(f"no container for task {tasks[0]['ID']}")


def mounts_with(path: str) -> list[int]:
    """Pids whose mount namespace has a mount at ``path``."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/mountinfo") as f:
                if any(line.split()[4] == path for line in f):
                    out.append(int(pid))
        except OSError:
            continue
    return out


def test_secret_and_config_reach_the_task_and_nothing_else(lab: LabCli):
    create_from_stdin(lab, "secret", "db_pw", SECRET)
    create_from_stdin(lab, "config", "app", CONFIG)
    script = "md5sum /run/secrets/db_pw | cut -d' ' -f1; stat -c '%a %u' /run/secrets/db_pw; cat /tmp/app.conf; sleep 1000"
    lab.shoal("svc", "create", "--name", "sec", "--secret", "source=db_pw,mode=0400,uid=1000", "--config", "source=app,target=/tmp/app.conf",
              "--constraint", "node.hostname==worker1", "host", "sh", "-c", script)
    node, state = lab.wait_for(lambda: _running(lab, "sec"), 30, "the task running")
    assert node == "worker1"
    log = lab.wait_for(lambda: (t := Path(state["log_path"]).read_text()).count("\n") >= 3 and t, 20, "the task's output")
    lines = [json.loads(line)["log"].strip() for line in log.splitlines()]
    assert lines[:3] == [hashlib.md5(SECRET).hexdigest(), "400 1000", CONFIG.decode().strip()]
    pid = state["pid"]
    assert pid in mounts_with("/run/secrets/db_pw")  # the file is mounted in the task's namespace ...
    assert [p for p in mounts_with("/run/secrets/db_pw") if p != pid and not _same_mntns(p, pid)] == []  # ... and only there
    assert on_disk(lab.dir, SECRET) == []  # no node's data dir, runtime state, log or etcd file holds it
    insp = lab.shoal("svc", "inspect", "sec").stdout + lab.shoal("secret", "inspect", "db_pw").stdout
    assert SECRET.decode() not in insp
    lab.shoal("svc", "rm", "sec")
    lab.wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 30, "the task's process gone")
    assert mounts_with("/run/secrets/db_pw") == []  # gone with the task
    assert on_disk(lab.dir, SECRET) == []
    lab.shoal("secret", "rm", "db_pw")
    lab.shoal("config", "rm", "app")


def _running(lab: LabCli, service: str) -> tuple[str, dict] | None:
    try:
        node, state = task_container(lab, service)
    except AssertionError:
        return None
    return (node, state) if state.get("status") == "running" else None


def _same_mntns(a: int, b: int) -> bool:
    try:
        return os.readlink(f"/proc/{a}/ns/mnt") == os.readlink(f"/proc/{b}/ns/mnt")
    except OSError:
        return False


def test_bad_input_is_one_clear_error_and_nothing_is_written(lab: LabCli):
    res = lab.shoal("svc", "create", "--name", "bad", "--secret", "nope", "host", "true", check=False)
    assert res.returncode == 1 and res.stderr.strip() == "Error: invalid service spec: secret not found: nope"
    res = create_from_stdin(lab, "secret", "huge", b"x" * (500 * 1024 + 1), check=False)
    assert res.returncode == 1 and b"less than 512000 bytes" in res.stderr
    create_from_stdin(lab, "secret", "ok", b"x")
    res = lab.shoal("svc", "create", "--name", "bad", "--secret", "source=ok,mode=888", "host", "true", check=False)
    assert res.returncode == 2 and "invalid mode '888'" in res.stderr
    res = lab.shoal("svc", "create", "--name", "bad", "--secret", "source=ok,uid=-1", "host", "true", check=False)
    assert res.returncode == 2 and "invalid uid '-1'" in res.stderr
    assert "bad" not in lab.shoal("svc", "ls").stdout
    assert [s["Spec"]["Name"] for s in json.loads(lab.shoal("secret", "inspect", "ok").stdout)] == ["ok"]
    assert "huge" not in lab.shoal("secret", "ls").stdout
    lab.shoal("secret", "rm", "ok")


STACK = """
services:
  app:
    image: host
    command: ["sh", "-c", "md5sum /run/secrets/pw | cut -d' ' -f1; cat /tmp/app.conf; echo; sleep 1000"]
    secrets: [pw]
    configs: [{source: conf, target: /tmp/app.conf}]
    deploy:
      placement: {constraints: ["node.hostname==worker2"]}
secrets:
  pw: {file: ./pw.txt}
configs:
  conf: {content: "from the stack"}
"""


def test_stack_deploy_creates_its_secrets_and_rm_removes_them(lab: LabCli, tmp_path: Path):
    (tmp_path / "stack.yml").write_text(STACK)
    (tmp_path / "pw.txt").write_bytes(SECRET)
    lab.shoal("stack", "deploy", "-c", str(tmp_path / "stack.yml"), "st")
    (obj,) = json.loads(lab.shoal("secret", "inspect", "st_pw").stdout)
    assert obj["Spec"]["Labels"] == {"com.docker.stack.namespace": "st"}
    node, state = lab.wait_for(lambda: _running(lab, "st_app"), 30, "the stack's task running")
    assert node == "worker2"
    log = lab.wait_for(lambda: (t := Path(state["log_path"]).read_text()).count("\n") >= 2 and t, 20, "the task's output")
    assert [json.loads(line)["log"].strip() for line in log.splitlines()][:2] == [hashlib.md5(SECRET).hexdigest(), "from the stack"]
    assert on_disk(lab.dir, SECRET) == []
    lab.shoal("stack", "rm", "st")
    assert "st_pw" not in lab.shoal("secret", "ls").stdout and "st_conf" not in lab.shoal("config", "ls").stdout
    assert "st_app" not in lab.shoal("svc", "ls").stdout
