"""``bench/failover.py --lab``: leader failover on a real lab, 3 managers (an etcd member each) and 2 workers.

Each run kills the leader's whole host (as ``shoal lab kill`` does, from this process so that the
figure starts at the kill: every process on it gets SIGKILL, its etcd member too), then times ``shoal --lab NAME svc scale web=N`` (which returns once N replicas run;
retried until a surviving manager accepts it), as a user at a terminal would see it: the CLI's own
start-up is part of the figure. Each run also prints where the time went, from the hosts' logs (seconds after the kill): the new leader
elected, every agent whose session broke re-attached to a surviving manager, the first new task accepted,
the last one running, how many ``svc scale`` invocations it took and when the last one started. The host
is started again (and every node Ready) before the next run. ``SHOAL_BENCH_KEEP_LOGS=DIR`` keeps the
hosts' logs there. The lab's
etcd runs with LAN timings (see shoal.lab.procs.etcd_argv), so an etcd leader lost with the host is
replaced in well under a second.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench._lab import Lab

NAME = f"bfo{os.getpid() % 10000}"


def breakdown(events: list[tuple[float, str, dict]], wall0: float, victim: str) -> dict[str, float]:
    """Seconds after the kill at which each step of the failover was first seen in the logs (pure).

    etcd_leader_elected: a surviving etcd member became raft leader (its own log); lease_ran_out: a
    surviving manager saw the dead leader's election key go (etcd revoked its lease); elected: a
    surviving manager logged "elected leader"; update_accepted: the control API wrote the
    scaled spec; tasks_created: the leader's orchestrator committed the new tasks; assigned: the
    scheduler placed them; reattached: every agent whose session broke had a new one ("session
    established" on each worker that logged "session ended"); scheduled: the first new task was
    ACCEPTED by an agent; running: the last new task was RUNNING.
    """
    out: dict[str, float] = {}
    broke, back = set(), {}
    for ts, host, rec in events:
        ev, dt = rec.get("event"), ts - wall0
        if host == victim:
            continue
        if ev == "etcd raft leader":
            out.setdefault("etcd_leader_elected", dt)
        elif ev == "leader key gone":
            out.setdefault("lease_ran_out", dt)
        elif ev == "elected leader":
            out.setdefault("elected", dt)
        elif ev == "session ended" and host.startswith("worker"):
            broke.add(host)
        elif ev == "session established" and host in broke:
            back.setdefault(host, dt)
        elif ev == "service updated":
            out.setdefault("update_accepted", dt)
        elif ev == "orchestrator changes committed" and "update_accepted" in out:
            out.setdefault("tasks_created", dt)
        elif ev == "tasks assigned":
            out.setdefault("assigned", dt)
        elif ev == "task state" and rec.get("state") == "ACCEPTED":
            out.setdefault("scheduled", dt)
        elif ev == "task state" and rec.get("state") == "RUNNING":
            out["running"] = dt
        elif ev == "session key not written; retrying":
            out["session_write_retries"] = out.get("session_write_retries", 0) + 1
    if broke:
        out["reattached"] = max(back.get(h, float("nan")) for h in broke)
    return out


def etcd_events(lab: Lab, after: float) -> list[tuple[float, str, dict]]:
    """(wall time, host, {"event": "etcd raft leader"}) for each "became leader" in the members' own logs."""
    out = []
    for f in lab.root.glob(f"{lab.name}/*/etcd.log"):
        for line in f.read_text(errors="replace").splitlines():
            if "became leader at term" not in line:
                continue
            try:
                ts = datetime.strptime(json.loads(line)["ts"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            if ts > after:
                out.append((ts, f.parent.name, {"event": "etcd raft leader"}))
    return out


def etcd_leader(lab: Lab) -> str:
    """The manager host whose etcd member is raft leader ("?" when etcdctl cannot tell)."""
    state = lab.state()
    members = {n["addr"]: n["name"] for n in state["nodes"] if n["role"] == "manager"}
    tls = lab.root / NAME / "etcd-tls"
    eps = ",".join(f"https://{a}:2379" for a in members)
    res = subprocess.run(
        ["etcdctl", "--endpoints", eps, "--cacert", str(tls / "ca.crt"), "--cert", str(tls / "managers.crt"),
         "--key", str(tls / "managers.key"), "--command-timeout", "2s", "endpoint", "status", "-w", "json"],
        capture_output=True, text=True, timeout=10, env={**os.environ, "ETCDCTL_API": "3"},
    )  # fmt: skip
    try:
        for st in json.loads(res.stdout):
            if st["Status"]["leader"] == st["Status"]["header"]["member_id"]:
                return members.get(st["Endpoint"].removeprefix("https://").rsplit(":", 1)[0], "?")
    except (ValueError, KeyError, TypeError):
        pass
    return "?"


def _one_run(lab: Lab, replicas: int) -> tuple[str, float, str]:
    """Kill the leader's host; time ``svc scale web=N`` (it waits for convergence) until it succeeds."""
    victim = lab.until(lab.leader, 30, "a leader")
    raft_leader = etcd_leader(lab)
    t0, wall0 = lab.fault("kill", victim)  # in this process: the figure starts at the kill itself
    tries = []

    def scaled() -> bool:
        tries.append(time.monotonic() - t0)
        return lab.shoal("svc", "scale", f"web={replicas}", check=False).returncode == 0

    lab.until(scaled, 30, "scale converged")
    dt = time.monotonic() - t0
    if lab.running("web") < replicas:
        raise RuntimeError(f"svc scale returned before {replicas} replicas ran")
    steps = breakdown(sorted(lab.log_events(wall0) + etcd_events(lab, wall0), key=lambda e: e[0]), wall0, victim)
    steps = {"etcd_leader_killed": "yes" if raft_leader == victim else "no" if raft_leader != "?" else "?", **steps}
    steps["cli_tries"] = len(tries)
    steps["last_cli_started"] = tries[-1]
    note = ", ".join(f"{k} {v:.2f} s" if isinstance(v, float) else f"{k} {v}" for k, v in steps.items())
    return victim, dt, note


def run_lab(runs: int) -> list[float]:
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-failover-lab-"))
    lab = Lab(root, NAME)
    times: list[float] = []
    kills = raft_kills = 0
    try:
        lab.run("lab", "up", "--name", NAME, "--managers", "3", "--workers", "2", timeout=300)
        started = time.time()
        replicas = 2
        lab.shoal("svc", "create", "--detach", "--name", "web", "--replicas", str(replicas), "--constraint", "node.role==worker", "host", "sleep", "100000")
        lab.until(lambda: lab.running("web") >= replicas, 60, "2 running")
        for i in range(runs):
            replicas += 2
            victim, dt, note = _one_run(lab, replicas)
            raft_kills += "etcd_leader_killed yes" in note
            times.append(dt)
            kills += 1
            print(f"  run {i + 1}: leader host {victim} killed, scale to {replicas} accepted and converged in {dt:.2f} s\n    ({note})", flush=True)
            lab.run("lab", "start", victim, "--name", NAME, timeout=120)
            lab.until(lambda: {n["Status"] for n in lab.json("node", "ls")} == {"Ready"}, 60, "every node Ready")
        elections = sum(1 for _ts, _h, rec in lab.log_events(started) if rec.get("event") == "elected leader")
        print(f"  leader elections after the lab was up: {elections} for {kills} leaders killed "
              f"(false leader changes: {elections - kills}); etcd raft elections: {len(etcd_events(lab, started))} "
              f"for {raft_kills} raft leaders killed")
    finally:
        keep = os.environ.get("SHOAL_BENCH_KEEP_LOGS")
        for log in (root / NAME).glob("*/*.log") if keep else ():  # the hosts' logs, for a closer look
            Path(keep, log.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(log, Path(keep, log.parent.name, log.name))
        lab.run("lab", "down", "--name", NAME, check=False, timeout=300)
        shutil.rmtree(root, ignore_errors=True)
    return times
