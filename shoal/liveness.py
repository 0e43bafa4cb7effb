"""Which down nodes' tasks a leader may replace: after a leader change, and when many nodes go at once.

A node without a session is not always a dead node. Two cases where the manager's side is the more
likely cause, and replacing every task would reshuffle a healthy cluster:

- **A new leader** (a failover, or a manager that restarted after an outage) knows no sessions yet:
  every agent has to find it first. Until each node has had a full grace period (the time a node
  normally has before it is declared down: missed heartbeats plus the reconnect grace), measured
  from the moment this leader could accept sessions, a node without a session is Unknown, not Down,
  and its tasks stay where they are. Agents cap their reconnect backoff well inside that window.
- **Mass disruption**, as Kubernetes' node lifecycle controller has it: when more than half of the
  nodes are down at once, the cause is more likely the manager's network than the nodes. Tasks of
  nodes that went down before the disruption are replaced as usual; the others are released one node
  per ``interval_s`` (oldest first), and the state is logged and shown in ``node ls``.

Pure and synchronous: the orchestrator feeds it the nodes without a session and the clock; the
control API asks the same ``disrupted`` rule for what ``node ls`` shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DISRUPTION_INTERVAL_S = 30.0
"""While more than half of the nodes are down, one more down node's tasks are replaced this often."""


def disrupted(down: int, total: int) -> bool:
    """More than half of the nodes are down at once (a one-node cluster is never "disrupted")."""
    return total >= 2 and down * 2 > total


def disruption_note(down: int, total: int, interval_s: float = DISRUPTION_INTERVAL_S) -> str:
    """What ``node ls`` and the log say while ``disrupted(down, total)``."""
    return (
        f"mass disruption: {down} of {total} nodes down at once (more likely the manager's side than the nodes'); "
        f"their tasks are replaced one node every {interval_s:g} s"
    )


@dataclass
class Liveness:
    """The leader's view of which down nodes' tasks may be replaced (times in monotonic seconds)."""

    grace_s: float
    """A node's full grace: missed heartbeats times the period, plus the reconnect grace."""
    since: float
    """When this leader could accept sessions: every node is Unknown until ``since + grace_s``."""
    interval_s: float = DISRUPTION_INTERVAL_S
    released: set[str] = field(default_factory=set)
    """Down nodes whose tasks may be replaced."""
    down_since: dict[str, float] = field(default_factory=dict)
    """When each node was first seen down (the oldest is released first)."""
    is_disrupted: bool = False
    last_release: float = 0.0

    def unknown(self, now: float) -> bool:
        """Still inside the new leader's grace: no node is Down yet."""
        return now < self.since + self.grace_s

    def observe(self, down: set[str], total: int, now: float) -> str | None:
        """Take the nodes without a session now; returns a line to log when a disruption begins or ends."""
        for nid in list(self.down_since):
            if nid not in down:
                del self.down_since[nid]
        for nid in down:
            self.down_since.setdefault(nid, now)
        self.released &= down
        if self.unknown(now):
            return None
        was = self.is_disrupted
        self.is_disrupted = disrupted(len(down), total)
        if not self.is_disrupted:
            self.released = set(down)
            return "mass disruption over: down nodes' tasks are replaced again" if was else None
        if not was:
            self.last_release = now
        self._release_due(down, now)
        return disruption_note(len(down), total, self.interval_s) if not was else None

    def _release_due(self, down: set[str], now: float) -> None:
        waiting = sorted(down - self.released, key=lambda n: (self.down_since[n], n))
        while waiting and now - self.last_release >= self.interval_s:
            self.released.add(waiting.pop(0))
            self.last_release += self.interval_s

    def may_replace(self, node_id: str, now: float) -> bool:
        """Whether the tasks of ``node_id`` (which has no session) may be replaced now."""
        return not self.unknown(now) and node_id in self.released

    def next_change(self, now: float) -> float | None:
        """When a decision may change without any event: the grace ends, or the next node is released."""
        if self.unknown(now):
            return self.since + self.grace_s
        if self.is_disrupted and set(self.down_since) - self.released:
            return self.last_release + self.interval_s
        return None
