"""Joining the cluster and keeping a node certificate: CA check, CSR, renewal, TLS channels.

A node without a certificate joins with its token: it first fetches the CA certificate the manager
presents *without* trusting it, checks its digest against the one in the token (so a node never
trusts a manager of another cluster, nor one in the middle), then calls Register over TLS with that
CA as the only root, presenting a join certificate (``shoal.tls``), and sends a CSR. The certificate
it gets back (CN = node id, OU = role) is written to its data dir (0600) and used for every later
call; it is renewed at a random point between 50% and 80% of its life.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl

import grpc

from shoal import log, tls
from shoal.certfiles import CertFiles
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import dispatcher_pb2_grpc as dgrpc

_log = log.get(__name__)

CLIENT_OPTIONS = [
    ("grpc.keepalive_time_ms", 10000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.ssl_target_name_override", tls.MANAGER_NAME),
    ("grpc.max_receive_message_length", 64 << 20),  # an assignment set carries its tasks' secrets and configs (< 500 KiB each)
]


class JoinError(Exception):
    """The cluster refused this node (a wrong token, a CA that does not match); retrying will not help."""


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _fetch_chain(addr: str, client_cert: bytes, client_key: bytes, timeout: float) -> list[bytes]:
    """The certificate chain the server at ``addr`` presents, unverified (blocking)."""
    import tempfile

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    with tempfile.NamedTemporaryFile() as cf, tempfile.NamedTemporaryFile() as kf:
        cf.write(client_cert)
        cf.flush()
        kf.write(client_key)
        kf.flush()
        ctx.load_cert_chain(cf.name, kf.name)
    with socket.create_connection(split_addr(addr), timeout=timeout) as raw, ctx.wrap_socket(raw, server_hostname=tls.MANAGER_NAME) as s:
        chain = s._sslobj.get_unverified_chain() or []  # public in 3.13
        pems = [c.public_bytes(ssl._ssl.ENCODING_PEM) for c in chain]  # type: ignore[attr-defined]  # ssl._ssl is the C module the public constant lives in (private, no stub)
        return [p.encode() if isinstance(p, str) else p for p in pems]


async def fetch_ca(addr: str, digest: str, timeout: float = 5.0) -> bytes:
    """The cluster CA certificate of the manager at ``addr``, checked against the token's ``digest``."""
    cert, key = tls.join_cert(digest)
    chain = await asyncio.to_thread(_fetch_chain, addr, cert, key, timeout)
    if not chain:
        raise OSError(f"the manager at {addr} presented no certificate")
    ca = chain[-1]
    got = tls.ca_digest(ca)
    if got != digest:
        raise JoinError(
            f"the manager at {addr} presents a CA certificate whose digest ({got[:12]}...) does not match the join token's "
            f"({digest[:12]}...): the token is for another cluster, or something is intercepting the connection"
        )
    return ca


class NodeCredentials:
    """The node's certificate files and the gRPC channel credentials made from them."""

    def __init__(self, files: CertFiles) -> None:
        self.files = files
        self._creds: grpc.ChannelCredentials | None = None
        self._mtime = -1.0

    def valid(self) -> bool:
        if not self.files.exists():
            return False
        cert, key, _ca = self.files.load()
        return tls.cert_info(cert).not_after > dt.datetime.now(dt.UTC) and tls.matches_key(cert, key)

    def info(self) -> tls.CertInfo:
        return tls.cert_info(self.files.cert.read_bytes())

    def channel_credentials(self) -> grpc.ChannelCredentials:
        m = self.files.mtime()
        if self._creds is None or m != self._mtime:
            cert, key, ca = self.files.load()
            self._creds, self._mtime = grpc.ssl_channel_credentials(ca, key, cert), m
        return self._creds

    def channel(self, addr: str) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(addr, self.channel_credentials(), options=CLIENT_OPTIONS)


JOIN_TIMEOUT_S = 60.0
"""The deadline of a join's Register. Generous: a join is not idempotent (each attempt makes a node), so a
deadline that a slow but working manager misses leaves a second node behind (seen in the cgroup-v2 VM
under emulation with the old 5 s: ``node ls`` listed the worker twice). A manager that is down refuses
the connection at once, whatever the deadline."""


async def join(addr: str, token: str, files: CertFiles, request: dpb.RegisterRequest, timeout: float = 5.0) -> dpb.RegisterResponse:
    """Join through the manager at ``addr`` with ``token``; writes the node certificate to ``files``.

    ``timeout`` bounds fetching the CA (repeatable); the Register itself waits up to JOIN_TIMEOUT_S."""
    try:
        digest, _ = tls.parse_token(token)
    except tls.TokenError as exc:
        raise JoinError(str(exc)) from None
    ca = await fetch_ca(addr, digest, timeout)
    jcert, jkey = tls.join_cert(digest)
    key = tls.new_key()
    req = dpb.RegisterRequest()
    req.CopyFrom(request)
    req.token, req.csr = token, tls.make_csr(key)
    creds = grpc.ssl_channel_credentials(ca, jkey, jcert)
    async with grpc.aio.secure_channel(addr, creds, options=CLIENT_OPTIONS) as ch:
        resp = await dgrpc.DispatcherStub(ch).Register(req, timeout=max(timeout, JOIN_TIMEOUT_S))
    if not resp.certificate or not tls.issued_by(resp.certificate, ca):
        raise JoinError(f"the manager at {addr} returned no valid certificate")
    files.save(resp.certificate, tls.key_pem(key), ca)
    return resp


async def register(creds: NodeCredentials, addr: str, request: dpb.RegisterRequest, renew: bool, timeout: float = 5.0) -> dpb.RegisterResponse:
    """Refresh the node's record over mutual TLS; with ``renew``, also get a new certificate."""
    req = dpb.RegisterRequest()
    req.CopyFrom(request)
    key = tls.new_key() if renew else None
    if key is not None:
        req.csr = tls.make_csr(key)
    async with creds.channel(addr) as ch:
        resp = await dgrpc.DispatcherStub(ch).Register(req, timeout=timeout)
    if key is not None and resp.certificate:
        creds.files.save(resp.certificate, tls.key_pem(key), resp.ca_certificate or creds.files.ca.read_bytes())
        _log.info("node certificate renewed", not_after=creds.info().not_after.isoformat())
    return resp


def renewal_due(info: tls.CertInfo, at: dt.datetime | None = None) -> float:
    """Seconds until this certificate should be renewed (≤ 0: now)."""
    now = at or dt.datetime.now(dt.UTC)
    return (tls.renew_at(info) - now).total_seconds()
