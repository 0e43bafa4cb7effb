"""The stack corpus: realistic stacks load cleanly; each broken file gives exactly the errors it lists.

A broken file lists its expected errors in trailing ``# expect:`` comments (``{dir}`` stands for the
corpus folder), so the file and its expected message are read side by side.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.stack.convert import convert_stack
from shoal.stack.errors import StackError
from shoal.stack.loader import load_stack

CORPUS = Path(__file__).parent / "corpus"
BAD = sorted((CORPUS / "bad").glob("*.yml"))
GOOD_ENV = {"FROM_SHELL": "yes", "API_KEY": "k"}


def expected_errors(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [line.removeprefix("# expect: ").replace("{dir}", str(path.parent)) for line in lines if line.startswith("# expect: ")]


def test_the_corpus_has_forty_broken_files_or_more():
    assert len(BAD) >= 40


def deploy_checks(name: str) -> None:
    """What ``stack deploy`` checks before it sends anything: load, then convert (the manager's rules)."""
    stack = load_stack([name], environ={})
    convert_stack(stack.compose, "corpus", stack.marks)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_broken_file_reports_exactly_its_errors(path, monkeypatch):
    monkeypatch.chdir(path.parent)
    with pytest.raises(StackError) as info:
        deploy_checks(path.name)
    assert [str(p) for p in info.value.problems] == expected_errors(path)


def test_every_error_names_file_line_and_column(monkeypatch):
    monkeypatch.chdir(CORPUS / "bad")
    for path in BAD:
        with pytest.raises(StackError) as info:
            deploy_checks(path.name)
        for problem in info.value.problems:
            assert problem.position is not None, f"{path.name}: {problem}"
            assert problem.position.file == path.name and problem.position.line >= 1 and problem.position.column >= 1


def test_webapp_stack_loads_as_written():
    stack = load_stack([CORPUS / "good" / "webapp.yml"], environ={})
    svc = stack.compose.services
    assert sorted(svc) == ["cache", "db", "web"]
    assert svc["web"].image == "example/shop-web:2.4.1"  # ${WEB_TAG:-2.4.1}
    assert svc["web"].environment["WORKERS"] == "4"
    assert svc["web"].deploy.resources.limits.memory == 256 << 20
    assert svc["web"].deploy.resources.limits.cpus == 500_000_000
    assert svc["web"].depends_on["db"].condition == "service_healthy"
    assert svc["db"].healthcheck.test == ["CMD-SHELL", "pg_isready -U shop"]
    assert svc["cache"].command == ["redis-server", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]
    assert stack.compose.secrets["db_password"].external is True
    assert stack.warnings == ["Ignoring unsupported options: networks.back.internal"]


def test_voting_stack_keeps_its_policies():
    stack = load_stack([CORPUS / "good" / "voting.yml"], environ={})
    vote = stack.compose.services["vote"].deploy
    assert vote.update_config.order == "start-first" and vote.update_config.failure_action == "rollback"
    assert vote.update_config.monitor == 30 * 10**9 and vote.update_config.max_failure_ratio == 0.25
    assert vote.rollback_config.parallelism == 0
    worker = stack.compose.services["worker"].deploy
    assert worker.restart_policy.window == 120 * 10**9 and worker.restart_policy.max_attempts == 3
    assert worker.placement.preferences[0].spread == "node.labels.zone"
    assert worker.labels == {"APP": "VOTING"}
    assert [p.published for p in stack.compose.services["vote"].port_list()] == [5000]


def test_every_supported_key_is_read():
    stack = load_stack([CORPUS / "good" / "everything.yml"], environ=GOOD_ENV)
    api = stack.compose.services["api"]
    assert api.environment == {"LOG_LEVEL": "debug", "MODE": "production", "FROM_SHELL": "yes"}
    assert [(p.published, p.target, p.protocol) for p in api.port_list()] == [
        (None, 8080, "tcp"), (9090, 8080, "tcp"), (9091, 8081, "tcp"), (8443, 443, "tcp"), (5353, 53, "udp"), (7000, 7000, "tcp"),
    ]  # fmt: skip
    assert api.port_list()[-1].mode == "host"
    assert [m.type for m in api.volumes] == ["volume", "bind", "volume", "tmpfs", "volume", "bind"]
    assert api.volumes[1].source == str(CORPUS / "good" / "conf") and api.volumes[1].read_only
    assert api.volumes[3].tmpfs.size == 64 << 20 and api.volumes[3].tmpfs.mode == 0o1777
    assert api.secrets[1].mode == 0o400 and api.configs[1].mode == 0o444
    assert api.deploy.update_config.delay == 90 * 10**9
    assert api.deploy.rollback_config.monitor == 3930 * 10**9 + 20 * 10**6
    assert api.healthcheck.start_interval == 2 * 10**9
    assert api.ulimits["nproc"].soft == api.ulimits["nproc"].hard == 65535
    assert api.logging.options == {"max-size": "10m", "max-file": "3"}
    assert api.depends_on["migrate"].condition == "service_completed_successfully"
    assert api.tmpfs == ["/run"] and api.cap_drop == ["ALL"] and api.init and api.read_only
    assert stack.compose.services["janitor"].command == ["sh", "-c", 'echo "$HOSTNAME sweeping"']
    assert stack.compose.configs["api_conf"].content == "listen = 8080\nmode = strict\n"
    assert stack.compose.secrets["old_style"].name == "legacy_secret"
    assert stack.compose.networks["default"].external and stack.compose.networks["default"].name == "host-net"
    assert stack.warnings == [  # valid compose that shoal accepts and does not apply: named, not dropped
        "Ignoring unsupported options: depends_on.restart (service: api), networks.back.driver_opts, networks.back.internal, "
        "ports.app_protocol (service: api), ports.host_ip (service: api), volumes.bind.create_host_path (service: api), "
        "volumes.data.labels"
    ]
