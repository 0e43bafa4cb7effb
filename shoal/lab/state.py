"""What a lab is made of, planned up front and kept in one JSON file so ``lab down`` can undo it all.

``lab up`` writes the whole plan (namespaces, bridge, veths, cgroups, data dirs) before it creates
anything and adds each process (pid + start time) as it starts it, so a ``lab down`` after a crash
or a ``kill -9`` of everything still finds every piece. Planning is pure: names, addresses and the
default subnet are computed from plain data and unit tested.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from shoal import etcdtls

DEFAULT_ROOT = "/var/lib/shoal/labs"
MACHINE_LOCK_DIR = "/run/shoal"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
DEFAULT_POOL = ipaddress.ip_network("172.30.0.0/16")
MANAGER_PORT = 4242
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
MANAGER_COUNTS = (1, 3, 5)


class LabError(Exception):
    """A lab operation that cannot be done; the message is the one line the user sees."""


@dataclass
class Proc:
    """A process the lab started: the pid plus its start time, so a reused pid is never mistaken for it."""

    pid: int
    start: int


@dataclass
class Node:
    name: str  # also the hostname: manager1, worker2, ...
    role: str  # "manager" or "worker"
    addr: str
    netns: str
    veth: str  # the host-side end; the end inside the namespace is eth0
    data_dir: str
    mntns: str = ""  # where the host's mount namespace is kept (see shoal.lab.mountns)
    cgroups: list[str] = field(default_factory=list)
    socket: str = ""  # managers: the control API unix socket
    daemon: Proc | None = None
    etcd: Proc | None = None  # a member of the lab's etcd cluster (3/5 managers)
    partitioned: bool = False

    @property
    def manager_addr(self) -> str:
        return f"{self.addr}:{MANAGER_PORT}"

    @property
    def etcd_client_url(self) -> str:
        return f"https://{self.addr}:{ETCD_CLIENT_PORT}"

    @property
    def etcd_peer_url(self) -> str:
        return f"https://{self.addr}:{ETCD_PEER_PORT}"


@dataclass
class Lab:
    name: str
    dir: str
    subnet: str
    bridge: str
    bridge_addr: str
    etcd_cluster: bool  # True: one etcd member per manager host; False: the manager's embedded etcd
    managers_run_tasks: bool
    cgroups: list[str] = field(default_factory=list)  # the lab's own cgroup in each hierarchy
    nodes: list[Node] = field(default_factory=list)
    worker_token: str = ""
    manager_token: str = ""

    @property
    def managers(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "manager"]

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "worker"]

    @property
    def state_file(self) -> Path:
        return Path(self.dir) / "lab.json"

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise LabError(f"lab {self.name!r} has no node {name!r} (nodes: {', '.join(n.name for n in self.nodes)})")

    def etcd_endpoints(self) -> str:
        return ",".join(m.etcd_client_url for m in self.managers)

    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.etcd_peer_url}" for m in self.managers)

    @property
    def etcd_tls_dir(self) -> Path:
        """The lab's etcd CA, a certificate per member and the managers' client certificate."""
        return Path(self.dir) / "etcd-tls"

    def etcd_member_tls(self, node: Node) -> etcdtls.EtcdTLS:
        return etcdtls.ensure_pair(self.etcd_tls_dir, node.name, [node.addr, "127.0.0.1"], server=True)

    def etcd_client_tls(self) -> etcdtls.EtcdTLS:
        return etcdtls.ensure_pair(self.etcd_tls_dir, "managers", [], server=False)

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)  # it holds the join tokens
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, self.state_file)


def labs_root() -> Path:
    """Where labs keep their state and data (``SHOAL_LAB_DIR`` overrides, e.g. for tests)."""
    return Path(os.environ.get("SHOAL_LAB_DIR") or DEFAULT_ROOT)


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise LabError(f"invalid lab name {name!r}: use 1-32 of a-z, 0-9, '-' and '_', starting with a letter or digit")
    return name


def link_prefix(name: str) -> str:
    """A short, stable prefix for the lab's interface names (Linux allows 15 characters)."""
    return "sl" + hashlib.sha1(name.encode()).hexdigest()[:6]


def _from_dict(d: dict) -> Lab:
    nodes = []
    for n in d.pop("nodes", []):
        for key in ("daemon", "etcd"):
            if n.get(key):
                n[key] = Proc(**n[key])
        nodes.append(Node(**n))
    return Lab(**d, nodes=nodes)


def load(name: str) -> Lab:
    f = labs_root() / check_name(name) / "lab.json"
    try:
        return _from_dict(json.loads(f.read_text()))
    except FileNotFoundError:
        raise LabError(f"no lab named {name!r} (see `shoal lab ls`)") from None
    except (ValueError, TypeError) as exc:
        raise LabError(f"unreadable lab state {f}: {exc}") from None


def all_labs() -> list[Lab]:
    root = labs_root()
    if not root.is_dir():
        return []
    found = []
    for f in sorted(root.glob("*/lab.json")):
        with contextlib.suppress(LabError, OSError):
            found.append(load(f.parent.name))
    return found


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Serialise commands that change one lab (a second ``lab start`` waits for the first)."""
    root = labs_root()
    root.mkdir(parents=True, exist_ok=True)
    lock = root / f".{check_name(name)}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if not (root / name).exists():  # no such lab (refused, or just removed): leave nothing behind
            with contextlib.suppress(OSError):
                lock.unlink()
        os.close(fd)


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """One lock for the whole machine (whatever SHOAL_LAB_DIR says): subnets and links are shared."""
    os.makedirs(MACHINE_LOCK_DIR, exist_ok=True)
    fd = os.open(os.path.join(MACHINE_LOCK_DIR, "lab.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def parse_subnet(text: str, nodes: int) -> ipaddress.IPv4Network:
    """A user's --subnet, checked: IPv4, private, no host bits, room for the bridge and every node."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise LabError(f"invalid --subnet {text!r}: {exc}") from None
    if not isinstance(net, ipaddress.IPv4Network) or not net.is_private or net.is_loopback or net.is_link_local:
        raise LabError(f"invalid --subnet {text!r}: use a private IPv4 range such as 172.30.0.0/24")
    if net.num_addresses - 2 < nodes + 1:
        raise LabError(f"--subnet {text} is too small for a bridge address and {nodes} nodes")
    return net


def overlapping(net: ipaddress.IPv4Network, taken: Iterable[ipaddress.IPv4Network]) -> list[ipaddress.IPv4Network]:
    return [t for t in taken if net.overlaps(t)]


def choose_subnet(taken: Iterable[ipaddress.IPv4Network], nodes: int) -> ipaddress.IPv4Network:
    """The first /24 of 172.30.0.0/16 (or larger block when needed) that overlaps nothing taken."""
    taken = list(taken)
    prefix = 24
    while (2 ** (32 - prefix)) - 3 < nodes:
        prefix -= 1
    for net in DEFAULT_POOL.subnets(new_prefix=prefix):
        if not overlapping(net, taken):
            return net
    raise LabError("no free subnet in 172.30.0.0/16 on this machine; pass --subnet")


def plan(
    name: str, managers: int, workers: int, subnet: ipaddress.IPv4Network, root: Path, managers_run_tasks: bool = False
) -> Lab:
    """The lab's full layout: node names, addresses, namespaces, links and data dirs (no cgroups yet)."""
    if managers not in MANAGER_COUNTS:
        raise LabError(f"--managers must be 1, 3 or 5 (an etcd cluster needs an odd size), not {managers}")
    if workers < 0:
        raise LabError("--workers must be 0 or more")
    hosts = subnet.hosts()
    bridge_addr = str(next(hosts))
    prefix = link_prefix(name)
    lab_dir = root / name
    lab = Lab(
        name=name, dir=str(lab_dir), subnet=str(subnet), bridge=f"{prefix}br", bridge_addr=bridge_addr,
        etcd_cluster=managers > 1, managers_run_tasks=managers_run_tasks,
    )  # fmt: skip
    names = [("manager", f"manager{i}") for i in range(1, managers + 1)] + [("worker", f"worker{i}") for i in range(1, workers + 1)]
    for i, (role, node) in enumerate(names):
        lab.nodes.append(
            Node(
                name=node, role=role, addr=str(next(hosts)), netns=f"shoal-{name}-{node}", veth=f"{prefix}v{i}",
                data_dir=str(lab_dir / node), mntns=str(lab_dir / ".mntns" / node),
                socket=str(lab_dir / node / "manager.sock") if role == "manager" else "",  # in its data dir: the only lab dir its host sees
            )  # fmt: skip
        )
    return lab


def prefixlen(lab: Lab) -> int:
    return ipaddress.ip_network(lab.subnet).prefixlen
