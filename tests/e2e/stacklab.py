"""Helpers for deploying the stacks of tests/fixtures/stacks on a lab, through the ``shoal`` CLI.

The stacks run ``stackdemo:1`` and ``stackdemo:2``: busybox httpd serving the load-balancing demo's
``/cgi-bin/whoami`` (``task=... node=... client=...``) and ``/version`` (``1`` or ``2``), so a re-deploy
can change a service's image and a client can tell which image answered. ``in_task`` runs a command
inside a task's container (its namespaces, user and resolver) with ``shoal exec`` on the task's lab host.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

from tests.e2e import netlab
from tests.e2e.clicluster import SHOAL
from tests.e2e.lab_fixtures import LabCli
from tests.fixtures import busybox_image
from tests.timing import scaled

STACKS = netlab.REPO / "tests" / "fixtures" / "stacks"
CGI = netlab.REPO / "deploy" / "demos" / "lb" / "whoami.cgi"


def load_images(lab: LabCli, tmp: Path) -> None:
    """``stackdemo:1`` and ``stackdemo:2`` on every node of the lab (they differ in /var/www/version)."""
    config = {"Cmd": ["httpd", "-f", "-p", "80", "-h", "/var/www"], "ExposedPorts": {"80/tcp": {}}}
    for version in ("1", "2"):
        tar = tmp / f"stackdemo-{version}.tar"
        files = {"var/www/cgi-bin/": b"", "var/www/cgi-bin/whoami": CGI.read_bytes(), "var/www/version": f"{version}\n".encode()}
        busybox_image.build(str(tar), tag=f"stackdemo:{version}", extra_layers=[files], config=config)
        lab.run("--lab", lab.name, "image", "load", "--cluster", "-i", str(tar), timeout=120)


def deploy(lab: LabCli, name: str, *files: Path | str, env: dict[str, str] | None = None, check: bool = True,
           extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``stack deploy -c FILE... NAME`` with ``env`` added to the CLI's environment (interpolation)."""
    argv = [SHOAL, "--lab", lab.name, "stack", "deploy", *(a for f in files for a in ("-c", str(f))), *extra, name]
    res = subprocess.run(argv, env={**lab.env, **(env or {})}, capture_output=True, text=True, timeout=scaled(180))
    if check and res.returncode != 0:
        raise AssertionError(f"stack deploy {name} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def running(lab: LabCli, stack: str) -> list[dict]:
    """The stack's tasks that are running (``stack ps``, full ids)."""
    return [t for t in lab.tasks("stack", "ps", stack) if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running")]


def service_of(task: dict) -> str:
    return str(task["Name"]).rsplit(".", 1)[0]


def counts(tasks: list[dict]) -> dict[str, int]:
    return dict(Counter(service_of(t) for t in tasks))


def wait_converged(lab: LabCli, stack: str, want: dict[str, int], healthy: set[str] = frozenset(), timeout: float = 120) -> list[dict]:
    """Wait until the stack runs exactly ``want`` tasks per service (those of ``healthy`` all healthy)."""

    def check() -> list[dict] | None:
        tasks = running(lab, stack)
        ok = counts(tasks) == want and all(t["CurrentState"].endswith("(healthy)") for t in tasks if service_of(t) in healthy)
        return tasks if ok else None

    return lab.wait_for(check, timeout, f"stack {stack} running {want} (healthy: {sorted(healthy)})")


def in_task(lab: LabCli, task: dict, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """``argv`` run inside the task's container (``shoal exec`` on its node's runtime)."""
    root = netlab.data_dir(lab, task["Node"]) / "runtime"
    return lab.lab("exec", task["Node"], "--", SHOAL, "exec", "--timeout", str(scaled(20)), "--root", str(root), task["ID"], *argv, check=check)


def fetch(lab: LabCli, task: dict, url: str) -> str:
    """A page fetched with busybox wget from inside the task (its resolver: service names resolve)."""
    return in_task(lab, task, "wget", "-q", "-O", "-", url).stdout.strip()  # (busybox-static's wget -T crashes)


def inspect(lab: LabCli, kind: str, name: str) -> dict:
    (doc,) = json.loads(lab.shoal(kind, "inspect", name).stdout)
    return doc


def leftovers(lab: LabCli, stack: str) -> dict[str, list[str]]:
    """What of the stack is still in the cluster, by kind: services, networks, secrets and configs named
    ``STACK_...`` or labelled with the stack."""
    label = f"com.docker.stack.namespace={stack}"
    mine = lambda name, labels: name.startswith(f"{stack}_") or label in labels  # noqa: E731
    out = {"svc": sorted(r["Name"] for r in lab.json("svc", "ls") if mine(r["Name"], r.get("Labels", "")))}
    ids = lab.shoal("network", "ls", "-q").stdout.split()
    nets = json.loads(lab.shoal("network", "inspect", *ids).stdout) if ids else []
    out["network"] = sorted(n["Name"] for n in nets if mine(n["Name"], ",".join(f"{k}={v}" for k, v in n["Labels"].items())))
    for kind in ("secret", "config"):
        out[kind] = sorted(r["Name"] for r in lab.json(kind, "ls") if mine(r["Name"], r["Labels"]))
    return out
