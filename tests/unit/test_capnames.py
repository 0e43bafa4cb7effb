"""Capability names as docker's flags spell them (shoal.capnames), shared by the manager and the runtime."""

from __future__ import annotations

import pytest

from shoal import capnames
from shoal.runtime import caps


@pytest.mark.parametrize(("name", "full"), [("NET_ADMIN", "CAP_NET_ADMIN"), ("cap_chown", "CAP_CHOWN"), (" sys_time ", "CAP_SYS_TIME"),
                                            ("all", "ALL"), ("BPF", "CAP_BPF"), ("CHECKPOINT_RESTORE", "CAP_CHECKPOINT_RESTORE")])
def test_names_normalize(name: str, full: str) -> None:
    assert capnames.normalize(name) == full


@pytest.mark.parametrize("name", ["", "FLY", "CAP_", "NET ADMIN", "CAP_CAP_CHOWN"])
def test_unknown_names_are_refused_by_name(name: str) -> None:
    with pytest.raises(ValueError, match="unknown capability"):
        capnames.normalize(name)


def test_the_table_is_linuxs_numbering_and_the_runtime_uses_it() -> None:
    assert caps.CAP_NUMBERS is capnames.CAP_NUMBERS
    assert sorted(capnames.CAP_NUMBERS.values()) == list(range(41))
    assert caps.adjust(["PERFMON"], []) & (1 << 38)
    assert caps.adjust(["ALL"], []) == (1 << 41) - 1
