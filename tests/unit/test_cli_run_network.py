"""``shoal run --network``: the flags it refuses before any work, and what it asks the node's agent."""

from __future__ import annotations

from click.testing import CliRunner

from shoal.cli.main import main
from shoal.cli.run import _join_network, build_config


def test_network_with_a_host_published_port_is_refused_before_anything_runs(tmp_path):
    res = CliRunner().invoke(main, ["run", "--root", str(tmp_path), "--network", "apps", "-p", "8080:80", "host", "true"])
    assert res.exit_code == 2 and "not with --network" in res.output
    assert not any(tmp_path.iterdir())  # no runtime state was made


def test_the_container_joins_the_namespace_and_resolver_the_agent_wired(monkeypatch):
    asked = []

    async def agent(request, address=None, timeout=60.0):
        asked.append(request)
        return {"attachment": "att-1", "netns": "/x/att-1/netns", "resolv_conf": "/x/att-1/resolv.conf",
                "address": "10.66.2.7/24", "network": "apps"}

    monkeypatch.setattr("shoal.agentapi.call", agent)
    cfg = build_config("host", ("true",), {}, "c" * 64, "probe", {})
    assert _join_network(cfg, "apps") == "att-1"  # blocking: run has no event loop of its own
    assert asked == [{"op": "attach", "network": "apps", "container_id": "c" * 64, "container_name": "probe"}]
    assert cfg.netns_path == "/x/att-1/netns"
    assert cfg.mounts[-1] == {"type": "bind", "source": "/x/att-1/resolv.conf", "target": "/etc/resolv.conf", "readonly": True}


def test_without_an_agent_on_the_host_the_command_fails_with_one_clear_error(monkeypatch):
    import click
    import pytest

    from shoal import agentapi

    async def absent(request, address=None, timeout=60.0):
        raise agentapi.AgentApiError("no shoal node agent on this host")

    monkeypatch.setattr("shoal.agentapi.call", absent)
    with pytest.raises(click.ClickException, match="no shoal node agent on this host"):
        _join_network(build_config("host", ("true",), {}, "c" * 64, "probe", {}), "apps")
