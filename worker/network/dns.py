"""Service discovery: the DNS responder every task's resolv.conf points at, one per node.

``<service>`` answers the service's VIP (or, with ``endpoint_mode: dnsrr``, its task addresses) and
``tasks.<service>`` its task addresses, but only for a service that shares a network with the task that
asks: the ``lookup`` function is given the client's address and decides. Every other name is forwarded
unchanged to the node's own resolvers (``read_resolv_conf``) and their answer relayed back. The wire
format is dnspython's; this module only decides what to answer. UDP and TCP are both served.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from shoal.worker.network import dnsforward, netns

VIP_TTL = 60  # a VIP lives as long as its service
TASKS_TTL = 0  # task addresses change with every rescheduling: never cache them


@dataclass(frozen=True)
class Records:
    """What a client may learn about one service: its VIPs on shared networks and its task addresses."""

    vips: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    dnsrr: bool = False


Lookup = Callable[[str, str], Records | None]  # (client address, service name) -> records, None: not ours


def read_resolv_conf(path: str, exclude: Sequence[str] = ()) -> list[tuple[str, int]]:
    """The ``nameserver`` entries of ``path`` as (address, 53), minus ``exclude`` (our own address)."""
    servers: list[tuple[str, int]] = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] not in exclude:
                    servers.append((parts[1], 53))
    except FileNotFoundError:
        pass
    return servers


def task_resolv_conf(nameserver: str, search: Sequence[str] = (), options: Sequence[str] = ("ndots:0",)) -> str:
    """The resolv.conf a task gets: only the node's responder (which forwards everything else)."""
    lines = [f"nameserver {nameserver}"]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def split_name(qname: dns.name.Name) -> tuple[str, bool]:
    """``(service, wants_tasks)`` for a query name: ``tasks.web.`` -> ("web", True)."""
    text = qname.to_text(omit_final_dot=True).lower()
    if text.startswith("tasks.") and len(text) > len("tasks."):
        return text[len("tasks."):], True
    return text, False


def answer(query: dns.message.Message, client: str, lookup: Lookup) -> dns.message.Message | None:
    """The response to ``query`` from ``client``, or None when the name is not a service it may see."""
    if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR)
        return response
    question = query.question[0]
    service, wants_tasks = split_name(question.name)
    records = lookup(client, service)
    if records is None:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA | dns.flags.RA
    if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and question.rdclass == dns.rdataclass.IN:
        by_task = wants_tasks or records.dnsrr
        addresses = list(records.tasks if by_task else records.vips)
        random.shuffle(addresses)  # round-robin DNS for dnsrr and tasks.
        if addresses:
            rrset = dns.rrset.from_text_list(question.name, TASKS_TTL if by_task else VIP_TTL, "IN", "A", addresses)
            response.answer.append(rrset)
    return response  # other types of a known name: no data (NOERROR), never forwarded


def failure(query: dns.message.Message) -> dns.message.Message:
    """SERVFAIL for ``query`` (no upstream answered)."""
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.SERVFAIL)
    return response


class DnsResponder:
    """Serves DNS on ``host:port`` (UDP and TCP) with ``lookup`` and forwards the rest to ``upstreams``."""

    def __init__(self, lookup: Lookup, upstreams: Sequence[tuple[str, int]] = (), host: str = "0.0.0.0",
                 port: int = 53, timeout: float = 2.0, netns: str | None = None) -> None:
        self.lookup = lookup
        self.upstreams = list(upstreams)
        self.host, self.port, self.timeout = host, port, timeout
        self.netns = netns  # the network namespace to serve in (a path; None: the caller's)
        self.client_upstreams: dict[str, list[tuple[str, int]]] = {}
        """Per client address, the servers its names go to instead of ``upstreams`` (a task's ``--dns``)."""
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        """A UDP and a TCP socket on one port (with ``port=0``, a free one for both)."""
        for attempt in range(8):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                udp.bind((self.host, self.port))
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((self.host, udp.getsockname()[1]))
                tcp.listen(128)
                return udp, tcp
            except OSError:
                udp.close()
                tcp.close()
                if self.port != 0 or attempt == 7:
                    raise
        raise AssertionError("unreachable")

    async def start(self) -> int:
        """Bind UDP and TCP on one port (in ``netns``); returns it (with ``port=0``, a free one for both)."""
        loop = asyncio.get_running_loop()
        udp, tcp = netns.run_in(self.netns, self._bind)
        udp.setblocking(False)
        tcp.setblocking(False)
        self.port = udp.getsockname()[1]
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp)
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp)
        return self.port

    async def close(self) -> None:
        """Stop serving; queries being forwarded are cancelled."""
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)

    async def respond(self, wire: bytes, client: str, tcp: bool) -> bytes | None:
        """The reply to one raw query (None: drop it, it was not a DNS query)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if query.flags & dns.flags.QR:
            return None  # a response sent to us: never answer it
        response = answer(query, client, self.lookup)
        if response is not None:
            return _to_wire(response, 65535 if tcp else _udp_limit(query))
        upstreams = self.client_upstreams.get(client) or self.upstreams
        forwarded = await dnsforward.forward(wire, upstreams, self.timeout, tcp)
        return forwarded if forwarded is not None else failure(query).to_wire()

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = writer.get_extra_info("peername")[0]
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                reply = await self.respond(await reader.readexactly(size), client, tcp=True)
                if reply is None:
                    break
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        writer.close()


def _udp_limit(query: dns.message.Message) -> int:
    return max(512, query.payload) if query.edns >= 0 else 512


def _to_wire(response: dns.message.Message, limit: int) -> bytes:
    """The response in at most ``limit`` bytes: when the answer does not fit, an empty one marked TC."""
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer.clear()
        response.flags |= dns.flags.TC  # the client asks again over TCP
        return response.to_wire(max_size=limit)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsResponder) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint always gets a DatagramTransport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.server.respond(data, addr[0], tcp=False)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)
