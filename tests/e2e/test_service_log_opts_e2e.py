"""``svc create/update --log-driver json-file --log-opt max-size=..,max-file=..`` on a real manager and worker,
as docker has them: the options reach the node's log shim (the task's json-file log rotates at max-size and
keeps max-file files), an update replaces the task with one logging by the new options, and a bad option is
one error with nothing created.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.e2e.clicluster import CliCluster, containers

CHATTY = "i=0; while [ $i -lt 400 ]; do echo line-$i-padding-padding-padding-padding; i=$((i+1)); done; exec sleep 1000"


def log_files(c: CliCluster, service: str) -> tuple[str, list[str]] | None:
    """(task id, its log files: the log, then the rotated ones) once the task has written its 400 lines."""
    running = [t for t in c.tasks("svc", "ps", service) if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running")]
    states = containers(c)
    for t in running:
        state = states.get(t["ID"])
        if state and os.path.exists(state["log_path"]) and "line-399-" in Path(state["log_path"]).read_text():
            base = state["log_path"]
            rotated = sorted((p for p in os.listdir(os.path.dirname(base)) if p.startswith(os.path.basename(base) + ".")),
                             key=lambda p: int(p.rsplit(".", 1)[1]))  # fmt: skip
            return t["ID"], [base, *(os.path.join(os.path.dirname(base), p) for p in rotated)]
    return None


def test_log_options_rotate_the_tasks_log_and_an_update_changes_them(cli_cluster: CliCluster):
    c = cli_cluster
    c.shoal("svc", "create", "-d", "--name", "chatty", "--log-driver", "json-file", "--log-opt", "max-size=4k",
            "--log-opt", "max-file=2", "--stop-grace-period", "1s", "host", "sh", "-c", CHATTY)  # fmt: skip
    (spec,) = json.loads(c.shoal("svc", "inspect", "chatty").stdout)
    container = spec["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert (container["LogDriver"], container["LogOptions"]) == ("json-file", {"max-size": "4k", "max-file": "2"})
    first, files = c.wait_for(lambda: log_files(c, "chatty"), 60, "the task's 400 lines written")
    assert len(files) == 2 and all(os.path.getsize(f) <= 4096 for f in files), [(f, os.path.getsize(f)) for f in files]

    c.shoal("svc", "update", "-d", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", "chatty")
    second, files = c.wait_for(lambda: (got := log_files(c, "chatty")) and got[0] != first and got, 60, "the task replaced")
    assert len(files) == 3 and all(os.path.getsize(f) <= 2048 for f in files), [(f, os.path.getsize(f)) for f in files]
    pretty = c.shoal("svc", "inspect", "--pretty", "chatty").stdout
    assert "Log Driver:\n Name:\t\tjson-file\n LogOpts:\n  max-file:\t\t3\n  max-size:\t\t2k" in pretty, pretty


def test_a_bad_log_option_is_one_error_and_nothing_is_created(cli_cluster: CliCluster):
    c = cli_cluster
    res = c.shoal("svc", "create", "--name", "bad", "--log-opt", "max-file=3", "host", "true", check=False)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        'Error: invalid argument "max-file=3" for "--log-opt" flag: max-file cannot be greater than 1 when max-size is not set'
    ], res.stderr
    assert "bad" not in c.shoal("svc", "ls").stdout
