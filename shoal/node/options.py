"""The settings a node process is started with, and the one error it ends with.

Plain data, checked before anything is written, and light to import: the CLI builds these from its
flags at start-up without loading the manager, the worker or the runtime (``shoal.node.daemon`` does).
"""

from __future__ import annotations

import grp
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from shoal.proto import types_pb2 as pb

AVAILABILITY = {"active": pb.NodeSpec.ACTIVE, "pause": pb.NodeSpec.PAUSE, "drain": pb.NodeSpec.DRAIN}
"""``--availability`` words -> NodeSpec.Availability."""


class NodeError(Exception):
    """Why a node process cannot start or stopped: the one line the user sees (exit status 1)."""


def split_list(text: str) -> list[str]:
    """``a,b,,c`` -> ``["a", "b", "c"]`` (comma-separated addresses and endpoints)."""
    return [x for x in text.split(",") if x]


@dataclass(kw_only=True)
class NodeOptions:
    """What every node process is given (``shoal manager`` and ``shoal worker`` alike)."""

    data_dir: Path
    hostname: str = ""
    availability: str = "active"  # a key of AVAILABILITY
    cgroup_parent: str = ""
    metrics_addr: str = ""
    log_level: str = "info"
    network: bool = True  # the agent wires tasks into the cluster's networks (False: loopback only)
    direct_routing: bool = False  # route on-link nodes' task subnets to them (worker/network/routes.py)

    def check(self) -> None:
        """Refuse settings that cannot work, before anything is written; NodeError names the flag."""
        if self.availability not in AVAILABILITY:
            raise NodeError(f"--availability {self.availability!r}: expected one of {', '.join(AVAILABILITY)}")


def check_pool(cidr: str) -> None:
    """Refuse a ``--default-addr-pool`` that is not an IPv4 network of /8 to /24."""
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise NodeError(f"invalid --default-addr-pool {cidr!r}: {exc}") from None
    if not isinstance(net, ipaddress.IPv4Network) or not 8 <= net.prefixlen <= 24:
        raise NodeError(f"invalid --default-addr-pool {cidr!r}: use an IPv4 network from /8 to /24 (e.g. 10.210.0.0/16)")


@dataclass(kw_only=True)
class ManagerOptions(NodeOptions):
    """``shoal manager``: a manager node, which runs tasks too unless drained."""

    listen_addr: str = "127.0.0.1:4242"
    advertise_addr: str = ""
    socket_path: str = "/run/shoal/manager.sock"
    socket_group: str = ""  # the group that may use the CLI socket (default: root's only)
    etcd: list[str] = field(default_factory=list)  # empty: start an embedded etcd
    etcd_ca: str = ""  # with ``etcd``: the etcd CA, and this manager's etcd client certificate and key
    etcd_cert: str = ""
    etcd_key: str = ""
    heartbeat_period: float = 1.0
    reconnect_grace: float = 1.0  # a node whose session closed is down unless it reconnects within this
    election_ttl: float = 2.0  # the leader's lease: how long a dead leader holds the leadership
    history_limit: int = 5
    init: bool = False
    join: list[str] = field(default_factory=list)  # managers to join through, with ``token``
    token: str = ""
    default_addr_pool: str = ""  # empty: 10.210.0.0/16; only when this manager creates the cluster
    default_addr_pool_mask_length: int = 0  # 0: /24 node and network subnets; only when creating the cluster

    def check(self) -> None:
        super().check()
        if self.init and self.join:
            raise NodeError("--init creates a new cluster; --join joins an existing one: use one of them")
        if self.default_addr_pool and self.join:
            raise NodeError("--default-addr-pool is chosen when the cluster is created (--init), not when joining it")
        if self.default_addr_pool:
            check_pool(self.default_addr_pool)
        if self.default_addr_pool_mask_length:
            self._check_mask()
        if self.join and not self.token:
            raise NodeError("--join needs the manager join token (--token)")
        if not (self.election_ttl >= 1 and float(self.election_ttl).is_integer()):
            raise NodeError(f"--election-ttl {self.election_ttl:g}: etcd leases are whole seconds, at least 1")
        self._check_etcd()
        if self.socket_group and not self.socket_group.isdigit():
            try:
                grp.getgrnam(self.socket_group)
            except KeyError:
                raise NodeError(f"--socket-group {self.socket_group!r}: no such group") from None


    def _check_mask(self) -> None:
        mask = self.default_addr_pool_mask_length
        if self.join:
            raise NodeError("--default-addr-pool-mask-length is chosen when the cluster is created (--init), not when joining it")
        pool = ipaddress.ip_network(self.default_addr_pool or "10.210.0.0/16")
        if not pool.prefixlen <= mask <= 29:
            raise NodeError(f"invalid --default-addr-pool-mask-length {mask}: between the pool's /{pool.prefixlen} and /29")

    def _check_etcd(self) -> None:
        files = {"--etcd-ca": self.etcd_ca, "--etcd-cert": self.etcd_cert, "--etcd-key": self.etcd_key}
        if not self.etcd:
            if any(files.values()):
                raise NodeError("--etcd-ca/--etcd-cert/--etcd-key go with --etcd (an embedded etcd makes its own)")
            return
        plain = [e for e in self.etcd if not e.startswith("https://")]
        if plain:
            raise NodeError(f"--etcd {plain[0]!r}: etcd must serve TLS with client certificates (https://...; see deploy/GUIDE.md)")
        for flag, path in files.items():
            if not path:
                raise NodeError(f"--etcd needs {flag} (etcd's CA, and this manager's client certificate and key: `shoal etcd-certs`)")
            if not Path(path).is_file():
                raise NodeError(f"{flag} {path}: no such file")


@dataclass(kw_only=True)
class WorkerOptions(NodeOptions):
    """``shoal worker``: a worker node joined through ``join`` with ``token``."""

    join: list[str]  # manager addresses
    token: str
    manager_listen_addr: str = ""  # where a promoted node's manager listens (default: towards the managers, :4242)
    manager_socket: str = ""  # its CLI socket (default: DATA_DIR/manager.sock)

    def check(self) -> None:
        super().check()
        if not self.join:
            raise NodeError("--join needs at least one manager address (HOST:PORT[,HOST:PORT...])")
        if not self.token:
            raise NodeError("--token is needed to join (the token the manager printed)")


@dataclass(frozen=True)
class ManagerReady:
    """What a started manager tells its user: where the CLI connects and how others join."""

    node_id: str
    socket_path: str
    advertise: str
    worker_token: str
    manager_token: str
    certs_dir: Path
    created: bool = True  # this start created the cluster: only then are the tokens printed
