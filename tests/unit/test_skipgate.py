"""The skip gate: under CI=true a skip outside the allow-list, or a mostly-skipped run, fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import skipgate
from tests.skipgate import AllowlistError, Skip, judge, parse_allowlist

ROOT = Path(__file__).resolve().parents[2]


def test_allowlist_entries_are_pattern_and_why() -> None:
    entries = parse_allowlist("# comment\n\nno v1 devices controller :: v2-only hosts have none\n")
    assert len(entries) == 1
    assert entries[0].pattern.search("skipped: no v1 devices controller here")
    assert entries[0].why == "v2-only hosts have none"
    assert entries[0].line == 3


@pytest.mark.parametrize("line", ["a reason without a why", "pattern :: ", " :: why only", "([ :: bad regex"])
def test_a_malformed_allowlist_line_is_an_error_naming_the_line(line: str) -> None:
    with pytest.raises(AllowlistError, match="line 2"):
        parse_allowlist(f"# header\n{line}\n")


def test_the_real_allowlist_parses_and_every_entry_says_why() -> None:
    entries = parse_allowlist(skipgate.ALLOWLIST.read_text())
    assert all(len(e.why) >= 15 for e in entries)


def test_judge_sorts_skips_by_the_allowlist() -> None:
    entries = parse_allowlist("^needs KVM :: this machine kind has none\n")
    skips = [Skip("t::a", "needs KVM here"), Skip("t::b", "etcd binary not found")]
    v = judge(skips, total=10, entries=entries)
    assert [s.nodeid for s in v.allowed] == ["t::a"]
    assert [s.nodeid for s in v.unallowed] == ["t::b"]
    assert not v.mostly_skipped
    assert not v.ok


def test_judge_fails_a_mostly_skipped_run_even_when_every_skip_is_allowed() -> None:
    entries = parse_allowlist(". :: everything (for this test)\n")
    assert judge([Skip(f"t::{i}", "x") for i in range(5)], total=10, entries=entries).ok
    v = judge([Skip(f"t::{i}", "x") for i in range(6)], total=10, entries=entries)
    assert v.mostly_skipped and not v.ok
    assert not judge([Skip("t::only", "x")], total=1, entries=entries).ok


def test_ci_is_recognised_from_the_environment() -> None:
    assert skipgate.ci_enabled({"CI": "true"})
    assert skipgate.ci_enabled({"CI": "1"})
    assert not skipgate.ci_enabled({"CI": "false"})
    assert not skipgate.ci_enabled({})


SAMPLE = """
import pytest

def test_passes():
    pass

def test_passes_too():
    pass

def test_allowed_skip():
    pytest.skip(reason="needs a GPU")

@pytest.mark.skipif(True, reason="etcd binary not found")
def test_unallowed_skip():
    pass
"""


def _run_sample(tmp_path: Path, ci: str, sample: str = SAMPLE) -> subprocess.CompletedProcess[str]:
    (tmp_path / "allow.txt").write_text("^needs a GPU$ :: sample machines have no GPU\n")
    (tmp_path / "conftest.py").write_text(
        "from pathlib import Path\nfrom tests import skipgate\n\n"
        "def pytest_configure(config):\n"
        "    skipgate.register(config, Path(__file__).with_name('allow.txt'))\n"
    )
    (tmp_path / "test_sample.py").write_text(sample)
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip


def test_under_ci_an_unallowed_skip_fails_the_run_and_the_summary_counts_it(tmp_path: Path) -> None:
    res = _run_sample(tmp_path, "true")
    last = res.stdout.strip().splitlines()[-1]
    assert res.returncode == 1, res.stdout
    assert "2 passed, 2 skipped" in last and "1 skips not allow-listed" in last
    assert "NOT ALLOWED  test_sample.py::test_unallowed_skip: etcd binary not found" in res.stdout


def test_under_ci_allowed_skips_pass(tmp_path: Path) -> None:
    res = _run_sample(tmp_path, "true", SAMPLE.replace("etcd binary not found", "needs a GPU"))
    assert res.returncode == 0, res.stdout
    assert "2 passed, 2 skipped" in res.stdout.strip().splitlines()[-1]


def test_under_ci_a_mostly_skipped_run_fails(tmp_path: Path) -> None:
    sample = SAMPLE.replace("etcd binary not found", "needs a GPU").replace(
        "def test_passes_too():\n    pass\n", ""
    )
    res = _run_sample(tmp_path, "true", sample)
    assert res.returncode == 1, res.stdout
    assert "run mostly skipped" in res.stdout.strip().splitlines()[-1]


def test_outside_ci_skips_do_not_change_the_outcome(tmp_path: Path) -> None:
    res = _run_sample(tmp_path, "")
    assert res.returncode == 0, res.stdout
    assert "NOT ALLOWED" in res.stdout
