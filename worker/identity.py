"""Who this node is to the cluster: its id, its certificate and role, the managers it knows.

A node without a valid certificate joins with its token; one with a certificate refreshes its record
(and gets a certificate of its new role when it was promoted or demoted while away). The id is kept
in the data dir, so a restarted agent comes back as the same node. Certificates are renewed between
50% and 80% of their life. A refusal (wrong token, a CA that does not match) is final: ``JoinError``;
an unreachable manager is retried, the next known manager first, with a capped backoff.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import grpc

from shoal import log
from shoal.certfiles import CertFiles
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.retry import Backoff
from shoal.worker.config import AgentConfig
from shoal.worker.join import JoinError, NodeCredentials, join, register, renewal_due

_log = log.get(__name__)

REFUSALS = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT})
"""Answers to a join that retrying cannot change."""

RoleChanged = Callable[[int, dpb.RegisterResponse], None]


def merge_addrs(*lists: Iterable[str]) -> list[str]:
    """Manager addresses in order of first mention, each once."""
    return list(dict.fromkeys(a for addrs in lists for a in addrs))


def renewal_wait(seconds_due: float) -> float:
    """How long to sleep before renewing: never less than a second (a certificate already due renews soon, not in a spin)."""
    return max(seconds_due, 1.0)


class NodeIdentity:
    def __init__(self, cfg: AgentConfig, description: pb.NodeDescription) -> None:
        self.cfg = cfg
        self.description = description
        self.node_id = cfg.node_id
        self.managers = list(cfg.managers)
        self.creds = NodeCredentials(CertFiles(cfg.certs_dir or cfg.data_dir / "certificates"))
        self.role: int | None = None  # the role of this node's certificate, once known
        self.on_role: RoleChanged | None = None
        """Called when the node's role changes (promote/demote), with the Register answer that carried the
        new certificate (a manager's also carries the CA key's KEK): the daemon starts or stops its manager."""

    @property
    def _id_file(self) -> Path:
        return self.cfg.data_dir / "node.json"

    async def register(self, renew: bool = False) -> None:
        """Join with the token when this node has no valid certificate, else refresh its record."""
        if not self.node_id and self._id_file.exists():
            self.node_id = json.loads(self._id_file.read_text())["node_id"]
        backoff = Backoff(0.2, 2.0)
        while True:
            for addr in self.managers:
                if await self._register_at(addr, renew):
                    return
            await backoff.sleep()

    async def _register_at(self, addr: str, renew: bool) -> bool:
        """One attempt through the manager at ``addr``: True once registered."""
        req = dpb.RegisterRequest(node_id=self.node_id, description=self.description, availability=self.cfg.availability)
        try:
            resp = await self._exchange(addr, req, renew)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in REFUSALS:
                raise JoinError(f"join refused by {addr}: {exc.details()}") from None
            _log.warning("cannot reach manager; retrying", manager=addr, error=exc.details())
            return False
        except OSError as exc:
            _log.warning("cannot reach manager; retrying", manager=addr, error=str(exc))
            return False
        self._registered(addr, resp)
        return True

    async def _exchange(self, addr: str, req: dpb.RegisterRequest, renew: bool) -> dpb.RegisterResponse:
        if self.creds.valid():
            resp = await register(self.creds, addr, req, renew)
        else:
            resp = await join(addr, self.cfg.token, self.creds.files, req)
        if not renew and resp.role != self.cert_role():  # promoted or demoted while away: a certificate of the new role
            resp = await register(self.creds, addr, req, True)
        return resp

    def _registered(self, addr: str, resp: dpb.RegisterResponse) -> None:
        self.node_id = resp.node_id
        self.managers = merge_addrs(self.managers, resp.managers)
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self._id_file.write_text(json.dumps({"node_id": self.node_id}))
        _log.info("joined the cluster", node=self.node_id, role=pb.NodeSpec.Role.Name(resp.role), manager=addr)
        self.note_role(resp)

    def cert_role(self) -> int:
        """The role this node's certificate holds (a node without one is a worker)."""
        return pb.NodeSpec.MANAGER if self.creds.valid() and self.creds.info().role == "manager" else pb.NodeSpec.WORKER

    def note_role(self, resp: dpb.RegisterResponse) -> None:
        """Note the role the certificate now holds; tell the daemon when it changed."""
        if resp.role == self.role:
            return
        before, self.role = self.role, resp.role
        _log.info("node role", role=pb.NodeSpec.Role.Name(resp.role), before=pb.NodeSpec.Role.Name(before) if before is not None else "")
        if self.on_role is not None:
            self.on_role(resp.role, resp)

    async def renewals(self, renewed: Callable[[], None]) -> None:
        """Renew the node certificate between 50% and 80% of its life; ``renewed()`` after each renewal."""
        while True:
            await asyncio.sleep(renewal_wait(renewal_due(self.creds.info())))
            await self.register(renew=True)
            renewed()
