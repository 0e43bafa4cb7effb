"""What a ``shoal manager`` and a ``shoal worker`` process run: the composition root of a node.

This is the one place the layers are put together. A manager process runs the Manager and, like a
Swarm manager, an Agent of its own (joined with the manager token), so a single ``shoal manager`` is
a working one-node cluster; a worker process runs only the Agent. Both drive the embedded runtime and
follow role changes through ``ManagerRole``. The CLI turns flags into the options here and prints;
it never imports the manager or the worker itself. Every failure a user can cause or meet ends as
one ``NodeError`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from shoal import ids, log, metrics
from shoal.etcdtls import EtcdTLS
from shoal.manager.server import Manager, ManagerConfig, ManagerError
from shoal.node.join import join_as_manager
from shoal.node.options import (
    AVAILABILITY,
    ManagerOptions,
    ManagerReady,
    NodeError,
    NodeOptions,
    WorkerOptions,
)
from shoal.node.role import ManagerRole, default_listen, manager_data_dir
from shoal.runtime import Runtime
from shoal.worker import image_pull
from shoal.worker.agent import Agent, AgentConfig
from shoal.worker.files import TaskFiles
from shoal.worker.join import JoinError
from shoal.worker.netagent import NetAgent
from shoal.worker.runtime_executor import RuntimeExecutor

_log = log.get(__name__)


def node_id(data_dir: Path) -> str:
    """The node id kept in the data dir, created on first start."""
    f = data_dir / "agent" / "node.json"
    if f.exists():
        return json.loads(f.read_text())["node_id"]
    return save_node_id(data_dir, ids.new_id())


def save_node_id(data_dir: Path, nid: str) -> str:
    """Keep ``nid`` as this node's id (the one the cluster gave it when it joined)."""
    f = data_dir / "agent" / "node.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"node_id": nid}))
    return nid


ETC_DIR = "/etc/shoal"


def secret_paths(data_dir: Path, socket_path: str) -> list[str]:
    """What a node's containers must not see, for the runtime's ``masked_paths`` (issue 11).

    The data dir holds ``certificates/`` (node key, admin key, ``ca.kek``), etcd's data, the agent's
    and the runtime's state; /etc/shoal its configuration; the control socket may live outside both.
    A ``host`` container's root is the node's own, so without these masks it could read them all.
    """
    return [str(data_dir), ETC_DIR, socket_path]


def _runtime(data_dir: Path, nid: str, cgroup_parent: str) -> Runtime:
    return Runtime(data_dir / "runtime", cgroup_parent=cgroup_parent or f"shoal/{nid[:12]}")


def _network(opts: NodeOptions, agent_dir: Path) -> NetAgent | None:
    """The agent's networking (its tasks' namespaces under ``agent_dir``), unless ``--no-network``."""
    return NetAgent(agent_dir / "net", direct_routing=opts.direct_routing) if opts.network else None


def _hostname(opts: NodeOptions) -> str:
    """The node's name as ``node ls`` shows it (tasks see it as SHOAL_NODE_HOSTNAME)."""
    return opts.hostname or socket.gethostname()


def _start(opts: NodeOptions) -> tuple[Path, str]:
    """Logging, the resolved data dir and the node id, metrics: the first steps of every node process."""
    log.setup(opts.log_level)
    data_dir = opts.data_dir.resolve()
    nid = node_id(data_dir)
    if opts.metrics_addr:
        metrics.serve(opts.metrics_addr)
    return data_dir, nid


def run_until_signal(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` until it returns or SIGINT/SIGTERM cancels it (a clean stop, not an error).

    The first signal starts a clean stop: the node stops and deletes every container, then its
    launcher. A second one abandons that stop as a kill -9 would: what still runs keeps running and
    is re-adopted at the next start.
    """

    async def wrapper() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        signals = 0

        def on_signal(sig: signal.Signals) -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                _log.info("stopping: containers are stopped and deleted (signal again to leave them running)", signal=sig.name)
                task.cancel()
                return
            _log.warning("stopping now: running containers are left running and re-adopted at the next start", signal=sig.name)
            for t in asyncio.all_tasks(loop):  # the clean stop too, wherever it runs: a TaskGroup swallows a second cancel
                t.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        with contextlib.suppress(asyncio.CancelledError):
            await coro

    asyncio.run(wrapper())


def first_leaf(exc: BaseException) -> BaseException:
    """The first exception of a group that is not a group itself (task groups nest: the agent's inside the node's)."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _run_or_fail(coro: Coroutine[Any, Any, None]) -> None:
    """``run_until_signal``, with a manager's or a join's error turned into one NodeError."""
    message = ""
    try:
        run_until_signal(coro)
    except* ManagerError as eg:
        message = str(first_leaf(eg))
    except* JoinError as eg:
        message = str(first_leaf(eg))
    if message:
        raise NodeError(message)


def run_manager(opts: ManagerOptions, on_ready: Callable[[ManagerReady], None]) -> None:
    """Run a manager node until a signal; ``on_ready`` is called once it serves the control API."""
    opts.check()
    data_dir, nid = _start(opts)
    cfg = ManagerConfig(
        data_dir=data_dir, node_id=nid, listen_addr=opts.listen_addr, advertise_addr=opts.advertise_addr,
        socket_path=opts.socket_path, socket_group=opts.socket_group, etcd_endpoints=list(opts.etcd), heartbeat_period=opts.heartbeat_period,
        etcd_tls=EtcdTLS(Path(opts.etcd_ca), Path(opts.etcd_cert), Path(opts.etcd_key)) if opts.etcd else None,
        reconnect_grace=opts.reconnect_grace, election_ttl=opts.election_ttl,
        history_limit=opts.history_limit,
    )  # fmt: skip
    if opts.default_addr_pool:
        cfg.default_addr_pool = opts.default_addr_pool
    cfg.default_addr_pool_mask_length = opts.default_addr_pool_mask_length
    _run_or_fail(_manager_main(opts, cfg, Manager(cfg), on_ready))


async def _manager_main(opts: ManagerOptions, cfg: ManagerConfig, mgr: Manager, on_ready: Callable[[ManagerReady], None]) -> None:
    availability = AVAILABILITY[opts.availability]
    if opts.join:
        joined = await join_as_manager(opts.join, opts.token, cfg.data_dir, cfg.node_id, opts.hostname, availability)
        if joined is not None:
            cfg.ca_kek, cfg.node_id = joined[0], save_node_id(cfg.data_dir, joined[1])
    runtime = _runtime(cfg.data_dir, cfg.node_id, opts.cgroup_parent)
    async with asyncio.TaskGroup() as tg:
        mtask = tg.create_task(mgr.run())
        started = asyncio.create_task(mgr.started.wait())
        await asyncio.wait({mtask, started}, return_when=asyncio.FIRST_COMPLETED)
        if mtask.done():
            started.cancel()
            return
        c = mgr.cluster_obj
        on_ready(ManagerReady(
            cfg.node_id, cfg.socket_path, mgr.advertise, c.worker_token, c.manager_token, mgr.certs.dir, mgr.created_cluster
        ))  # fmt: skip
        await runtime.open()
        try:
            acfg = AgentConfig(
                [mgr.advertise], c.manager_token, cfg.data_dir / "agent", opts.hostname, cfg.node_id,
                availability=availability, certs_dir=mgr.certs.dir,
            )  # fmt: skip
            puller = image_pull.for_node([mgr.advertise], mgr.certs.dir, runtime.image_root)
            masked = secret_paths(cfg.data_dir, cfg.socket_path)
            net = _network(opts, acfg.data_dir)
            files = TaskFiles()  # the node's secrets and configs: memory only, shared by the agent and its executor
            agent = Agent(acfg, RuntimeExecutor(runtime, _hostname(opts), puller, masked, net, files), net, files)
            role = ManagerRole(cfg)
            role.adopt(mgr, mtask)  # `node demote` stops this manager; the node stays, as a worker
            agent.on_role = role.on_role
            tg.create_task(role.watch())
            await agent.run()
        finally:
            await runtime.close()


def run_worker(opts: WorkerOptions) -> None:
    """Run a worker node joined to ``opts.join`` until a signal (``node promote`` makes it a manager in place)."""
    opts.check()
    data_dir, nid = _start(opts)
    _run_or_fail(_worker_main(opts, data_dir, nid))


async def _worker_main(opts: WorkerOptions, data_dir: Path, nid: str) -> None:
    runtime = _runtime(data_dir, nid, opts.cgroup_parent)
    await runtime.open()
    try:
        cfg = AgentConfig(list(opts.join), opts.token, data_dir / "agent", opts.hostname, nid, availability=AVAILABILITY[opts.availability])
        puller = image_pull.for_node(cfg.managers, cfg.data_dir / "certificates", runtime.image_root)
        listen = opts.manager_listen_addr or default_listen(cfg.managers[0])
        base = ManagerConfig(
            data_dir=manager_data_dir(data_dir), node_id=nid, listen_addr=listen,
            socket_path=opts.manager_socket or str(data_dir / "manager.sock"),
        )  # fmt: skip
        masked = secret_paths(data_dir, base.socket_path)  # the manager dir is inside data_dir
        net = _network(opts, cfg.data_dir)
        files = TaskFiles()  # the node's secrets and configs: memory only, shared by the agent and its executor
        agent = Agent(cfg, RuntimeExecutor(runtime, _hostname(opts), puller, masked, net, files), net, files)
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
