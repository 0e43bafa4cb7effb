#!/usr/bin/env python3
"""Where a rolling update's time goes, batch by batch, read from a lab's debug logs.

    .venv/bin/python bench/timeline.py LAB_DIR [--service NAME]

The nodes of a lab started with ``SHOAL_LOG_LEVEL=debug`` (``bench/update.py --trace`` does it) log
what a trace needs with their times: the update supervisor's steps (``rolling update step``, with the
slots it replaced), every task state the agents reach (``task state``, with health), how long the
network wiring (``task wired``: of it, the namespace) and the container create took (``container prepared``), each health probe's run time
(``health probe``), each reconcile pass of the leader's loops (``reconcile pass``), each node's nftables
mesh loads (``mesh loaded``, with the tasks it stopped balancing) and each old task's stop signal
(``task stop signalled``). This joins them
per batch: for the replacements a step created, when their node accepted them, when they were
starting (wired and created), running, probed and healthy, and when the supervisor took the next step
-- each as the median and the slowest of the batch, in seconds after the step (and ``chain``: the means
over the whole update of each hop of one replacement's path); and, per stopped task,
how long after the last node's mesh dropped it its container got the stop signal (``drains``: a
negative margin is a node still sending it connections as it stopped). The pure half (``events``,
``batches``, ``render``, ``chain``, ``drains``) is unit-tested; ``main`` only reads the files.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Event:
    t: float  # seconds since the epoch
    node: str
    name: str
    fields: dict


def parse_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def events(lines: Iterable[str], node: str) -> list[Event]:
    """The JSON log lines of one node as events (other lines, a traceback's say, are skipped)."""
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
            t = parse_time(rec.pop("timestamp"))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if isinstance(rec, dict):
            out.append(Event(t, node, str(rec.pop("event", "")), rec))
    return sorted(out, key=lambda e: e.t)


@dataclass
class TaskTrace:
    """What the agents said about one task."""

    task: str
    slot: int
    first: float  # its first line anywhere
    states: dict[str, float] = field(default_factory=dict)  # state -> when first reached
    healthy: float | None = None
    wire_s: float | None = None
    create_s: float | None = None
    netns_s: float | None = None  # of wire_s: making the namespace (the rest: its interfaces)
    probes: list[tuple[float, float]] = field(default_factory=list)  # (ended at, took s)


def task_traces(evs: list[Event], service: str) -> dict[str, TaskTrace]:
    out: dict[str, TaskTrace] = {}
    for e in evs:
        tid = e.fields.get("task")
        if not tid:
            continue
        tr = out.get(tid)
        if tr is None:
            if e.fields.get("service") != service:
                continue
            tr = out[tid] = TaskTrace(tid, int(e.fields.get("slot") or 0), e.t)
        if e.name == "task state":
            tr.states.setdefault(str(e.fields.get("state")), e.t)
            if e.fields.get("health") == "HEALTH_HEALTHY" and tr.healthy is None:
                tr.healthy = e.t
        elif e.name == "container prepared":
            tr.wire_s, tr.create_s = e.fields.get("wire_s"), e.fields.get("create_s")
        elif e.name == "task wired":
            tr.netns_s = e.fields.get("netns_s")
        elif e.name == "health probe":
            tr.probes.append((e.t, float(e.fields.get("took_s") or 0)))
    return out


@dataclass
class Batch:
    at: float  # when the supervisor's step was logged (its writes committed)
    slots: list[int]
    new: list[TaskTrace]  # the replacements it created
    old: list[TaskTrace]  # the tasks they replace
    next_at: float | None = None  # the next step, or the update's end


def batches(evs: list[Event], service: str) -> list[Batch]:
    """The update's steps, each with the traces of the tasks it created and of those it replaced."""
    traces = task_traces(evs, service)
    by_slot: dict[int, list[TaskTrace]] = defaultdict(list)
    for tr in sorted(traces.values(), key=lambda t: t.first):
        by_slot[tr.slot].append(tr)
    steps = [e for e in evs if e.name == "rolling update step" and e.fields.get("service") == service and e.fields.get("slots")]
    end = next((e.t for e in evs if e.name == "service update state" and e.fields.get("service") == service
                and e.fields.get("state") in ("completed", "paused", "rollback_completed")), None)
    out = []
    for i, step in enumerate(steps):
        slots = [int(s) for s in step.fields["slots"]]
        new, old = [], []
        for s in slots:
            before = [t for t in by_slot[s] if t.first < step.t - 0.5]  # (a log line may carry a later time than the step's own)
            after = [t for t in by_slot[s] if t not in before]
            if after:
                new.append(after[0])
            if before:
                old.append(before[-1])
        nxt = steps[i + 1].t if i + 1 < len(steps) else end
        out.append(Batch(step.t, slots, new, old, nxt))
    return out


def spread(values: list[float]) -> str:
    """``median/max`` of ``values`` (``-`` when there are none)."""
    if not values:
        return "-"
    return f"{statistics.median(values):.2f}/{max(values):.2f}"


def _phases(b: Batch) -> dict[str, list[float]]:
    """Per phase, one duration per replacement in the batch (seconds)."""
    ph: dict[str, list[float]] = defaultdict(list)
    for tr in b.new:
        st = tr.states
        if "ACCEPTED" in st:
            ph["to node"].append(st["ACCEPTED"] - b.at)
        if tr.wire_s is not None:
            ph["wire"].append(float(tr.wire_s))
            ph["create"].append(float(tr.create_s or 0))
        if tr.netns_s is not None:
            ph["netns"].append(float(tr.netns_s))
        if "RUNNING" in st and "STARTING" in st:
            ph["start"].append(st["RUNNING"] - st["STARTING"])
        if tr.probes:
            ph["probe"].append(tr.probes[0][1])
        if tr.healthy is not None and "RUNNING" in st:
            ph["healthy"].append(tr.healthy - st["RUNNING"])
        if tr.healthy is not None:
            ph["step->healthy"].append(tr.healthy - b.at)
    for tr in b.old:
        if "SHUTDOWN" in tr.states:
            ph["old stopped"].append(tr.states["SHUTDOWN"] - b.at)
    return ph


COLUMNS = ["to node", "wire", "netns", "create", "start", "probe", "healthy", "step->healthy", "old stopped"]


def render(bs: list[Batch], t0: float | None = None) -> list[str]:
    """One line per batch: when its step came (after ``t0``), how long after the health report that let it
    start (``react``: the first step's is from ``t0``), and its phases."""
    t0 = t0 if t0 is not None else (bs[0].at if bs else 0.0)
    healthy = sorted(tr.healthy for b in bs for tr in b.new if tr.healthy is not None)
    head = f"{'batch':>5} {'slots':>7} {'step@':>6} {'react':>6} " + " ".join(f"{c:>13}" for c in COLUMNS)
    lines = ["(seconds; step@: after the update began; react: after the last healthy report before the step; "
             "a phase: median/max over the batch)", head]
    for i, b in enumerate(bs, 1):
        ph = _phases(b)
        before = max((h for h in healthy if h <= b.at), default=t0)
        slots = f"{min(b.slots)}-{max(b.slots)}"
        lines.append(f"{i:>5} {slots:>7} {b.at - t0:6.2f} {b.at - before:6.2f} " + " ".join(f"{spread(ph.get(c, [])):>13}" for c in COLUMNS))
    return lines


def chain(bs: list[Batch]) -> list[str]:
    """One replacement's path, as means over the whole update (the sum, less the probe interval, is what a
    slot costs beyond the health check): step -> accepted on its node, prepare (wiring and create), start,
    running -> healthy (one interval, then the probe), healthy -> the supervisor's next step."""
    ph: dict[str, list[float]] = defaultdict(list)
    healthy = sorted(tr.healthy for b in bs for tr in b.new if tr.healthy is not None)
    for b in bs:
        for k, v in _phases(b).items():
            ph[k] += v
        for tr in b.new:
            st = tr.states
            if "ACCEPTED" in st and "STARTING" in st:
                ph["prepare"].append(st["STARTING"] - st["ACCEPTED"])
        before = [h for h in healthy if h <= b.at]
        if before:
            ph["react"].append(b.at - before[-1])
    parts = ["to node", "prepare", "start", "healthy", "react"]
    return ["per replacement (mean s): " + ", ".join(f"{k} {statistics.mean(ph[k]):.3f}" for k in parts if ph.get(k))
            + (f"; of healthy, the first probe {statistics.mean(ph['probe']):.3f}" if ph.get("probe") else "")]


def loop_summary(evs: list[Event], since: float, until: float) -> list[str]:
    """The leader's reconcile passes between ``since`` and ``until``: per loop, how many, their debounce and run time."""
    per: dict[str, list[Event]] = defaultdict(list)
    for e in evs:
        if e.name == "reconcile pass" and since <= e.t <= until:
            per[str(e.fields.get("loop"))].append(e)
    out = []
    for loop, es in sorted(per.items()):
        deb = [float(e.fields.get("debounce_s") or 0) for e in es]
        took = [float(e.fields.get("took_s") or 0) for e in es]
        out.append(f"{loop:>13}: {len(es):3d} passes, debounce {spread(deb)} s, pass {spread(took)} s, busy {sum(deb) + sum(took):.2f} s")
    return out


def drains(evs: list[Event], service: str) -> list[str]:
    """Per task of ``service`` whose container got the stop signal: the margin from the last node's mesh
    load without it to that signal, summed up (a node that never dropped it counts as dropping it never)."""
    nodes = {e.node for e in evs if e.name == "mesh loaded"}
    dropped: dict[str, dict[str, float]] = defaultdict(dict)  # task -> node -> its first mesh load without it
    for e in evs:
        if e.name == "mesh loaded":
            for tid in e.fields.get("removed") or []:
                dropped[tid].setdefault(e.node, e.t)
    margins, late, stops = [], [], 0
    for e in evs:
        if e.name != "task stop signalled" or e.fields.get("service") != service:
            continue
        stops += 1
        got = dropped.get(str(e.fields.get("task")), {})
        behind = sorted(n for n in nodes if got.get(n, e.t + 1) > e.t)  # still balancing it at the signal
        if behind:
            late.append(f"{e.fields.get('task')} ({', '.join(behind)})")
        elif got:
            margins.append(e.t - max(got.values()))
    if not stops:
        return []
    return [f"stops: {stops} signalled; after the last node's mesh dropped the task: min/median/max "
            f"{min(margins, default=0):.3f}/{spread(margins)} s; before some node's mesh dropped it: {len(late)}"
            + (f" {late[:3]}" if late else "")]


def read_lab(root: Path) -> list[Event]:
    """Every node's daemon log under a lab directory (``LAB/<node>/daemon.log``, or a kept trace's
    ``<node>/daemon.log``), as one time-ordered list of events. Not a walk of the whole tree: a
    container's directory that goes during it fails the walk."""
    evs: list[Event] = []
    for log in sorted({*root.glob("*/daemon.log"), *root.glob("*/*/daemon.log")}):
        evs += events(log.read_text(errors="replace").splitlines(), log.parent.name)
    return sorted(evs, key=lambda e: e.t)


def report(root: Path, service: str, t0: float | None = None, t1: float | None = None) -> list[str]:
    """The whole trace as lines: per batch, then the leader's loops over the update."""
    evs = read_lab(root)
    bs = batches(evs, service)
    if not bs:
        return [f"no rolling update step of {service} in the logs under {root} (were the nodes started with SHOAL_LOG_LEVEL=debug?)"]
    start = t0 if t0 is not None else bs[0].at
    end = t1 if t1 is not None else (bs[-1].next_at or bs[-1].at)
    out = render(bs, start) + chain(bs)
    if bs[-1].next_at is not None:
        out.append(f"update completed {bs[-1].next_at - start:.2f} s after it began" + (f"; the CLI returned at {t1 - start:.2f} s" if t1 else ""))
    return out + drains(evs, service) + ["leader's loops during the update:"] + loop_summary(evs, start, end)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("lab_dir", type=Path)
    ap.add_argument("--service", default="upd")
    args = ap.parse_args()
    print("\n".join(report(args.lab_dir, args.service)))


if __name__ == "__main__":
    main()
