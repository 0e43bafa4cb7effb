"""The DNS responder on real loopback sockets: service names, tasks., dnsrr, who may see what, forwarding."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest

from shoal.worker.network.dns import (
    TASKS_TTL,
    VIP_TTL,
    DnsResponder,
    Records,
    answer,
    read_resolv_conf,
    split_name,
    task_resolv_conf,
)

WEB = Records(vips=("10.0.0.2",), tasks=("10.0.0.5", "10.0.0.6", "10.0.0.7"))
RR = Records(tasks=("10.0.1.5", "10.0.1.6"), dnsrr=True)
OUTSIDER = "127.0.0.2"  # a client on no network of ours


class Directory:
    """A lookup over fixed services that records who asked for what."""

    def __init__(self, services: dict[str, Records]) -> None:
        self.services = services
        self.calls: list[tuple[str, str]] = []

    def __call__(self, client: str, service: str) -> Records | None:
        self.calls.append((client, service))
        return None if client == OUTSIDER else self.services.get(service)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[DnsResponder, Directory]]:
    """Stands in for the node's resolver: answers example.test itself."""
    d = Directory({"example.test": Records(vips=("192.0.2.7",))})
    server = DnsResponder(d, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield server, d
    finally:
        await server.close()


@pytest.fixture
async def responder(upstream) -> AsyncIterator[tuple[DnsResponder, Directory]]:
    d = Directory({"web": WEB, "rr": RR, "db.x": Records(vips=("10.0.2.2",))})
    server = DnsResponder(d, [("127.0.0.1", upstream[0].port)], host="127.0.0.1", port=0, timeout=1.0)
    await server.start()
    try:
        yield server, d
    finally:
        await server.close()


async def ask(server: DnsResponder, name: str, rdtype: str = "A", source: str = "127.0.0.1",
              tcp: bool = False, **kw) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)
    send = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    return await send(q, "127.0.0.1", timeout=3, port=server.port, source=source)


def addrs(r: dns.message.Message) -> list[str]:
    return sorted(item.address for rrset in r.answer for item in rrset)


async def test_a_service_name_answers_its_vip(responder):
    server, _ = responder
    r = await ask(server, "web")
    assert addrs(r) == ["10.0.0.2"]
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert r.answer[0].ttl == VIP_TTL


async def test_tasks_name_answers_every_task_address(responder):
    server, _ = responder
    r = await ask(server, "tasks.web")
    assert addrs(r) == ["10.0.0.5", "10.0.0.6", "10.0.0.7"]
    assert r.answer[0].ttl == TASKS_TTL


async def test_dnsrr_services_answer_task_addresses_for_both_names(responder):
    server, _ = responder
    assert addrs(await ask(server, "rr")) == ["10.0.1.5", "10.0.1.6"]
    assert addrs(await ask(server, "tasks.rr")) == ["10.0.1.5", "10.0.1.6"]


async def test_names_are_case_insensitive_and_may_end_with_a_dot(responder):
    server, d = responder
    assert addrs(await ask(server, "WeB.")) == ["10.0.0.2"]
    assert addrs(await ask(server, "db.x")) == ["10.0.2.2"]
    assert ("127.0.0.1", "web") in d.calls


async def test_the_lookup_is_told_who_asks_and_outsiders_get_no_service(responder, upstream):
    server, d = responder
    r = await ask(server, "web", source=OUTSIDER)
    assert (OUTSIDER, "web") in d.calls
    assert addrs(r) == [] and r.rcode() == dns.rcode.SERVFAIL  # forwarded: the upstream knows no 'web'
    assert ("127.0.0.1", "web") in upstream[1].calls


async def test_other_record_types_of_a_service_are_empty_and_not_forwarded(responder, upstream):
    server, _ = responder
    r = await ask(server, "web", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []
    assert upstream[1].calls == []


async def test_other_names_are_forwarded_and_the_reply_relayed(responder, upstream):
    server, _ = responder
    q = dns.message.make_query("example.test", "A")
    r = await dns.asyncquery.udp(q, "127.0.0.1", timeout=3, port=server.port)
    assert r.id == q.id and addrs(r) == ["192.0.2.7"]
    assert upstream[1].calls == [("127.0.0.1", "example.test")]


async def test_forwarding_over_tcp(responder):
    server, _ = responder
    assert addrs(await ask(server, "example.test", tcp=True)) == ["192.0.2.7"]


async def test_service_answers_over_tcp_are_not_truncated(responder):
    server, d = responder
    many = tuple(f"10.1.{i // 250}.{i % 250 + 1}" for i in range(300))
    d.services["big"] = Records(tasks=many)
    udp = await ask(server, "tasks.big")
    assert udp.flags & dns.flags.TC and udp.answer == []
    tcp = await ask(server, "tasks.big", tcp=True)
    assert len(addrs(tcp)) == 300


async def test_an_unreachable_upstream_is_skipped_and_none_left_is_servfail(upstream):
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))  # a port that never answers
    dead_port = dead.getsockname()[1]
    d = Directory({})
    server = DnsResponder(d, [("127.0.0.1", dead_port), ("127.0.0.1", upstream[0].port)],
                          host="127.0.0.1", port=0, timeout=0.3)
    await server.start()
    try:
        assert addrs(await ask(server, "example.test")) == ["192.0.2.7"]
        server.upstreams = [("127.0.0.1", dead_port)]
        assert (await ask(server, "example.test")).rcode() == dns.rcode.SERVFAIL
        server.upstreams = []
        assert (await ask(server, "example.test")).rcode() == dns.rcode.SERVFAIL
    finally:
        await server.close()
        dead.close()


async def test_junk_and_responses_get_no_reply_and_the_server_keeps_serving(responder):
    server, _ = responder
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        s.connect(("127.0.0.1", server.port))
        reply = dns.message.make_response(dns.message.make_query("web", "A")).to_wire()
        for junk in (b"\x00\x01garbage", reply):
            s.send(junk)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(loop.sock_recv(s, 512), 0.3)
    assert addrs(await ask(server, "web")) == ["10.0.0.2"]


async def test_task_answers_are_shuffled(responder):
    server, d = responder
    d.services["five"] = Records(tasks=tuple(f"10.3.0.{i}" for i in range(1, 6)))
    firsts = {next(iter(next(iter((await ask(server, "tasks.five")).answer)))).address for _ in range(30)}
    assert len(firsts) > 1


async def test_a_closed_responder_answers_nothing(upstream):
    server = DnsResponder(Directory({"web": WEB}), host="127.0.0.1", port=0)
    port = await server.start()
    assert addrs(await ask(server, "web")) == ["10.0.0.2"]
    await server.close()
    with pytest.raises((dns.exception.Timeout, ConnectionRefusedError)):
        await dns.asyncquery.udp(dns.message.make_query("web", "A"), "127.0.0.1", timeout=0.5, port=port)


# -- pure parts --------------------------------------------------------------------------------
def test_split_name():
    assert split_name(dns.name.from_text("tasks.Web.")) == ("web", True)
    assert split_name(dns.name.from_text("web")) == ("web", False)
    assert split_name(dns.name.from_text("tasks.")) == ("tasks", False)


def test_non_query_opcodes_are_not_implemented():
    q = dns.message.make_query("web", "A")
    q.set_opcode(dns.opcode.NOTIFY)
    r = answer(q, "127.0.0.1", Directory({"web": WEB}))
    assert r is not None and r.rcode() == dns.rcode.NOTIMP


def test_a_known_service_without_tasks_has_no_data_but_exists():
    r = answer(dns.message.make_query("tasks.idle", "A"), "127.0.0.1", Directory({"idle": Records()}))
    assert r is not None and r.rcode() == dns.rcode.NOERROR and r.answer == []


def test_unknown_names_are_left_to_the_forwarder():
    assert answer(dns.message.make_query("tasks.nope", "A"), "127.0.0.1", Directory({})) is None


def test_resolv_conf_nameservers(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch lab\nnameserver 192.0.2.53\nnameserver 10.210.0.1\nnameserver  fd00::53\n"
                    "options ndots:0\nnameserver\n")
    assert read_resolv_conf(str(conf)) == [("192.0.2.53", 53), ("10.210.0.1", 53), ("fd00::53", 53)]
    assert read_resolv_conf(str(conf), exclude=["10.210.0.1"]) == [("192.0.2.53", 53), ("fd00::53", 53)]
    assert read_resolv_conf(str(tmp_path / "missing")) == []


def test_a_task_resolv_conf_names_only_the_node_responder(tmp_path):
    text = task_resolv_conf("10.210.0.1", search=["lab"])
    assert text == "nameserver 10.210.0.1\nsearch lab\noptions ndots:0\n"
    conf = tmp_path / "resolv.conf"
    conf.write_text(text)
    assert read_resolv_conf(str(conf)) == [("10.210.0.1", 53)]
    assert task_resolv_conf("10.0.0.1", options=()) == "nameserver 10.0.0.1\n"


async def test_a_task_with_its_own_dns_servers_has_its_other_names_forwarded_there(upstream):
    """``svc create --dns``: the task's non-service names go to its servers; other clients keep the node's."""
    own = DnsResponder(Directory({"example.test": Records(vips=("198.51.100.9",))}), host="127.0.0.1", port=0)
    await own.start()
    server = DnsResponder(Directory({"web": WEB}), [("127.0.0.1", upstream[0].port)], host="127.0.0.1", port=0, timeout=1.0)
    await server.start()
    try:
        server.client_upstreams["127.0.0.3"] = [("127.0.0.1", own.port)]
        assert addrs(await ask(server, "example.test", source="127.0.0.3")) == ["198.51.100.9"]
        assert addrs(await ask(server, "example.test")) == ["192.0.2.7"], "another client: the node's resolver"
        assert addrs(await ask(server, "web", source="127.0.0.3")) == ["10.0.0.2"], "services still answer first"
    finally:
        await server.close()
        await own.close()
