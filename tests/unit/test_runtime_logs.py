"""The log writer's rotation and the readers, on plain files."""

from __future__ import annotations

from pathlib import Path

from shoal.runtime import logs
from shoal.runtime.launcher import logshim


def test_rotation_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    path = str(tmp_path / "ctr.log")
    w = logshim._Writer(path, max_size=300, max_files=3)
    for i in range(40):
        w.write("stdout", f"line {i}\n".encode())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ctr.log", "ctr.log.1", "ctr.log.2"]
    assert all(p.stat().st_size <= 300 for p in tmp_path.iterdir())
    lines = [r["log"] for r in logs.records(path)]
    assert lines[-1] == "line 39\n" and lines == sorted(lines, key=lambda x: int(x.split()[1]))
    assert len(lines) < 40  # the oldest were rotated away
    assert logs.text(path).endswith("line 38\nline 39\n")


def test_garbage_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "ctr.log"
    path.write_text('not json\n{"log": "ok\\n", "stream": "stdout", "time": "x"}\n[1]\n')
    assert logs.text(str(path)) == "ok\n"
