"""The daemon commands: ``shoal manager`` and ``shoal worker``.

Only flags and output live here: the flags become ``shoal.node.options``, ``shoal.node.daemon``
composes and runs the process (manager, agent, runtime, role changes), and its errors are printed as
one line with exit status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from shoal.node import options as node

AVAIL_CHOICES = list(node.AVAILABILITY)


def _fail(msg: str) -> None:
    click.echo(f"Error: {msg}", err=True)
    sys.exit(1)


def _common(f: Any) -> Any:
    f = click.option("--metrics-addr", default="", help="serve Prometheus /metrics on HOST:PORT")(f)
    f = click.option("--hostname", default="", help="node hostname (default: the machine's)")(f)
    f = click.option("--log-level", default="info", envvar="SHOAL_LOG_LEVEL", show_envvar=True,
                     type=click.Choice(["debug", "info", "warning", "error"]))(f)
    f = click.option("--cgroup-parent", default="", help="cgroup under which this node's containers live")(f)
    f = click.option("--network/--no-network", "network", default=True, show_default=True,
                     help="wire tasks into the cluster's networks (bridge shoal0, overlays, routing mesh, DNS); "
                     "--no-network: tasks get loopback only and the node's namespace is left alone")(f)
    f = click.option("--direct-routing", is_flag=True, default=False,
                     help="route the task subnets of the nodes on this node's own link straight to them, so the "
                     "routing mesh reaches their tasks without VXLAN (as flannel's DirectRouting). Only where the "
                     "network forwards packets addressed to task subnets between nodes: one layer-2 segment "
                     "without source/destination checks (not most clouds' virtual networks)")(f)
    return f


def ready_message(r: node.ManagerReady) -> str:
    """What ``shoal manager`` prints once it serves: where the CLI connects and how others join.

    The join tokens are printed only by the start that created the cluster (``--init``, or a first start
    on an empty store); later starts point at ``shoal join-token``, so logs kept by journald do not
    collect them at every restart.
    """
    head = f"Manager {r.node_id[:12]} is ready; the CLI socket is {r.socket_path}.\n"
    if not r.created:
        return head + (
            "To add a worker or a manager, print the command with `shoal join-token worker|manager`.\n"
            f"Admin client certificate for the CLI over TCP: {r.certs_dir}/admin.crt\n"
        )
    return head + (
        f"To add a worker to this cluster, run:\n\n"
        f"    shoal worker --join {r.advertise} --token {r.worker_token} --data-dir ./data/worker\n\n"
        f"To add a manager, use the token {r.manager_token}\n"
        f"(shoal manager --join {r.advertise} --token {r.manager_token} --etcd ...)\n"
        f"Admin client certificate for the CLI over TCP: {r.certs_dir}/admin.crt\n"
    )


def _print_ready(r: node.ManagerReady) -> None:
    click.echo(ready_message(r))
    sys.stdout.flush()


@click.command("manager")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("/var/lib/shoal/manager"), show_default=True)
@click.option("--listen-addr", default="127.0.0.1:4242", show_default=True, help="gRPC address for agents and remote CLIs")
@click.option("--advertise-addr", default="", help="address other nodes use to reach this manager")
@click.option("--socket", "socket_path", default="/run/shoal/manager.sock", show_default=True, help="unix socket for the CLI")
@click.option("--socket-group", default="", help="group allowed to use the CLI socket (mode 0660; default: root only)")
@click.option("--etcd", default="", help="comma-separated etcd endpoints, https:// (default: start an embedded etcd)")
@click.option("--etcd-ca", default="", envvar="SHOAL_ETCD_CA", help="with --etcd: the etcd CA certificate")
@click.option("--etcd-cert", default="", envvar="SHOAL_ETCD_CERT", help="with --etcd: this manager's etcd client certificate")
@click.option("--etcd-key", default="", envvar="SHOAL_ETCD_KEY", help="with --etcd: its key")
@click.option("--availability", type=click.Choice(AVAIL_CHOICES), default="active", show_default=True)
@click.option("--heartbeat-period", default=1.0, show_default=True, help="agent heartbeat period in seconds")
@click.option("--reconnect-grace", default=1.0, show_default=True, help="seconds a node whose connection closed has to reconnect before it is down")
@click.option("--election-ttl", default=2.0, show_default=True, help="seconds a dead leader holds the leadership (whole seconds, >= 1; etcd grants at least 1.5x its election timeout)")
@click.option("--task-history-limit", default=5, show_default=True)
@click.option("--init", "init", is_flag=True, help="create the cluster (CA, tokens, admin certificate); implied when the store holds no cluster")
@click.option("--default-addr-pool", default="", help="CIDR the nodes' and networks' subnets come from (with --init; default 10.210.0.0/16)")
@click.option("--default-addr-pool-mask-length", type=int, default=0,
              help="prefix length of the node and network subnets taken from the pool (with --init; default 24)")
@click.option("--join", "join", default="", help="join an existing cluster through this manager (HOST:PORT[,...]) with a manager --token")
@click.option("--token", envvar="SHOAL_TOKEN", default="", help="manager join token (with --join)")
@_common
def manager_cmd(etcd: str, join: str, task_history_limit: int, **o: Any) -> None:
    """Run a manager node (it runs tasks too unless --availability drain).

    The first manager of a cluster creates its CA (``--init``, or automatically on an empty store)
    and writes an admin client certificate to DATA_DIR/certificates/admin.{crt,key}. Another manager
    on the same etcd joins with ``--join ADDR --token <manager token>`` once, which gives it the key
    that unseals the CA key.
    """
    from shoal.node import daemon  # the manager, worker and runtime load only for the daemons

    opts = node.ManagerOptions(etcd=node.split_list(etcd), join=node.split_list(join), history_limit=task_history_limit, **o)
    try:
        daemon.run_manager(opts, _print_ready)
    except node.NodeError as exc:
        _fail(str(exc))


@click.command("worker")
@click.option("--join", "join", required=True, help="manager address(es), HOST:PORT[,HOST:PORT...]")
@click.option("--token", envvar="SHOAL_TOKEN", required=True, help="the join token the manager printed")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("/var/lib/shoal/worker"), show_default=True)
@click.option("--availability", type=click.Choice(AVAIL_CHOICES), default="active", show_default=True)
@click.option("--manager-listen-addr", default="", help="where the manager listens once this node is promoted (default: this node's address towards the managers, port 4242)")
@click.option("--manager-socket", default="", help="the CLI socket of that manager (default: DATA_DIR/manager.sock)")
@_common
def worker_cmd(join: str, **o: Any) -> None:
    """Run a worker node joined to a manager (``node promote`` makes it a manager in place)."""
    from shoal.node import daemon  # the manager, worker and runtime load only for the daemons

    try:
        daemon.run_worker(node.WorkerOptions(join=node.split_list(join), **o))
    except node.NodeError as exc:
        _fail(str(exc))


def register(group: click.Group) -> None:
    group.add_command(manager_cmd)
    group.add_command(worker_cmd)
