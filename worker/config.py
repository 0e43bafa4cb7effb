"""What an agent is told when it starts, and what it tells the cluster about its host.

``AgentConfig`` comes from the command line (or the manager process that runs its own agent);
``describe`` reads the host's resources, which the scheduler places tasks against.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass, field
from pathlib import Path

from shoal import __version__
from shoal.proto import types_pb2 as pb


@dataclass
class AgentConfig:
    managers: list[str]
    """Manager addresses to join through (HOST:PORT); the cluster tells the agent about the others."""
    token: str
    """The join token, used only while the node has no valid certificate."""
    data_dir: Path
    """Where the node keeps its id (``node.json``) and, by default, its certificate."""
    hostname: str = ""
    """The name the node shows in ``node ls``; default: this host's name."""
    node_id: str = ""
    """A preset id (the manager's own agent uses the manager's id); default: the one the cluster gives."""
    availability: int = pb.NodeSpec.ACTIVE
    """For the first join only; later the cluster's record wins."""
    engine_labels: dict[str, str] = field(default_factory=dict)
    """Labels placement constraints can match (``engine.labels.X``)."""
    certs_dir: Path | None = None
    """Where the node certificate lives; default: ``<data_dir>/certificates``."""


def mem_total(meminfo: str) -> int:
    """Bytes of memory from the text of ``/proc/meminfo`` (0 if it does not say)."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def describe(cfg: AgentConfig, meminfo: str | None = None) -> pb.NodeDescription:
    """This host as the scheduler sees it: name, platform, CPUs, memory, engine labels."""
    if meminfo is None:
        with open("/proc/meminfo") as f:
            meminfo = f.read()
    d = pb.NodeDescription(
        hostname=cfg.hostname or socket.gethostname(),
        platform_os=platform.system().lower(),
        platform_arch=platform.machine(),
        nano_cpus=(os.cpu_count() or 1) * 10**9,
        memory_bytes=mem_total(meminfo),
    )
    d.engine_labels.update({"shoal.version": __version__, **cfg.engine_labels})
    return d
