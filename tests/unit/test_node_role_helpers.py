"""Where a promoted worker's manager lives: its data dir and the address the managers see it at."""

from __future__ import annotations

from pathlib import Path

from shoal.node.role import default_listen, manager_data_dir


def test_a_promoted_workers_manager_keeps_its_state_inside_the_workers_data_dir():
    assert manager_data_dir(Path("/var/lib/shoal/worker")) == Path("/var/lib/shoal/worker/manager")


def test_the_listen_address_is_this_nodes_address_towards_the_managers():
    assert default_listen("127.0.0.1:4242") == "127.0.0.1:4242"
    assert default_listen("127.0.0.1:4242", port=5000) == "127.0.0.1:5000"
