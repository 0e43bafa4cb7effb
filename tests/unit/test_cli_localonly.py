"""Node-local commands refuse to run when the CLI was pointed at a cluster (--lab, -H), naming the way to do it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from shoal.cli.main import main


def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), env={"SHOAL_LAB": "", **(env or {})}, obj={"connect": lambda host: None})


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("run", "busybox", "true"), "svc create IMAGE"),
        (("ps",), "svc ps SERVICE"),
        (("images",), "image ls --cluster"),
        (("image", "load", "-i", "/nonexistent.tar"), "image load --cluster -i FILE"),
        (("image", "ls"), "image ls --cluster"),
        (("logs", "abc"), "svc logs SERVICE|TASK"),
        (("volume", "ls"), "volumes live on each node: there, `shoal volume ... --root DATA_DIR/runtime`"),
        (("exec", "abc", "true"), "there, `shoal exec --root DATA_DIR/runtime TASK_ID COMMAND` (DATA_DIR: the node's --data-dir"),
        (("stats",), "there, `shoal stats --root DATA_DIR/runtime`"),
    ],
)
def test_local_commands_are_refused_with_a_host(args: tuple[str, ...], hint: str) -> None:
    r = invoke("-H", "10.0.0.1:4242", *args)
    assert r.exit_code == 2, r.output
    assert "acts on this machine only, not on the cluster given by -H 10.0.0.1:4242" in r.output and hint in r.output


def test_local_commands_are_refused_under_a_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    import shoal.cli.main as m

    monkeypatch.setattr(m, "_lab_host", lambda name: "unix:///tmp/nowhere.sock")
    r = invoke("--lab", "demo", "run", "busybox", "true")
    assert r.exit_code == 2 and "not on the cluster given by --lab demo" in r.output and "shoal --lab demo svc create" in r.output


def test_without_a_cluster_target_or_with_cluster_flags_nothing_is_refused() -> None:
    assert "acts on this machine only" not in invoke("run", "--help").output
    assert "acts on this machine only" not in invoke("-H", "10.0.0.1:4242", "run", "--help").output  # help still works
    # an env SHOAL_HOST is not a command-line choice: scripts that export it keep using local commands
    r = invoke("image", "load", "-i", "/nonexistent.tar", env={"SHOAL_HOST": "10.0.0.1:4242"})
    assert "acts on this machine only" not in r.output
    r = invoke("-H", "10.0.0.1:4242", "image", "load", "--cluster", "-i", "/nonexistent.tar")
    assert "acts on this machine only" not in r.output and "/nonexistent.tar" in r.output


def test_under_a_lab_the_hint_names_the_lab_hosts_runtime_where_its_task_containers_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """``shoal exec`` on a node looks in ``shoal run``'s runtime unless told the agent's (``--root``): the
    hint gives the path a lab host's agent uses, so the command it shows finds the task's container."""
    import shoal.cli.main as m

    monkeypatch.setattr(m, "_lab_host", lambda name: "unix:///tmp/nowhere.sock")
    r = invoke("--lab", "demo", "exec", "abc", "true", env={"SHOAL_LAB_DIR": "/srv/labs"})
    assert r.exit_code == 2 and "`shoal exec --root /srv/labs/demo/NODE/runtime TASK_ID COMMAND`" in r.output, r.output
    assert "`shoal lab exec NODE -- shoal ...`" in r.output
