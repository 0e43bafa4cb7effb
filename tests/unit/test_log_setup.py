"""Logging as every shoal process sets it up: JSON lines for daemons (stdlib loggers such as grpc's too),
key=value on a terminal, the level honoured, and structlog not imported until something logs.

Each case runs in a fresh interpreter: the setup is process-wide (root handlers, structlog's config).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_daemons_log_one_json_object_per_line_with_level_logger_and_utc_time():
    res = run(
        "from shoal import log\n"
        "log.setup('info', json=True)\n"
        "log.get('shoal.manager.scheduler').info('tasks assigned', assigned=3, service='web')\n"
        "import logging; logging.getLogger('grpc._server').warning('foreign %s', 'line')\n"
    )
    assert res.returncode == 0, res.stderr
    first, second = (json.loads(line) for line in res.stderr.splitlines())
    assert first["event"] == "tasks assigned" and first["assigned"] == 3 and first["service"] == "web"
    assert first["level"] == "info" and first["logger"] == "shoal.manager.scheduler"
    assert first["timestamp"].endswith("Z"), "UTC, ISO 8601"
    assert second["event"] == "foreign line" and second["level"] == "warning" and second["logger"] == "grpc._server"


def test_a_terminal_gets_key_value_lines_without_colour():
    res = run(
        "from shoal import log\n"
        "log.setup('info', json=False)\n"
        "log.get('shoal.worker.agent').warning('session lost', manager='10.0.0.1:4242')\n"
    )
    line = res.stderr.strip()
    assert "session lost" in line and "manager=10.0.0.1:4242" in line and "warning" in line
    assert "\x1b[" not in line and not line.startswith("{")


@pytest.mark.parametrize(("level", "shown"), [("debug", ["d", "i", "w"]), ("info", ["i", "w"]), ("warning", ["w"])])
def test_the_level_is_honoured(level, shown):
    res = run(
        "from shoal import log\n"
        f"log.setup({level!r}, json=True)\n"
        "l = log.get('shoal.worker.controller')\n"
        "l.debug('d'); l.info('i'); l.warning('w')\n"
    )
    assert [json.loads(line)["event"] for line in res.stderr.splitlines()] == shown


def test_debug_is_shoals_own_lines_not_the_libraries_chatter():
    res = run(
        "import logging\n"
        "from shoal import log\n"
        "log.setup('debug', json=True)\n"
        "log.get('shoal.manager.reactor').debug('reconcile pass', took_s=0.01)\n"
        "logging.getLogger('pyroute2.netlink').debug('chatter')\n"
        "logging.getLogger('grpc._cython').info('library info')\n"
    )
    assert [json.loads(line)["event"] for line in res.stderr.splitlines()] == ["reconcile pass", "library info"]


def test_daemons_take_their_log_level_from_the_environment():
    """SHOAL_LOG_LEVEL reaches the daemons a lab starts (they inherit its environment): a debug trace of a lab."""
    from click.testing import CliRunner

    from shoal.cli.main import main

    res = CliRunner().invoke(main, ["worker", "--join", "127.0.0.1:1", "--token", "t"], env={"SHOAL_LOG_LEVEL": "loud"})
    assert res.exit_code == 2 and "--log-level" in res.output and "'loud'" in res.output
