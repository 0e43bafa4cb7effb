"""Service mounts through the CLI on a manager + worker: a named volume outlives its task on the node,
a read-only root with a tmpfs, a missing bind source rejected with its reason, and bad mounts refused
before anything is written."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.e2e.clicluster import CliCluster, containers, running_pids
from tests.fixtures import busybox_image

SCRIPT = ("echo run-{{.Task.Slot}} >> /data/runs; if touch /rootfs-write 2>/dev/null; then echo root-writable >> /data/runs; "
          "else echo root-read-only >> /data/runs; fi; echo t > /scratch/t && echo tmpfs-ok >> /data/runs; exec sleep 600")


# The services' sleep (PID 1) ignores SIGTERM: "--stop-grace-period 1s" spares each removal the default
# 10 s wait for the SIGKILL.


def _load_image(c: CliCluster) -> None:
    tar = c.tmp / "mbox.tar"
    busybox_image.build(str(tar), tag="mbox:1")
    c.shoal("image", "load", "--cluster", "-i", str(tar))


def test_a_named_volume_keeps_its_data_across_a_task_replacement(shared_cli_cluster: CliCluster) -> None:
    c = shared_cli_cluster
    _load_image(c)
    c.shoal("svc", "create", "-d", "--name", "vol", "--stop-grace-period", "1s", "--constraint", "node.hostname==e2e-worker", "--restart-delay", "0s",
            "--mount", "type=volume,source=data-{{.Task.Slot}},target=/data", "--read-only",
            "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m", "--hostname", "{{.Service.Name}}-{{.Task.Slot}}",
            "mbox:1", "sh", "-c", SCRIPT.replace("{{.Task.Slot}}", "$(hostname)"))  # fmt: skip
    runs = c.tmp / "w" / "runtime" / "volumes" / "data-1" / "_data" / "runs"
    c.wait_for(lambda: runs.exists() and "tmpfs-ok" in runs.read_text(), 40, "the first task's lines in volume data-1")
    assert runs.read_text() == "run-vol-1\nroot-read-only\ntmpfs-ok\n"
    spec = json.loads(c.shoal("svc", "inspect", "vol").stdout)[0]
    assert "data-{{.Task.Slot}}" in json.dumps(spec), "the spec keeps the template; the node expands it"

    (pid,) = running_pids(c, "vol").values()
    os.kill(pid, signal.SIGKILL)  # the task fails; the restart policy replaces it on the same node
    c.wait_for(lambda: runs.read_text().count("tmpfs-ok") == 2, 40, "the replacement task's lines")
    assert runs.read_text().splitlines()[:4] == ["run-vol-1", "root-read-only", "tmpfs-ok", "run-vol-1"]
    tasks = c.json("svc", "ps", "vol")
    assert len(tasks) >= 2 and sum(str(t["CurrentState"]).startswith("Running") for t in tasks) == 1
    c.shoal("svc", "rm", "vol")
    c.wait_for(lambda: not containers(c), 30, "the service's containers removed from the nodes")
    assert runs.exists(), "a named volume is kept after its tasks are gone, as docker keeps it"


def test_a_missing_bind_source_rejects_the_task_with_the_reason(shared_cli_cluster: CliCluster) -> None:
    c = shared_cli_cluster
    _load_image(c)
    missing = c.tmp / "not-there"
    c.shoal("svc", "create", "-d", "--name", "nobind", "--restart-condition", "none",
            "--mount", f"type=bind,source={missing},target=/x", "mbox:1", "sleep", "600")

    def rejected() -> list[dict]:
        return [t for t in c.tasks("svc", "ps", "nobind") if "bind source path does not exist" in str(t.get("Error"))]

    (task,) = c.wait_for(rejected, 40, "a rejected task with the reason")[:1]
    assert str(missing) in task["Error"] and str(task["CurrentState"]).startswith("Rejected"), task
    c.shoal("svc", "rm", "nobind")


def test_a_bad_mount_is_one_error_and_nothing_is_written(shared_cli_cluster: CliCluster) -> None:
    c = shared_cli_cluster
    for mount, message in (("type=nfs,source=x,target=/x", "invalid mount type 'nfs'"),
                           ("type=volume,source=x,target=data", "invalid mount target 'data': must be an absolute path"),
                           ("type=volume,source=../../etc,target=/x", "invalid volume name")):
        res = c.shoal("svc", "create", "-d", "--name", "bad", "--mount", mount, "host", "sleep", "1", check=False)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and message in lines[0], res.stderr
        assert "Traceback" not in res.stderr
    assert c.shoal("svc", "ls", "-q").stdout.strip() == ""


def test_dns_flags_on_a_node_without_networking_write_the_tasks_resolv_conf(shared_cli_cluster: CliCluster) -> None:
    """The e2e nodes run --no-network (loopback only, no DNS responder): --dns, --dns-search and --dns-option
    become the task's /etc/resolv.conf, as docker writes one, in an image container and in a host-image one."""
    c = shared_cli_cluster
    _load_image(c)
    out = c.tmp / "dnsout"
    out.mkdir()
    dns = ["--dns", "127.0.0.1", "--dns", "192.0.2.53", "--dns-search", "example.com", "--dns-option", "ndots:3"]
    c.shoal("svc", "create", "-d", "--name", "dnsimg", "--stop-grace-period", "1s", "--constraint", "node.hostname==e2e-worker", *dns,
            "--mount", f"type=bind,source={out},target=/out", "mbox:1", "sh", "-c", "cat /etc/resolv.conf > /out/img; exec sleep 600")  # fmt: skip
    c.shoal("svc", "create", "-d", "--name", "dnshost", "--stop-grace-period", "1s", "--constraint", "node.hostname==e2e-worker", "--dns-search", "corp",
            "--mount", f"type=bind,source={out},target=/mnt", "host", "sh", "-c", "cat /etc/resolv.conf > /mnt/host; exec sleep 600")  # fmt: skip
    want = "nameserver 127.0.0.1\nnameserver 192.0.2.53\nsearch example.com\noptions ndots:3\n"
    c.wait_for(lambda: (out / "img").exists() and (out / "img").read_text() == want, 40, "the image task's resolv.conf")
    host_servers = [line for line in Path("/etc/resolv.conf").read_text().splitlines() if line.startswith("nameserver") and not line.split()[1].startswith("127.")]
    c.wait_for(lambda: (out / "host").exists() and (out / "host").read_text() == "\n".join([*host_servers, "search corp"]) + "\n",
               40, "the host-image task's resolv.conf: the host's servers, its own search domain")  # fmt: skip
    assert "search corp" not in Path("/etc/resolv.conf").read_text(), "the host's own file is untouched"
    c.shoal("svc", "rm", "dnsimg", "dnshost")
