"""bench/timeline.py: a rolling update's debug log lines joined into a per-batch timeline.

The lines are the ones the nodes write (same event names and fields); if a rename on the node side
breaks the trace, these tests say so.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bench import timeline

T0 = 1_800_000_000.0


def line(t: float, event: str, **fields: object) -> str:
    stamp = datetime.fromtimestamp(T0 + t, UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"event": event, "timestamp": stamp, "level": "info", **fields})


def agent_task(task: str, slot: int, at: float, healthy_after: float, service: str = "upd") -> list[str]:
    ctx = {"task": task, "service": service, "slot": slot}
    return [
        line(at, "task state", state="ACCEPTED", **ctx),
        line(at + 0.01, "task state", state="PREPARING", **ctx),
        line(at + 0.20, "container prepared", task=task, wire_s=0.15, create_s=0.04),
        line(at + 0.21, "task state", state="STARTING", **ctx),
        line(at + 0.30, "task state", state="RUNNING", **ctx),
        line(at + 0.30 + healthy_after, "health probe", took_s=0.05, **ctx),
        line(at + 0.30 + healthy_after, "task state", state="RUNNING", health="HEALTH_HEALTHY", **ctx),
    ]


def test_events_skip_what_is_not_a_json_log_line_and_keep_time_order():
    evs = timeline.events(["Traceback (most recent call last):", line(2, "b"), "[]", line(1, "a", x=1)], "w1")
    assert [(e.name, e.node, round(e.t - T0, 3)) for e in evs] == [("a", "w1", 1.0), ("b", "w1", 2.0)]
    assert evs[0].fields["x"] == 1


def test_each_step_is_joined_with_the_tasks_it_created_and_those_they_replace():
    manager = [
        line(10.0, "rolling update step", service="upd", started=2, stopped=0, slots=[1, 2]),
        line(11.5, "rolling update step", service="upd", started=1, stopped=0, slots=[3]),
        line(13.0, "service update state", service="upd", state="completed"),
    ]
    agent = []
    for slot in (1, 2, 3):
        agent += agent_task(f"old{slot}", slot, 0.0, 1.0)
    agent += agent_task("new1", 1, 10.1, 1.0) + agent_task("new2", 2, 10.2, 1.1) + agent_task("new3", 3, 11.6, 1.0)
    agent += [line(11.6, "task state", state="SHUTDOWN", task="old1", service="upd", slot=1)]
    agent += agent_task("other", 1, 10.1, 1.0, service="web")  # another service's task in slot 1
    evs = timeline.events(manager, "manager1") + timeline.events(agent, "worker1")
    bs = timeline.batches(sorted(evs, key=lambda e: e.t), "upd")
    assert [(b.slots, [t.task for t in b.new], [t.task for t in b.old]) for b in bs] == [
        ([1, 2], ["new1", "new2"], ["old1", "old2"]),
        ([3], ["new3"], ["old3"]),
    ]
    assert round(bs[0].next_at - T0, 3) == 11.5 and round(bs[1].next_at - T0, 3) == 13.0
    ph = timeline._phases(bs[0])
    assert [round(v, 2) for v in ph["to node"]] == [0.1, 0.2]
    assert [round(v, 2) for v in ph["healthy"]] == [1.0, 1.1]
    assert ph["wire"] == [0.15, 0.15] and [round(v, 2) for v in ph["old stopped"]] == [1.6]
    rows = timeline.render(bs, T0 + 9.9)
    # the second step came 0.1 s after new1 became healthy (11.4), the first 0.1 s after the update began
    assert rows[2].split()[:4] == ["1", "1-2", "0.10", "0.10"] and rows[3].split()[:4] == ["2", "3-3", "1.60", "0.10"]


def test_a_lab_without_debug_lines_says_what_is_missing(tmp_path):
    (tmp_path / "manager1").mkdir()
    (tmp_path / "manager1" / "daemon.log").write_text(line(1, "service updated", service="upd") + "\n")
    out = timeline.report(tmp_path, "upd")
    assert len(out) == 1 and "SHOAL_LOG_LEVEL=debug" in out[0]


def test_the_loops_are_summed_over_the_update_only():
    evs = timeline.events([
        line(1, "reconcile pass", loop="updater", debounce_s=0.005, took_s=0.02),
        line(2, "reconcile pass", loop="updater", debounce_s=0.015, took_s=0.04),
        line(9, "reconcile pass", loop="updater", debounce_s=0.5, took_s=0.5),  # after the update
    ], "manager1")  # fmt: skip
    (only,) = timeline.loop_summary(evs, T0, T0 + 5)
    assert "2 passes" in only and "debounce 0.01/0.01" in only and "busy 0.08" in only


def test_the_chain_gives_the_mean_of_each_hop_of_a_replacement_over_the_update():
    manager = [
        line(10.0, "rolling update step", service="upd", started=1, stopped=0, slots=[1]),
        line(11.6, "rolling update step", service="upd", started=1, stopped=0, slots=[2]),  # 0.1 after new1's health
        line(13.0, "service update state", service="upd", state="completed"),
    ]
    agent = agent_task("old1", 1, 0.0, 1.0) + agent_task("old2", 2, 0.0, 1.0)
    agent += agent_task("new1", 1, 10.2, 1.0) + agent_task("new2", 2, 11.8, 1.2)  # accepted 0.2 after each step, starting 0.21 later
    evs = timeline.events(manager, "manager1") + timeline.events(agent, "worker1")
    (text,) = timeline.chain(timeline.batches(sorted(evs, key=lambda e: e.t), "upd"))
    assert text == ("per replacement (mean s): to node 0.200, prepare 0.210, start 0.090, healthy 1.100, react 0.100; "
                    "of healthy, the first probe 0.050")
