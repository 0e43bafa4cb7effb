"""A manager joining an existing cluster: its certificate, and the key (KEK) that unseals the CA key.

``shoal manager --join ADDR --token <manager token>`` registers once through a running manager, as a
worker's agent does, but asks for the KEK too; a token that only makes a worker is refused here with
a message saying which command to use. Once joined (the KEK is on disk) it never asks again.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from shoal.certfiles import CertFiles
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.agent import AgentConfig, describe
from shoal.worker.join import JoinError, join


async def join_as_manager(addrs: list[str], token: str, data_dir: Path, node_id: str, hostname: str, availability: int = 0) -> tuple[bytes, str] | None:
    """Join through the first manager of ``addrs`` that answers: (KEK, the node id the cluster gave).

    None when this manager joined before. A join always gets a fresh node id from the cluster
    (``node_id`` is only a hint it ignores); the caller keeps the one returned.
    """
    files = CertFiles(data_dir / "certificates")
    if (files.dir / "ca.kek").exists():
        return None  # joined before
    req = dpb.RegisterRequest(node_id=node_id, description=describe(AgentConfig([], token, data_dir, hostname)), availability=availability)
    errors = []
    for addr in addrs:
        try:
            resp = await join(addr, token, files, req)
        except OSError as exc:
            errors.append(f"{addr}: {exc}")
            continue
        except grpc.aio.AioRpcError as exc:
            raise JoinError(f"join refused by {addr}: {exc.details()}") from None
        if resp.role != pb.NodeSpec.MANAGER or not resp.ca_key_kek:
            raise JoinError("this is a worker token (or the node is a worker): use `shoal worker`, or the manager token")
        return resp.ca_key_kek, resp.node_id
    raise JoinError("cannot reach any manager to join: " + "; ".join(errors))
