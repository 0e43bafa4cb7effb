"""Exploit (issue 11, High 3, in the lab): a worker host read the lab's keys and took over its etcd.

Lab hosts shared the machine's mounts, so a process on a worker host (``lab exec``, the agent, a task on the
``host`` image) read ``<lab dir>/etcd-tls``: with the managers' etcd client pair it read and wrote etcd
(join tokens, roles) over the lab bridge, and with ``ca.key`` it could sign itself any etcd certificate. It
also read the managers' node keys and KEK, and reached a manager's control socket (admin rights). Now each
host has a mount namespace of its own (shoal.lab.mountns) and sees only what a real host of its role holds.

The lab lives under /var/tmp: a ``host`` container gets a fresh /tmp, where it would see nothing anyway.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.clicluster import SHOAL
from tests.e2e.lab_fixtures import LabCli, running_lab

pytestmark = pytest.mark.root
KEY_MARK = "PRIVATE KEY"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabCli]:
    if shutil.which("etcdctl") is None:
        pytest.skip(reason="etcdctl not found; run make setup (etcd-client)")
    root = Path(tempfile.mkdtemp(prefix="shoal-sec-lab-", dir="/var/tmp"))
    try:
        with running_lab(root, "hf", "--managers", "3", "--workers", "1") as lab:
            yield lab
    finally:
        shutil.rmtree(root, ignore_errors=True)


def node(lab: LabCli, name: str) -> dict:
    return next(n for n in lab.state()["nodes"] if n["name"] == name)


def secrets_of_others(lab: LabCli) -> list[Path]:
    """Files no worker host holds: the etcd CA key and client pair, a manager's node key and KEK, the lab state."""
    tls, m1 = lab.dir / "etcd-tls", Path(node(lab, "manager1")["data_dir"]) / "certificates"
    paths = [tls / "ca.key", tls / "managers.key", m1 / "node.key", m1 / "ca.kek", lab.dir / "lab.json"]
    assert all(p.stat().st_size > 0 for p in paths), "the machine has them"
    return paths


def on(lab: LabCli, host: str, *argv: str):
    return lab.lab("exec", host, "--", *argv, check=False)


def test_a_worker_host_cannot_read_the_managers_keys_or_the_etcd_ca_key(lab: LabCli):
    for path in secrets_of_others(lab):
        res = on(lab, "worker1", "cat", str(path))
        assert res.returncode != 0 and res.stdout == "", f"worker1 read {path}"
    own = Path(node(lab, "worker1")["data_dir"]) / "agent" / "certificates" / "node.key"
    assert KEY_MARK in on(lab, "worker1", "cat", str(own)).stdout, "a worker host keeps its own key"


def test_a_worker_host_cannot_use_the_managers_etcd_certificate(lab: LabCli):
    tls, addr = lab.dir / "etcd-tls", node(lab, "manager1")["addr"]
    ctl = ["etcdctl", "--dial-timeout", "2s", "--command-timeout", "3s", "--cacert", f"{tls}/ca.crt",
           "--cert", f"{tls}/managers.crt", "--key", f"{tls}/managers.key", "--endpoints", f"https://{addr}:2379"]  # fmt: skip
    snoop = on(lab, "worker1", *ctl, "get", "/shoal/v1/", "--prefix", "--keys-only")
    assert snoop.returncode != 0 and "/shoal/v1/" not in snoop.stdout, snoop.stdout
    ok = on(lab, "manager2", *ctl, "get", "/shoal/v1/", "--prefix", "--keys-only")  # what a manager host holds
    assert ok.returncode == 0 and "/shoal/v1/" in ok.stdout, ok.stderr
    assert on(lab, "manager2", "cat", str(tls / "ca.key")).returncode != 0, "no host holds the etcd CA key"
    assert on(lab, "manager2", "cat", str(Path(node(lab, "manager1")["data_dir"]) / "certificates" / "node.key")).returncode != 0


def test_a_worker_host_cannot_reach_a_managers_control_socket(lab: LabCli):
    sock = node(lab, "manager1")["socket"]
    res = on(lab, "worker1", SHOAL, "--host", f"unix://{sock}", "node", "ls")
    assert res.returncode != 0 and "manager1" not in res.stdout, res.stdout
    assert "manager1" in lab.run("--host", f"unix://{sock}", "node", "ls").stdout  # the machine (the lab's user) can


def test_a_host_task_on_a_worker_cannot_read_the_etcd_ca_key(lab: LabCli):
    paths = " ".join(str(p) for p in secrets_of_others(lab)[:3])
    lab.shoal("svc", "create", "--name", "peek", "--constraint", "node.hostname==worker1", "host",
              "sh", "-c", f"cat {paths} 2>&1; echo peek-done; sleep 1000")  # fmt: skip
    log = lab.wait_for(lambda: (out := lab.shoal("svc", "logs", "peek", check=False).stdout) and "peek-done" in out and out, 60, "the task's output")
    assert KEY_MARK not in log, log
    assert log.count("No such file") == 3, log
