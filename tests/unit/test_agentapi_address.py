"""Which abstract socket a node's agent serves and ``shoal run --network`` calls: ``shoal-agent``, unless
``$SHOAL_AGENT_SOCKET`` names another (nodes, or tests, that share one network namespace)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoal import agentapi
from shoal.worker import localapi
from shoal.worker.netagent import NetAgent


async def _echo(req: dict) -> dict:
    return {"op": req.get("op")}


def test_the_default_name_and_the_one_the_environment_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(agentapi.ENV, raising=False)
    assert agentapi.default_address() == agentapi.ADDRESS == "\0shoal-agent"
    monkeypatch.setenv(agentapi.ENV, "shoal-agent-node2")
    assert agentapi.default_address() == "\0shoal-agent-node2"
    monkeypatch.setenv(agentapi.ENV, "   ")
    assert agentapi.default_address() == agentapi.ADDRESS, "a blank name is no name"


def test_an_agent_serves_the_name_of_its_environment_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    monkeypatch.setenv(agentapi.ENV, "shoal-agent-node2")
    assert NetAgent(tmp_path / "net").local_api == "\0shoal-agent-node2"
    assert NetAgent(tmp_path / "net", local_api="\0elsewhere").local_api == "\0elsewhere"
    assert NetAgent(tmp_path / "net", local_api=None).local_api is None


async def test_a_node_and_a_cli_given_the_same_name_meet_and_no_one_else_answers_there(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(agentapi.ENV, f"shoal-agent-test-env-{os.getpid()}")
    server = await localapi.serve(_echo)
    assert server is not None
    try:
        assert await agentapi.call({"op": "ping"}) == {"op": "ping"}
        assert await localapi.serve(_echo) is None, "a second agent under the same name is refused"
        monkeypatch.setenv(agentapi.ENV, f"shoal-agent-test-other-{os.getpid()}")
        with pytest.raises(agentapi.AgentApiError, match="no shoal node agent on this host"):
            await agentapi.call({"op": "ping"})
    finally:
        server.close()
