"""IPAM: node subnets, overlay networks, task addresses, VIPs and VXLAN ids (pure logic)."""

from __future__ import annotations

import contextlib
import ipaddress
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.manager.ipam import (
    AddressSpace,
    IpamError,
    SubnetPool,
    parse_network,
)

A = ipaddress.IPv4Address


# -- parse_network ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cidr", "words"),
    [
        ("10.0.0.1/24", "host bits"),
        ("fd00::/64", "only IPv4"),
        ("banana", "invalid subnet 'banana'"),
        ("10.0.0.0/30", "at most /29"),
        ("10.0.0.0/33", "invalid subnet"),
    ],
)
def test_bad_subnets_are_refused_with_one_clear_message(cidr, words):
    with pytest.raises(IpamError, match="invalid subnet") as e:
        parse_network(cidr)
    assert words in str(e.value)


def test_a_valid_subnet_parses():
    assert parse_network("10.1.2.0/24") == ipaddress.IPv4Network("10.1.2.0/24")


# -- AddressSpace -------------------------------------------------------------------------------
def test_the_gateway_network_and_broadcast_are_never_handed_out():
    space = AddressSpace.of("10.9.0.0/29")  # 8 addresses: .0 net, .1 gateway, .7 broadcast
    got = {space.allocate(f"t{i}") for i in range(space.capacity)}
    assert got == {A(f"10.9.0.{i}") for i in range(2, 7)}
    assert space.gateway == A("10.9.0.1")
    assert space.capacity == 5


def test_a_full_subnet_refuses_with_its_name():
    space = AddressSpace.of("10.9.0.0/29")
    for i in range(5):
        space.allocate(f"t{i}")
    with pytest.raises(IpamError, match=r"subnet 10\.9\.0\.0/29 has no free address left"):
        space.allocate("one-too-many")


def test_allocation_is_idempotent_per_owner():
    space = AddressSpace.of("10.9.0.0/24")
    first = space.allocate("task-a")
    assert space.allocate("task-a") == first
    assert len(space.owners) == 1


def test_a_released_address_is_the_last_to_be_reused():
    space = AddressSpace.of("10.9.0.0/29")
    a = space.allocate("a")
    space.allocate("b")
    space.release("a")
    # the free addresses after the cursor come first
    nxt = [space.allocate(o) for o in ("c", "d", "e")]
    assert a not in nxt
    assert space.allocate("f") == a  # only once nothing else is left


def test_a_released_address_is_reused_once_the_subnet_is_otherwise_full():
    space = AddressSpace.of("10.9.0.0/29")
    held = [space.allocate(f"t{i}") for i in range(5)]
    assert space.release("t2") == held[2]
    assert space.allocate("new") == held[2]


def test_releasing_twice_or_an_unknown_owner_is_harmless():
    space = AddressSpace.of("10.9.0.0/24")
    space.allocate("a")
    assert space.release("a") is not None
    assert space.release("a") is None
    assert space.release("nobody") is None


def test_claim_restores_a_known_address_and_refuses_conflicts():
    space = AddressSpace.of("10.9.0.0/24")
    assert space.claim("a", "10.9.0.50") == A("10.9.0.50")
    assert space.claim("a", "10.9.0.50") == A("10.9.0.50")  # idempotent
    with pytest.raises(IpamError, match="already held by a"):
        space.claim("b", "10.9.0.50")
    with pytest.raises(IpamError, match="a already holds 10.9.0.50"):
        space.claim("a", "10.9.0.51")
    with pytest.raises(IpamError, match="not in subnet"):
        space.claim("c", "10.8.0.5")
    for reserved in ("10.9.0.0", "10.9.0.1", "10.9.0.255"):
        with pytest.raises(IpamError, match="reserved"):
            space.claim("c", reserved)
    assert space.lookup("c") is None


def test_allocation_skips_claimed_addresses():
    space = AddressSpace.of("10.9.0.0/29")
    space.claim("x", "10.9.0.2")
    assert space.allocate("y") == A("10.9.0.3")


def test_address_space_round_trips_through_json():
    space = AddressSpace.of("10.9.0.0/24")
    for o in ("a", "b", "c"):
        space.allocate(o)
    space.release("b")
    back = AddressSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert back == space
    assert back.allocate("d") == space.allocate("d")  # the cursor came along


def test_corrupt_address_data_is_refused():
    with pytest.raises(IpamError, match="not in subnet"):
        AddressSpace.from_dict({"subnet": "10.9.0.0/24", "owners": {"10.1.1.1": "a"}})
    with pytest.raises(IpamError, match="already holds"):
        AddressSpace.from_dict({"subnet": "10.9.0.0/24", "owners": {"10.9.0.2": "a", "10.9.0.3": "a"}})


# -- SubnetPool ---------------------------------------------------------------------------------
def test_pool_hands_out_the_lowest_free_blocks_in_order():
    pool = SubnetPool.of("10.210.0.0/16")
    got = [str(pool.allocate(f"node/n{i}")) for i in range(3)]
    assert got == ["10.210.0.0/24", "10.210.1.0/24", "10.210.2.0/24"]


def test_pool_allocation_is_idempotent_per_owner():
    pool = SubnetPool.of("10.210.0.0/16")
    assert pool.allocate("node/a") == pool.allocate("node/a")
    assert len(pool.taken) == 1


def test_pool_skips_a_user_subnet_in_the_way_with_the_right_alignment():
    pool = SubnetPool.of("10.210.0.0/16")
    pool.claim("network/big", "10.210.0.0/22")
    assert str(pool.allocate("node/a")) == "10.210.4.0/24"
    pool.claim("network/odd", "10.210.5.8/29")
    assert str(pool.allocate("node/b")) == "10.210.6.0/24"
    assert str(pool.allocate("net/c", 29)) == "10.210.5.0/29"


def test_pool_exhaustion_names_the_pool():
    pool = SubnetPool.of("10.210.0.0/23")
    pool.allocate("a")
    pool.allocate("b")
    with pytest.raises(IpamError, match=r"10\.210\.0\.0/23 has no free /24 subnet left \(2 taken\)"):
        pool.allocate("c")


def test_pool_refuses_a_prefix_that_does_not_fit():
    pool = SubnetPool.of("10.210.0.0/16")
    with pytest.raises(IpamError, match="cannot carve /8"):
        pool.allocate("a", 8)


def test_an_overlapping_user_subnet_is_refused_naming_the_holder():
    pool = SubnetPool.of("10.210.0.0/16")
    pool.claim("network/web", "10.50.0.0/16")
    with pytest.raises(IpamError, match=r"subnet 10\.50\.3\.0/24 overlaps 10\.50\.0\.0/16 of network 'web'"):
        pool.claim("network/db", "10.50.3.0/24")
    with pytest.raises(IpamError, match="overlaps 10.50.0.0/16"):
        pool.claim("network/db", "10.0.0.0/8")
    assert pool.lookup("network/db") is None


def test_pool_claim_is_idempotent_but_refuses_a_second_subnet():
    pool = SubnetPool.of("10.210.0.0/16")
    pool.claim("network/a", "10.1.0.0/24")
    assert pool.claim("network/a", "10.1.0.0/24") == ipaddress.IPv4Network("10.1.0.0/24")
    with pytest.raises(IpamError, match="network 'a' already has subnet 10.1.0.0/24"):
        pool.claim("network/a", "10.2.0.0/24")


def test_a_released_subnet_is_handed_out_again():
    pool = SubnetPool.of("10.210.0.0/16")
    a = pool.allocate("node/a")
    pool.allocate("node/b")
    assert pool.release("node/a") == a
    assert pool.allocate("node/c") == a
    assert pool.release("node/zzz") is None


def test_pool_round_trips_and_refuses_overlapping_data():
    pool = SubnetPool.of("10.210.0.0/16")
    pool.allocate("node/a")
    pool.claim("network/x", "192.168.7.0/24")
    assert SubnetPool.from_dict(json.loads(json.dumps(pool.to_dict()))) == pool
    bad = {"pool": "10.210.0.0/16", "taken": {"10.210.0.0/24": "node/a", "10.210.0.0/25": "node/b"}}
    with pytest.raises(IpamError, match="overlaps"):
        SubnetPool.from_dict(bad)


def test_allocation_within_a_block_takes_its_lowest_free_address():
    space = AddressSpace.of("10.9.0.0/24")
    block = ipaddress.IPv4Network("10.9.0.192/26")
    assert space.allocate("v1", within=block) == A("10.9.0.192")
    assert space.allocate("v2", within=block) == A("10.9.0.193")
    space.release("v1")
    assert space.allocate("v3", within=block) == A("10.9.0.192")
    assert space.allocate("t", avoid=block) == A("10.9.0.2")


def test_allocation_avoiding_a_block_wraps_around_it():
    space = AddressSpace.of("10.9.0.0/28")  # .2-.14 usable
    block = ipaddress.IPv4Network("10.9.0.8/29")
    got = [space.allocate(f"t{i}", avoid=block) for i in range(6)]
    assert got == [A(f"10.9.0.{i}") for i in range(2, 8)]
    with pytest.raises(IpamError, match="no free address"):
        space.allocate("one-more", avoid=block)
    space.release("t0")
    assert space.allocate("again", avoid=block) == A("10.9.0.2")


def _lowest_free(pool: SubnetPool, prefixlen: int, owner: str) -> ipaddress.IPv4Network | None:
    """The lowest aligned /prefixlen block of the pool that no other owner's subnet overlaps (brute force)."""
    others = [n for n, who in pool.taken.items() if who != owner]
    size = 1 << (32 - prefixlen)
    for start in range(int(pool.pool.network_address), int(pool.pool.broadcast_address) + 1, size):
        block = ipaddress.IPv4Network((start, prefixlen))
        if not any(block.overlaps(n) for n in others):
            return block
    return None


@settings(max_examples=150)
@given(st.lists(st.tuples(st.sampled_from(["alloc", "alloc", "release", "claim"]), st.sampled_from([22, 23, 24, 24, 26, 28]), st.integers(0, 63)), max_size=40))
def test_allocation_is_always_the_lowest_free_block_whatever_came_before(ops):
    """The indexed pool (bisection, a per-size search start) gives what a pass over every block would."""
    pool = SubnetPool.of("10.0.0.0/20")
    owners: list[str] = []
    for i, (op, plen, pick) in enumerate(ops):
        if op == "release" and owners:
            pool.release(owners.pop(pick % len(owners)))
        elif op == "claim":
            with contextlib.suppress(IpamError):
                pool.claim(f"user{i}", str(ipaddress.IPv4Network((0x0A000000 + pick * 64, 26))))
                owners.append(f"user{i}")
        else:
            want = _lowest_free(pool, plen, f"o{i}")
            if want is None:
                with pytest.raises(IpamError, match="no free"):
                    pool.allocate(f"o{i}", plen)
                continue
            assert pool.allocate(f"o{i}", plen) == want
            owners.append(f"o{i}")
        assert SubnetPool.from_dict(pool.to_dict()).taken == pool.taken


def test_a_thousand_node_subnets_come_out_in_order_and_survive_a_round_trip():
    pool = SubnetPool.of("10.128.0.0/9")
    nets = [pool.allocate(f"node/{i}") for i in range(1000)]
    assert nets[0] == ipaddress.IPv4Network("10.128.0.0/24") and nets[-1] == ipaddress.IPv4Network("10.131.231.0/24")
    again = SubnetPool.from_dict(pool.to_dict())
    assert again.taken == pool.taken and again.lookup("node/999") == nets[-1]
    again.release("node/3")
    assert again.allocate("late") == ipaddress.IPv4Network("10.128.3.0/24"), "a freed block is the lowest free again"
