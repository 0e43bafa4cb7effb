"""The daemon commands: ``shoal manager`` and ``shoal worker``.

This is where the layers are composed: a manager process runs the Manager and, like a Swarm manager,
an Agent of its own (joined with the manager token) so a single ``shoal manager`` is a working
one-node cluster; a worker process runs only the Agent. Both drive the embedded runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

import click

from shoal import ids, log, metrics

AVAIL = {"active": 0, "pause": 1, "drain": 2}


def _node_id(data_dir: Path) -> str:
    """The node id kept in the data dir, created on first start."""
    f = data_dir / "agent" / "node.json"
    if f.exists():
        return json.loads(f.read_text())["node_id"]
    node_id = ids.new_id()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"node_id": node_id}))
    return node_id


def _runtime(data_dir: Path, node_id: str, cgroup_parent: str):
    from shoal.runtime import Runtime

    return Runtime(data_dir / "runtime", cgroup_parent=cgroup_parent or f"shoal/{node_id[:12]}")


async def _until_signal(main: asyncio.Task) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)


def _run(coro) -> None:
    async def wrapper() -> None:
        task = asyncio.current_task()
        assert task is not None
        await _until_signal(task)
        with contextlib.suppress(asyncio.CancelledError):
            await coro

    asyncio.run(wrapper())


def _fail(msg: str) -> None:
    click.echo(f"Error: {msg}", err=True)
    sys.exit(1)


def _common(f):
    f = click.option("--metrics-addr", default="", help="serve Prometheus /metrics on HOST:PORT")(f)
    f = click.option("--hostname", default="", help="node hostname (default: the machine's)")(f)
    f = click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))(f)
    f = click.option("--cgroup-parent", default="", help="cgroup under which this node's containers live")(f)
    return f


@click.command("manager")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("/var/lib/shoal/manager"), show_default=True)
@click.option("--listen-addr", default="127.0.0.1:4242", show_default=True, help="gRPC address for agents and remote CLIs")
@click.option("--advertise-addr", default="", help="address other nodes use to reach this manager")
@click.option("--socket", "socket_path", default="/run/shoal/manager.sock", show_default=True, help="unix socket for the CLI")
@click.option("--etcd", default="", help="comma-separated etcd endpoints (default: start an embedded etcd)")
@click.option("--availability", type=click.Choice(list(AVAIL)), default="active", show_default=True)
@click.option("--heartbeat-period", default=1.0, show_default=True, help="agent heartbeat period in seconds")
@click.option("--task-history-limit", default=5, show_default=True)
@click.option("--init", "init", is_flag=True, help="create the cluster (CA, tokens, admin certificate); implied when the store holds no cluster")
@click.option("--join", "join", default="", help="join an existing cluster through this manager (HOST:PORT[,...]) with a manager --token")
@click.option("--token", envvar="SHOAL_TOKEN", default="", help="manager join token (with --join)")
@_common
def manager_cmd(data_dir, listen_addr, advertise_addr, socket_path, etcd, availability, heartbeat_period, task_history_limit, init, join, token, metrics_addr, hostname, log_level, cgroup_parent):
    """Run a manager node (it runs tasks too unless --availability drain).

    The first manager of a cluster creates its CA (``--init``, or automatically on an empty store)
    and writes an admin client certificate to DATA_DIR/certificates/admin.{crt,key}. Another manager
    on the same etcd joins with ``--join ADDR --token <manager token>`` once, which gives it the key
    that unseals the CA key.
    """
    from shoal.cli.manager_role import ManagerRole
    from shoal.manager.server import Manager, ManagerConfig, ManagerError
    from shoal.worker import image_pull
    from shoal.worker.agent import Agent, AgentConfig, JoinError
    from shoal.worker.runtime_executor import RuntimeExecutor

    log.setup(log_level)
    data_dir = data_dir.resolve()
    node_id = _node_id(data_dir)
    if metrics_addr:
        metrics.serve(metrics_addr)
    cfg = ManagerConfig(
        data_dir=data_dir, node_id=node_id, listen_addr=listen_addr, advertise_addr=advertise_addr, socket_path=socket_path,
        etcd_endpoints=[e for e in etcd.split(",") if e], heartbeat_period=heartbeat_period, history_limit=task_history_limit,
    )
    if init and join:
        _fail("--init creates a new cluster; --join joins an existing one: use one of them")
    if join and not token:
        _fail("--join needs the manager join token (--token)")
    mgr = Manager(cfg)

    async def main() -> None:
        if join:
            cfg.ca_kek = await _join_as_manager(join, token, data_dir, node_id, hostname, AVAIL[availability])
        runtime = _runtime(data_dir, node_id, cgroup_parent)
        async with asyncio.TaskGroup() as tg:
            mtask = tg.create_task(mgr.run())
            started = asyncio.create_task(mgr.started.wait())
            await asyncio.wait({mtask, started}, return_when=asyncio.FIRST_COMPLETED)
            if mtask.done():
                started.cancel()
                return
            c = mgr.cluster_obj
            click.echo(
                f"Manager {node_id[:12]} is ready; the CLI socket is {socket_path}.\n"
                f"To add a worker to this cluster, run:\n\n"
                f"    shoal worker --join {mgr.advertise} --token {c.worker_token} --data-dir ./data/worker\n\n"
                f"To add a manager, use the token {c.manager_token}\n"
                f"(shoal manager --join {mgr.advertise} --token {c.manager_token} --etcd ...)\n"
                f"Admin client certificate for the CLI over TCP: {mgr.certs.dir}/admin.crt\n",
            )
            sys.stdout.flush()
            await runtime.open()
            try:
                acfg = AgentConfig([mgr.advertise], c.manager_token, data_dir / "agent", hostname, node_id, availability=AVAIL[availability], certs_dir=mgr.certs.dir)
                puller = image_pull.for_node([mgr.advertise], mgr.certs.dir, runtime.image_root)
                agent = Agent(acfg, RuntimeExecutor(runtime, puller=puller))
                role = ManagerRole(cfg)
                role.adopt(mgr, mtask)  # `node demote` stops this manager; the node stays, as a worker
                agent.on_role = role.on_role
                tg.create_task(role.watch())
                await agent.run()
            finally:
                await runtime.close()

    try:
        _run(main())
    except* ManagerError as eg:
        _fail(str(eg.exceptions[0]))
    except* JoinError as eg:
        _fail(str(eg.exceptions[0]))


async def _join_as_manager(addrs: str, token: str, data_dir: Path, node_id: str, hostname: str, availability: int = 0) -> bytes | None:
    """Join through an existing manager: this manager's certificate and the CA key's KEK."""
    from shoal.certfiles import CertFiles
    from shoal.proto import dispatcher_pb2 as dpb
    from shoal.proto import types_pb2 as pb
    from shoal.worker.agent import AgentConfig, JoinError, describe
    from shoal.worker.join import join

    files = CertFiles(data_dir / "certificates")
    if (files.dir / "ca.kek").exists():
        return None  # joined before
    req = dpb.RegisterRequest(node_id=node_id, description=describe(AgentConfig([], token, data_dir, hostname)), availability=availability)
    errors = []
    for addr in [a for a in addrs.split(",") if a]:
        try:
            resp = await join(addr, token, files, req)
        except OSError as exc:
            errors.append(f"{addr}: {exc}")
            continue
        except grpc_error() as exc:
            raise JoinError(f"join refused by {addr}: {exc.details()}") from None
        if resp.role != pb.NodeSpec.MANAGER or not resp.ca_key_kek:
            raise JoinError("this is a worker token (or the node is a worker): use `shoal worker`, or the manager token")
        return resp.ca_key_kek
    raise JoinError("cannot reach any manager to join: " + "; ".join(errors))


def grpc_error() -> type[Exception]:
    import grpc

    return grpc.aio.AioRpcError


@click.command("worker")
@click.option("--join", "join", required=True, help="manager address(es), HOST:PORT[,HOST:PORT...]")
@click.option("--token", envvar="SHOAL_TOKEN", required=True, help="the join token the manager printed")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("/var/lib/shoal/worker"), show_default=True)
@click.option("--availability", type=click.Choice(list(AVAIL)), default="active", show_default=True)
@click.option("--manager-listen-addr", default="", help="where the manager listens once this node is promoted (default: this node's address towards the managers, port 4242)")
@click.option("--manager-socket", default="", help="the CLI socket of that manager (default: DATA_DIR/manager.sock)")
@_common
def worker_cmd(join, token, data_dir, availability, manager_listen_addr, manager_socket, metrics_addr, hostname, log_level, cgroup_parent):
    """Run a worker node joined to a manager (``node promote`` makes it a manager in place)."""
    from shoal.cli.manager_role import ManagerRole, default_listen, manager_data_dir
    from shoal.manager.server import ManagerConfig, ManagerError
    from shoal.worker import image_pull
    from shoal.worker.agent import Agent, AgentConfig, JoinError
    from shoal.worker.runtime_executor import RuntimeExecutor

    log.setup(log_level)
    data_dir = data_dir.resolve()
    node_id = _node_id(data_dir)
    if metrics_addr:
        metrics.serve(metrics_addr)

    async def main() -> None:
        runtime = _runtime(data_dir, node_id, cgroup_parent)
        await runtime.open()
        try:
            cfg = AgentConfig([a for a in join.split(",") if a], token, data_dir / "agent", hostname, node_id, availability=AVAIL[availability])
            puller = image_pull.for_node(cfg.managers, cfg.data_dir / "certificates", runtime.image_root)
            agent = Agent(cfg, RuntimeExecutor(runtime, puller=puller))
            listen = manager_listen_addr or default_listen(cfg.managers[0])
            base = ManagerConfig(data_dir=manager_data_dir(data_dir), node_id=node_id, listen_addr=listen, socket_path=manager_socket or str(data_dir / "manager.sock"))
            role = ManagerRole(base)
            agent.on_role = role.on_role
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(role.watch())
                    tg.create_task(agent.run())
            finally:
                await role.stop()
        finally:
            await runtime.close()

    try:
        _run(main())
    except* JoinError as eg:
        _fail(str(eg.exceptions[0]))
    except* ManagerError as eg:
        _fail(str(eg.exceptions[0]))


def register(group: click.Group) -> None:
    group.add_command(manager_cmd)
    group.add_command(worker_cmd)
