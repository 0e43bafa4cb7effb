"""CI cannot go green by skipping: under ``CI=true`` a skip fails the run unless it is allow-listed.

Every skip's reason is matched against ``tests/skip-allowlist.txt``, a reviewed file whose entries say
why that reason cannot be helped on some machine kind. A skip no entry matches, or a run where most
tests skipped, turns the exit status into "tests failed" and adds a count of it to pytest's summary line
(which already counts the skips). Outside CI the gate only reports; it never changes the outcome.

The rule itself (``parse_allowlist`` and ``judge``) is pure so that it can be unit-tested.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ALLOWLIST = Path(__file__).with_name("skip-allowlist.txt")
SEPARATOR = " :: "
# A run where more than this share of the tests skipped fails even if every skip is allow-listed.
MAX_SKIP_SHARE = 0.5


class AllowlistError(ValueError):
    """The allow-list file is malformed (one message naming the line)."""


@dataclass(frozen=True)
class Entry:
    """One allow-list entry: a regular expression searched in skip reasons, and why it is allowed."""

    pattern: re.Pattern[str]
    why: str
    line: int


@dataclass(frozen=True)
class Skip:
    nodeid: str
    reason: str


@dataclass
class Verdict:
    """What the gate decided about one run."""

    allowed: list[Skip] = field(default_factory=list)
    unallowed: list[Skip] = field(default_factory=list)
    mostly_skipped: bool = False

    @property
    def ok(self) -> bool:
        return not self.unallowed and not self.mostly_skipped


def ci_enabled(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """CI services set ``CI=true``; ``1`` and ``yes`` count too."""
    return environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def parse_allowlist(text: str) -> list[Entry]:
    """Parse ``PATTERN :: WHY`` lines; blank lines and ``#`` comments are ignored."""
    entries = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, sep, why = line.partition(SEPARATOR)
        if not sep or not pattern.strip() or not why.strip():
            raise AllowlistError(f"skip allow-list line {n}: expected 'REASON-PATTERN :: WHY', got {line!r}")
        try:
            entries.append(Entry(re.compile(pattern.strip()), why.strip(), n))
        except re.error as e:
            raise AllowlistError(f"skip allow-list line {n}: bad pattern {pattern.strip()!r}: {e}") from None
    return entries


def judge(skips: list[Skip], total: int, entries: list[Entry], max_share: float = MAX_SKIP_SHARE) -> Verdict:
    """Sort skips into allowed and not allowed; flag a run where most of the ``total`` tests skipped."""
    v = Verdict()
    for s in skips:
        (v.allowed if any(e.pattern.search(s.reason) for e in entries) else v.unallowed).append(s)
    v.mostly_skipped = total > 0 and len(skips) > max_share * total
    return v


def skip_reason(report: Any) -> str:
    """The reason text of a skipped report (pytest stores ``(path, line, 'Skipped: why')``)."""
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


class SkipGate:
    """The pytest plugin: records outcomes, applies ``judge`` at the end under CI."""

    def __init__(self, entries: list[Entry], enforce: bool) -> None:
        self.entries = entries
        self.enforce = enforce
        self.skips: list[Skip] = []
        self.total = 0
        self.verdict: Verdict | None = None

    def pytest_runtest_logreport(self, report: Any) -> None:
        # One count per test: its call, or its setup when the setup skipped or failed.
        if report.when == "teardown" or (report.when == "setup" and report.passed):
            return
        self.total += 1
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skips.append(Skip(report.nodeid, skip_reason(report)))

    def pytest_collectreport(self, report: Any) -> None:
        if report.skipped:
            self.skips.append(Skip(report.nodeid, skip_reason(report)))
            self.total += 1

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.verdict = judge(self.skips, self.total, self.entries)
        if not self.enforce or self.verdict.ok:
            return
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            if self.verdict.unallowed:
                tr.stats["skips not allow-listed"] = list(self.verdict.unallowed)
            if self.verdict.mostly_skipped:
                tr.stats["run mostly skipped"] = [self.verdict]
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        v = self.verdict
        if v is None or not (self.enforce or v.unallowed):
            return
        tr = terminalreporter
        mode = "CI=true, enforced" if self.enforce else "report only (set CI=true to enforce)"
        tr.section(f"skip gate ({mode})", sep="-")
        tr.line(f"{len(self.skips)} of {self.total} tests skipped: {len(v.allowed)} allow-listed, "
                f"{len(v.unallowed)} not allow-listed ({ALLOWLIST.name})")  # fmt: skip
        for s in v.unallowed:
            tr.line(f"NOT ALLOWED  {s.nodeid}: {s.reason}", red=self.enforce)
        if v.mostly_skipped:
            tr.line(f"more than {MAX_SKIP_SHARE:.0%} of the tests skipped: a run that tests little cannot pass",
                    red=True)  # fmt: skip


def register(config: pytest.Config, allowlist: Path = ALLOWLIST) -> None:
    """Called from tests/conftest.py: load the allow-list (a malformed one stops the run) and plug in."""
    try:
        entries = parse_allowlist(allowlist.read_text()) if allowlist.exists() else []
    except AllowlistError as e:
        raise pytest.UsageError(str(e)) from None
    config.pluginmanager.register(SkipGate(entries, ci_enabled()), "shoal-skipgate")
