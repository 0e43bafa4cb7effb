"""The pure parts of ``svc logs``: the line prefix, --since/--tail, which node hears which subscription,
and how a node picks and follows its tasks' json-file logs (rotation included)."""

from __future__ import annotations

import json
import os

import pytest

from shoal.cli.logs_views import LineFormat, LogOptionError, parse_since, parse_tail, rfc3339_nano
from shoal.manager.dispatcher.logsubs import SentSubscriptions, for_node
from shoal.manager.logbroker import matching_tasks, resolve_service, resolve_task
from shoal.proto import logs_pb2 as lpb
from shoal.proto import types_pb2 as pb
from shoal.worker.logfeed import _Follower, covers, parse_time, select, to_line

TID = "abcdefghijklmnopqrstuvwxy"
TASK = lpb.LogTask(task_id=TID, service_id="s1", service_name="web", slot=2, node_id="n1", node_name="node-1")
LINE = lpb.LogLine(task_id=TID, timestamp_ns=1_700_000_000_000_000_001, stream="stdout", data=b"hello\n")


def test_prefix_is_dockers() -> None:
    assert LineFormat().line(TASK, LINE) == "web.2.abcdefghijkl@node-1    | hello\n"
    assert LineFormat(slot_width=2).line(TASK, LINE) == "web.2.abcdefghijkl @node-1    | hello\n"
    assert LineFormat(task_ids=False).line(TASK, LINE) == "web.2@node-1    | hello\n"
    assert LineFormat(trunc=False).line(TASK, LINE) == f"web.2.{TID}@node-1    | hello\n"
    assert LineFormat(raw=True).line(TASK, LINE) == "hello\n"
    assert LineFormat(resolve=False).line(TASK, LINE) == "s1.2.abcdefghijkl@n1    | hello\n", "--no-resolve: ids, not names"
    assert LineFormat(timestamps=True, raw=True).line(TASK, LINE) == "2023-11-14T22:13:20.000000001Z hello\n"


def test_global_task_is_named_by_its_node_and_a_line_without_newline_gets_one() -> None:
    glob = lpb.LogTask(task_id=TID, service_name="agent", node_id="nodeid", node_name="h")
    line = lpb.LogLine(task_id=TID, data=b"x")
    assert LineFormat().line(glob, line) == "agent.nodeid.abcdefghijkl@h    | x\n"


def test_since_takes_times_unix_times_and_durations() -> None:
    assert parse_since("2023-11-14T22:13:20Z") == 1_700_000_000 * 10**9
    assert parse_since("1700000000.5") == 1_700_000_000_500_000_000
    assert parse_since("10m", now=1000.0) == 400 * 10**9
    assert parse_since("") == 0
    with pytest.raises(LogOptionError, match="invalid --since 'yesterday'"):
        parse_since("yesterday")


def test_tail() -> None:
    assert parse_tail("all") == -1 and parse_tail("5") == 5
    with pytest.raises(LogOptionError, match="invalid --tail '-3'"):
        parse_tail("-3")


def test_rfc3339_nano_round_trips_through_the_nodes_parser() -> None:
    assert parse_time(rfc3339_nano(LINE.timestamp_ns)) == LINE.timestamp_ns
    assert parse_time("garbage") is None


def sub(sid: str, services=(), tasks=(), follow=False, tail=-1, since=0) -> lpb.LogSubscription:  # type: ignore[no-untyped-def]
    return lpb.LogSubscription(id=sid, service_ids=services, task_ids=tasks, follow=follow, tail=tail, since_ns=since)


def test_a_node_hears_only_the_subscriptions_covering_its_tasks() -> None:
    mine = [pb.Task(id="t1", service_id="web"), pb.Task(id="t2", service_id="db")]
    subs = [sub("b", services=["web"]), sub("a", tasks=["t2"]), sub("c", services=["other"]), sub("d", tasks=["t9"])]
    assert [s.id for s in for_node(mine, subs)] == ["a", "b"]
    assert for_node([], subs) == []


def test_the_set_goes_down_on_a_new_session_and_when_it_changes() -> None:
    sent = SentSubscriptions()
    assert sent.diff([], full=True) is not None  # the first message says "none" explicitly
    assert sent.diff([], full=False) is None
    assert [s.id for s in sent.diff([sub("a")], full=False).subscriptions] == ["a"]  # type: ignore[union-attr]
    assert sent.diff([sub("a")], full=False) is None
    assert sent.diff([sub("a")], full=True) is not None


def test_broker_lookups() -> None:
    services = {"s1aaaa": pb.Service(id="s1aaaa", spec=pb.ServiceSpec(name="web")), "s2bbbb": pb.Service(id="s2bbbb", spec=pb.ServiceSpec(name="db"))}
    assert resolve_service(services, "web").id == "s1aaaa" and resolve_service(services, "s2").id == "s2bbbb"  # type: ignore[union-attr]
    assert resolve_service(services, "s") is None and resolve_service(services, "nope") is None
    tasks = {"t1x": pb.Task(id="t1x", service_id="s1aaaa"), "t2x": pb.Task(id="t2x", service_id="s2bbbb")}
    assert resolve_task(tasks, "t1").id == "t1x" and resolve_task(tasks, "t") is None  # type: ignore[union-attr]
    assert [t.id for t in matching_tasks(list(tasks.values()), {"s1aaaa"}, {"t2x"})] == ["t1x", "t2x"]
    assert covers(sub("x", services=["s1aaaa"]), tasks["t1x"]) and not covers(sub("x", tasks=["t1x"]), tasks["t2x"])


def lines(*stamps: int) -> list[lpb.LogLine]:
    return [lpb.LogLine(task_id="t", timestamp_ns=s, data=f"{s}\n".encode()) for s in stamps]


@pytest.mark.parametrize(
    ("tail", "since", "want"),
    [(-1, 0, [1, 2, 3, 4]), (2, 0, [3, 4]), (0, 0, []), (10, 0, [1, 2, 3, 4]), (-1, 3, [3, 4]), (1, 2, [4])],
)
def test_since_then_tail_per_task(tail: int, since: int, want: list[int]) -> None:
    assert [ln.timestamp_ns for ln in select(lines(1, 2, 3, 4), tail, since)] == want


def record(text: str, stamp: str = "2023-11-14T22:13:20.000000001Z") -> bytes:
    return json.dumps({"log": text, "stream": "stderr", "time": stamp}).encode() + b"\n"


def test_a_record_becomes_a_line() -> None:
    ln = to_line("t", json.loads(record("x\n")))
    assert ln is not None and (ln.stream, ln.data, ln.timestamp_ns) == ("stderr", b"x\n", LINE.timestamp_ns)
    assert to_line("t", {"log": "x", "time": "never"}) is None


def test_the_follower_reads_partial_lines_once_complete_and_crosses_a_rotation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ctr.log"
    path.write_bytes(record("one\n"))
    f = _Follower(str(path))
    try:
        assert [r["log"] for r in f.read()] == ["one\n"]
        data = record("two\n")
        with open(path, "ab") as out:
            out.write(data[:10])
        assert f.read() == []
        with open(path, "ab") as out:
            out.write(data[10:] + record("three\n"))
        os.replace(path, tmp_path / "ctr.log.1")  # the shim rotates: the rest is in a new file
        path.write_bytes(record("four\n"))
        assert [r["log"] for r in f.read()] == ["two\n", "three\n", "four\n"]
    finally:
        f.close()


def test_svc_logs_prints_stdout_and_stderr_apart_and_warnings_on_stderr() -> None:
    from tests.fixtures.cli_fakes import FakeStub, run

    fake = FakeStub()
    fake.add_service(pb.ServiceSpec(name="web", replicas=12, container=pb.ContainerSpec(image="x")))
    asked: list[lpb.SubscribeLogsRequest] = []

    def subscribe(req: lpb.SubscribeLogsRequest):  # type: ignore[no-untyped-def]
        asked.append(req)
        err = lpb.LogLine(task_id=TID, timestamp_ns=2, stream="stderr", data=b"oops\n")
        return iter([lpb.SubscribeLogsMessage(warning="node n3 is down"), lpb.SubscribeLogsMessage(lines=[LINE, err], tasks=[TASK])])

    fake.SubscribeLogs = subscribe  # type: ignore[attr-defined]
    r = run(fake, "svc", "logs", "--tail", "5", "--since", "1700000000", "web")
    assert r.exit_code == 0, r.output
    assert r.stdout == "web.2.abcdefghijkl @node-1    | hello\n"
    assert "web.2.abcdefghijkl @node-1    | oops\n" in r.stderr and "warning: node n3 is down" in r.stderr
    assert (asked[0].services, asked[0].tail, asked[0].since_ns, asked[0].follow) == (["web"], 5, 1_700_000_000 * 10**9, False)
    bad = run(fake, "svc", "logs", "--tail", "many", "web")
    assert bad.exit_code == 2 and "invalid --tail 'many'" in bad.output and len(asked) == 1


def test_image_not_found_lists_the_loaded_tags_of_that_repository() -> None:
    from shoal.runtime.errors import ImageNotFound
    from shoal.runtime.image.store import Image, find, similar_tags

    images = [Image(id="sha256:" + "a" * 64, repo_tags=["busybox:1.36", "library/busybox:musl"], layers=[], config={}),
              Image(id="sha256:" + "b" * 64, repo_tags=["busyboxes:1", "demo:latest"], layers=[], config={})]  # fmt: skip
    assert similar_tags(images, "busybox") == ["busybox:1.36", "library/busybox:musl"]
    assert similar_tags(images, "docker.io/library/busybox:2") == ["busybox:1.36", "library/busybox:musl"]
    assert similar_tags(images, "nginx") == []
    with pytest.raises(ImageNotFound, match=r"^image busybox not found \(loaded: busybox:1.36, library/busybox:musl\)$"):
        find(images, "busybox")
    with pytest.raises(ImageNotFound, match=r"^image nginx not found$"):
        find(images, "nginx")
