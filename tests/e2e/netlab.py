"""Helpers for the networking e2e tests: the demo image in a lab, and clients run inside a lab's hosts and tasks.

Everything goes through the ``shoal`` CLI: ``shoal lab exec NODE -- ...`` runs a command on a lab host,
and ``nsenter --net=<the task's namespace>`` (kept by the agent under the node's data dir) puts it in a
task's network. Traffic only goes to addresses inside the lab's namespaces.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.e2e.lab_fixtures import LabCli
from tests.fixtures.httpclient import client_argv

REPO = Path(__file__).resolve().parents[2]
WHOAMI = "/cgi-bin/whoami"  # the demo image's CGI: "task=... node=... client=..."
SHOAL_ROUTES = 83  # the protocol number of shoal's routes (worker/network/routes.py PROTO)

# asks the nameserver of a resolv.conf for A records; prints {name: [addresses] | None}
RESOLVE = r"""
import json, sys
import dns.exception, dns.message, dns.query, dns.rcode
server = next(l.split()[1] for l in open(sys.argv[1]) if l.startswith("nameserver"))
timeout, attempts = float(sys.argv[2]), int(sys.argv[3])
def ask(name):
    for attempt in range(attempts):  # as a stub resolver does (glibc: timeout 5, attempts 2)
        try:
            return dns.query.udp(dns.message.make_query(name, "A"), server, timeout=timeout)
        except dns.exception.Timeout:
            if attempt == attempts - 1:
                raise
out = {}
for name in sys.argv[4:]:
    r = ask(name)
    addrs = sorted(a.to_text() for rr in r.answer for a in rr)
    out[name] = addrs if r.rcode() == dns.rcode.NOERROR and addrs else None
print(json.dumps(out))
"""


def load_demo_image(lab: LabCli, tmp: Path) -> None:
    tar = tmp / "lb.tar"
    subprocess.run([sys.executable, str(REPO / "deploy/demos/lb/build_image.py"), str(tar)], check=True,
                   capture_output=True)
    lab.shoal("image", "load", "--cluster", "-i", str(tar))


def running_tasks(lab: LabCli, service: str) -> list[dict]:
    rows = lab.tasks("svc", "ps", service)
    return [r for r in rows if r["DesiredState"] == "Running" and r["CurrentState"].startswith("Running")]


def wait_running(lab: LabCli, service: str, n: int, timeout: float = 60) -> list[dict]:
    def check() -> list[dict] | None:
        tasks = running_tasks(lab, service)
        return tasks if len(tasks) == n else None

    return lab.wait_for(check, timeout, f"{n} running tasks of {service}")


def data_dir(lab: LabCli, node: str) -> Path:
    return Path(next(n["data_dir"] for n in lab.state()["nodes"] if n["name"] == node))


def task_dir(lab: LabCli, task: dict) -> Path:
    return data_dir(lab, task["Node"]) / "agent" / "net" / task["ID"]


def on_host(lab: LabCli, node: str, *argv: str) -> str:
    return lab.lab("exec", node, "--", *argv).stdout


def in_task(lab: LabCli, task: dict, *argv: str) -> str:
    return on_host(lab, task["Node"], "nsenter", f"--net={task_dir(lab, task) / 'netns'}", *argv)


def get(lab: LabCli, node: str, host: str, port: int, n: int, task: dict | None = None) -> list[str]:
    """``n`` requests from lab host ``node`` (or from inside ``task``) to ``host:port``."""
    argv = client_argv(host, port, n, WHOAMI)
    return json.loads(in_task(lab, task, *argv) if task else on_host(lab, node, *argv))


def get_here(host: str, port: int, n: int) -> list[str]:
    """``n`` requests from this machine (it reaches the lab's hosts over the lab bridge)."""
    out = subprocess.run(client_argv(host, port, n, WHOAMI), capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return json.loads(out)


def resolve(lab: LabCli, task: dict, *names: str, timeout: float = 3, attempts: int = 3) -> dict[str, list[str] | None]:
    """A records of ``names`` as the task's resolver (the node's DNS responder) answers them; each query is
    sent up to ``attempts`` times, waiting ``timeout`` s for each (the command fails when none is answered)."""
    conf = str(task_dir(lab, task) / "resolv.conf")
    return json.loads(in_task(lab, task, sys.executable, "-c", RESOLVE, conf, str(timeout), str(attempts), *names))


def served_by(answers: list[str]) -> Counter[str]:
    """Answers per task name (``error ...`` under "error")."""
    return Counter(m.group(1) if (m := re.search(r"task=(\S+)", a)) else "error" for a in answers)


def clients_of(answers: list[str], node: str) -> set[str]:
    """The client addresses tasks on ``node`` saw."""
    out = set()
    for a in answers:
        m = re.search(r"node=(\S+) client=\[?(?:::ffff:)?([0-9.]+)", a)
        if m and m.group(1) == node:
            out.add(m.group(2))
    return out


def shoal_traces_in(lab: LabCli, node: str) -> list[str]:
    """What of shoal's networking is left in a lab host's namespace: devices, the nft tables, routes to other
    nodes' task subnets, task namespaces (a task's and the pool's)."""
    links = on_host(lab, node, "ip", "-d", "-o", "link")
    left = [line.split(":")[1].strip() for line in links.splitlines() if "shoal-net" in line]
    tables = on_host(lab, node, "nft", "list", "tables")
    if "table ip shoal" in tables:
        left.append("nft table ip shoal")
    left += [f"nft {line.strip()}" for line in tables.splitlines() if "table netdev shoal-dsr-" in line]  # dsr.py
    routes = on_host(lab, node, "ip", "-4", "route", "show", "proto", str(SHOAL_ROUTES))  # worker/network/routes.py
    left += [f"route {line.split()[0]}" for line in routes.splitlines() if line.strip()]
    net = data_dir(lab, node) / "agent" / "net"
    left += [f"task wiring {p.name}" for p in net.iterdir()] if net.exists() else []
    pool = data_dir(lab, node) / "agent" / "net-pool"  # namespaces wired ahead (worker/network/pool.py)
    left += [f"pooled namespace {p.name}" for p in pool.iterdir()] if pool.exists() else []
    return left
