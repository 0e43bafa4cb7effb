"""The ``shoal`` executable runs a plain ``shoal run`` without click (shoal/cli/fastrun.py): whole processes,
the fast path against click's command on the same runtime, output, exit codes, errors and what is loaded."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
]
SHOAL = str(Path(sys.executable).parent / "shoal")
CLICK = "import sys; from shoal.cli.main import main; sys.argv[0] = 'shoal'; main()"
FAST = ("import atexit, os, sys; atexit.register(lambda: open(os.environ['MODS'], 'w').write(' '.join(sys.modules)));"
        " from shoal.cli.entry import main; sys.argv[0] = 'shoal'; main()")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "SHOAL_ROOT": str(tmp_path / "root"), "SHOAL_LAUNCHER_LINGER_S": "0", "MODS": str(tmp_path / "mods")}
    env["SHOAL_LOCAL_CGROUP_PARENT"] = f"shoal-test-{uuid.uuid4().hex[:8]}"
    for name in ("SHOAL_HOST", "SHOAL_LAB"):
        env.pop(name, None)
    return env


def shoal(env: dict[str, str], code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60)


def loaded(env: dict[str, str]) -> set[str]:
    return set(Path(env["MODS"]).read_text().split())


def test_a_run_prints_and_exits_as_through_click_without_loading_click(env: dict[str, str]) -> None:
    args = ["run", "--rm", "-e", "WHO=fast", "--name", "one", "host", "sh", "-c", 'echo "out $WHO"; echo err >&2; exit 3']
    ref = shoal(env, CLICK, *args)
    fast = shoal(env, FAST, *args)
    assert (ref.returncode, ref.stdout, ref.stderr) == (3, "out fast\n", "err\n")
    assert (fast.returncode, fast.stdout, fast.stderr) == (ref.returncode, ref.stdout, ref.stderr)
    assert not {"click", "grpc", "asyncio"} & loaded(env)
    ps = shoal(env, CLICK, "ps", "-a", "-q")
    assert ps.stdout == "", "--rm left a container behind"


def test_detach_a_name_in_use_and_a_runtime_error_read_as_through_click(env: dict[str, str]) -> None:
    fast = shoal(env, FAST, "run", "-d", "--name", "keep", "host", "sleep", "30")
    assert fast.returncode == 0 and len(fast.stdout.strip()) == 64 and fast.stderr == ""
    try:
        ref = shoal(env, CLICK, "run", "--name", "keep", "host", "true")
        again = shoal(env, FAST, "run", "--name", "keep", "host", "true")
        assert (ref.returncode, ref.stderr) == (1, 'Error: Conflict. The container name "keep" is already in use\n')
        assert (again.returncode, again.stdout, again.stderr) == (ref.returncode, ref.stdout, ref.stderr)
        assert "click" not in loaded(env)
    finally:
        shoal(env, CLICK, "rm", "-f", "keep")
    ref = shoal(env, CLICK, "run", "--rm", "no-such-image", "true")
    fast = shoal(env, FAST, "run", "--rm", "no-such-image", "true")
    assert ref.returncode == 1 and ref.stderr.startswith("Error: ")
    assert (fast.returncode, fast.stdout, fast.stderr) == (ref.returncode, ref.stdout, ref.stderr)


@pytest.mark.parametrize("args", [
    ["run", "--help"], ["run", "-m", "12Q", "host", "true"], ["run", "--bogus", "host"], ["-H", "/m.sock", "run", "host", "true"],
])
def test_what_click_words_is_left_to_click(env: dict[str, str], args: list[str]) -> None:
    ref = shoal(env, CLICK, *args)
    fast = shoal(env, FAST, *args)
    assert (fast.returncode, fast.stdout, fast.stderr) == (ref.returncode, ref.stdout, ref.stderr)
    assert ref.returncode != 0 or "--help" in args
    assert "click" in loaded(env)


def test_the_installed_script_takes_the_fast_path(env: dict[str, str]) -> None:
    env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}  # every import, on stderr
    res = subprocess.run([SHOAL, "run", "--rm", "host", "sh", "-c", "echo hi"], env=env, capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stdout) == (0, "hi\n"), res.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")}
    assert "shoal.cli.fastrun" in imported and "click" not in imported
