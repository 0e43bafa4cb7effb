"""bench/rsttrace.py: the resets a lab's hosts traced, read back from ``nft monitor trace`` lines.

The lines below are as nft 1.0.6 prints them (a reset a task sent, traced in the node that routes it;
the rule and policy lines of the same packet, which are not packets), each stamped by the reader.
"""

from __future__ import annotations

from bench import rsttrace

TASK_RST = (
    '1796222476.396278 trace id 675064b0 ip shoal-bench-rst pre packet: iif "shoal0" ether saddr 0a:1b:2c:3d:4e:5f '
    "ether daddr 02:53:0a:d2:41:01 ip saddr 10.210.65.20 ip daddr 172.30.1.2 ip dscp cs0 ip ecn not-ect ip ttl 64 "
    "ip id 0 ip length 40 tcp sport 80 tcp dport 45232 tcp flags == 0x14 tcp window 0"
)
RULE = "1796222476.396300 trace id 675064b0 ip shoal-bench-rst pre rule tcp flags & rst == rst meta nftrace set 1 (verdict continue)"
LOOP_RST = (
    "1796222480.000001 trace id 1b88cded ip shoal-bench-rst out packet: oif \"lo\" @ll,0,112 0x800 ip saddr 127.0.0.1 "
    "ip daddr 127.0.0.1 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 0 ip length 40 tcp sport 41953 tcp dport 56812 tcp flags == rst"
)


def test_a_traced_reset_keeps_where_it_was_seen_and_its_addresses_not_the_link_details() -> None:
    (r,) = rsttrace.parse([TASK_RST, RULE], "worker1")
    assert (r.t, r.host, r.trace_id, r.chain) == (1796222476.396278, "worker1", "675064b0", "shoal-bench-rst pre")
    assert r.packet == ('iif "shoal0" ip saddr 10.210.65.20 ip daddr 172.30.1.2 tcp sport 80 tcp dport 45232 '
                        "tcp flags == 0x14 tcp window 0")


def test_resets_are_those_of_the_window_from_every_host_in_time_order() -> None:
    files = {"worker1": [TASK_RST, RULE, "garbage", ""], "manager1": [LOOP_RST]}
    assert [r.host for r in rsttrace.resets(files, 1796222470.0, 1796222490.0)] == ["worker1", "manager1"]
    assert [r.host for r in rsttrace.resets(files, 1796222477.0, 1796222490.0)] == ["manager1"]
    assert rsttrace.resets(files, 0.0, 1.0) == []
