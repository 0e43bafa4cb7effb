"""``shoal run`` on the blocking client (SyncRuntime): what a user at a terminal depends on.

A whole ``shoal run`` process, as a user runs it: Ctrl-C reaches the container as SIGINT and the exit
code is the container's; the output of a container that exits at once is all there; the command loads
no asyncio (it is what keeps it fast). And the client itself against a real launcher: the calls, the
launcher's errors under their own types, a wait on an exited container, a one-off connection.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from shoal.runtime import ConfigError, ContainerConfig, ContainerNotFound
from shoal.runtime.client.sync import SyncRuntime

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
]
SHOAL = str(Path(sys.executable).parent / "shoal")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "SHOAL_ROOT": str(tmp_path / "root"), "SHOAL_LAUNCHER_LINGER_S": "0"}
    env["SHOAL_LOCAL_CGROUP_PARENT"] = f"shoal-test-{uuid.uuid4().hex[:8]}"
    env.pop("SHOAL_HOST", None)
    return env


def test_ctrl_c_reaches_the_container_and_its_exit_code_is_shoal_runs(tmp_path: Path) -> None:
    script = 'trap "echo got INT; exit 42" INT; echo ready; while :; do sleep 0.05; done'
    proc = subprocess.Popen([SHOAL, "run", "--rm", "host", "sh", "-c", script], env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out) == (42, "got INT\n"), err


def test_a_container_that_exits_at_once_shows_all_its_output_and_run_loads_no_asyncio(tmp_path: Path) -> None:
    probe = (
        "import sys, json\nfrom shoal.cli.main import main\n"
        "try:\n    main(['run', '--rm', 'host', 'sh', '-c', 'seq 1 500; echo bye >&2; exit 5'])\n"
        "except SystemExit as e:\n    code = e.code\n"
        "print(json.dumps([code, 'asyncio' in sys.modules, 'grpc' in sys.modules]), file=sys.stderr)\n"
    )
    res = subprocess.run([sys.executable, "-c", probe], env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    *lines, summary = res.stderr.splitlines()
    assert json.loads(summary) == [5, False, False], res.stderr
    assert res.stdout.splitlines() == [str(i) for i in range(1, 501)]
    assert lines == ["bye"]


def test_the_blocking_client_runs_a_container_and_reports_the_launchers_errors(tmp_path: Path) -> None:
    rt = SyncRuntime(str(tmp_path / "state"), cgroup_parent=f"shoal-test-{uuid.uuid4().hex[:8]}")
    with rt:
        assert rt.list() == []
        info = rt.create(ContainerConfig(id="c1", image="host", args=["sh", "-c", "exit 3"]))
        assert (info.id, info.status) == ("c1", "created")
        assert rt.start("c1").status in ("running", "exited")
        assert rt.wait("c1").exit_code == 3
        assert rt.wait("c1").exit_code == 3, "a wait on an exited container answers at once"
        assert [c.id for c in rt.list()] == ["c1"]
        with pytest.raises(ContainerNotFound):
            rt.inspect("nope")
        with pytest.raises(ContainerNotFound):
            rt.kill("nope", fresh=True)
        with pytest.raises(ConfigError):
            rt.create(ContainerConfig(id="Bad Id", image="host", args=["true"]))
        rt.delete("c1")
        assert rt.list() == []
        launcher = rt.launcher_pid
    assert launcher is not None
    deadline = time.monotonic() + 10
    while Path(f"/proc/{launcher}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{launcher}").exists(), "the launcher goes away with the last session (no linger)"


def test_delete_force_kills_a_running_container_first(tmp_path: Path) -> None:
    with SyncRuntime(str(tmp_path / "state"), cgroup_parent=f"shoal-test-{uuid.uuid4().hex[:8]}") as rt:
        rt.create(ContainerConfig(id="c2", image="host", args=["sleep", "1000"]))
        rt.start("c2")
        assert rt.inspect("c2").status == "running"
        rt.delete("c2", force=True)
        assert rt.list() == []
