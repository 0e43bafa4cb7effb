"""``shoal demo lb``: the tally of answers, the bars, the rate, and the requests themselves (to a loopback server)."""

from __future__ import annotations

import asyncio
from collections import Counter

from click.testing import CliRunner

from shoal.cli import demo
from shoal.cli.main import main
from shoal.proto import types_pb2 as pb


def test_answers_are_tallied_per_task_and_node_and_anything_else_is_a_failure():
    t = demo.Tally()
    for answer in ["task=lb.1 node=worker1 client=1.2.3.4\n", "task=lb.2 node=worker2 client=x\n",
                   "task=lb.1 node=worker1 client=y\n", "error ConnectionRefusedError", "<html>oops</html>"]:
        t.add(answer)
    assert t.tasks == Counter({"lb.1": 2, "lb.2": 1})
    assert t.nodes == Counter({"worker1": 2, "worker2": 1})
    assert t.errors == Counter({"error ConnectionRefusedError": 1, "<html>oops</html>": 1})
    assert t.served == 3


def test_bars_are_scaled_to_the_largest_count_with_counts_and_shares():
    lines = demo.bars(Counter({"lb.2": 50, "lb.1": 100}), width=10)
    assert lines == ["  lb.1  ██████████    100 (66.7%)", "  lb.2  █████          50 (33.3%)"]
    assert demo.bars(Counter()) == []
    assert demo.bars(Counter({"a": 1, "b": 1000}), width=10)[0].count("█") == 1, "a small share still shows"


def test_the_report_names_the_target_failures_and_the_rate():
    t = demo.Tally()
    for _ in range(6):
        t.add("task=lb.1 node=w1")
    t.add("error TimeoutError")
    text = demo.report(t, 2.0, "w1 (10.0.0.1:8080)")
    assert text.startswith("7 requests to w1 (10.0.0.1:8080)")
    assert "per task:" in text and "per node:" in text and "failed:" in text and "TimeoutError" in text
    assert text.endswith("6 served in 2.00 s: 3 req/s")


def test_the_node_address_is_its_underlay_else_the_one_the_manager_saw():
    n = pb.Node()
    n.status.addr = "192.168.5.3:40122"
    assert demo.node_address(n) == "192.168.5.3"
    n.network.underlay = "192.168.5.9"
    assert demo.node_address(n) == "192.168.5.9"


def test_the_published_port_is_the_allocated_one_first():
    s = pb.Service()
    assert demo.published_port(s) == 0
    s.spec.ports.add(target_port=80, published_port=0)
    s.endpoint.ports.add(target_port=80, published_port=30001)
    assert demo.published_port(s) == 30001


async def _server(answers: list[bytes]) -> tuple[asyncio.Server, int]:
    it = iter(answers)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(next(it, b"HTTP/1.0 500 Boom\r\n\r\n"))
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


async def test_fire_sends_each_request_on_its_own_connection_and_counts_http_errors():
    ok = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\ntask=lb.%d node=w1\n"
    srv, port = await _server([ok % 1, ok % 2, ok % 1])
    async with srv:
        tally, seconds = await demo.fire("127.0.0.1", port, 4, concurrency=2)
    assert tally.tasks == Counter({"lb.1": 2, "lb.2": 1})
    assert tally.errors == Counter({"error HTTP 500": 1})
    assert seconds > 0


async def test_fire_counts_a_refused_connection():
    srv, port = await _server([])
    srv.close()
    await srv.wait_closed()
    tally, _ = await demo.fire("127.0.0.1", port, 2, concurrency=4)
    assert tally.errors == Counter({"error ConnectionRefusedError": 2})


def test_the_command_refuses_a_bad_request_count_before_connecting():
    r = CliRunner().invoke(main, ["demo", "lb", "--requests", "0"])
    assert r.exit_code == 2 and "--requests" in r.output
