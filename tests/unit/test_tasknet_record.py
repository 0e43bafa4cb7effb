"""A task's wiring record names its node-side veths when they came from the pool (no kernel involved).

A pooled namespace's veths keep the pool's names for the task's life (prewire.py); the record's
``veths.json`` is how rewiring, ``unwire`` and an agent that restarted find them. Without it (a task
wired the slow way, or a record an older agent wrote) the names are ``task_ifname``'s.
"""

from __future__ import annotations

from pathlib import Path

from shoal.worker.network.topology import NodeNetwork
from shoal.worker.tasknet import VETHS, TaskWiring


def wiring(tmp_path: Path) -> TaskWiring:
    return TaskWiring(tmp_path, NodeNetwork(None))  # nothing here touches the node


def test_a_recorded_task_reads_its_veth_names_back(tmp_path: Path) -> None:
    w = wiring(tmp_path)
    w.path("t1").mkdir()
    (w.path("t1") / VETHS).write_text('{"": "shpaaaaaaaaaaa", "web": "shpbbbbbbbbbbb"}')
    assert w.host_names("t1") == {"": "shpaaaaaaaaaaa", "web": "shpbbbbbbbbbbb"}


def test_no_record_or_a_broken_one_means_the_task_names(tmp_path: Path) -> None:
    w = wiring(tmp_path)
    assert w.host_names("gone") == {}
    w.path("t2").mkdir()
    (w.path("t2") / VETHS).write_text("{not json")
    assert w.host_names("t2") == {}
    (w.path("t2") / VETHS).write_text('["a list"]')
    assert w.host_names("t2") == {}
