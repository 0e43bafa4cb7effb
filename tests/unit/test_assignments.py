"""What a full or incremental assignment set asks of the agent (pure diffing), and what adoption does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.worker.assignments import diff


def task(tid: str, desired: int = pb.RUNNING) -> pb.Task:
    return pb.Task(id=tid, desired_state=desired)


def full(*tids: str) -> dpb.Assignments:
    return dpb.Assignments(full=True, updated=[task(t) for t in tids])


def incremental(updated: tuple[str, ...] = (), removed: tuple[str, ...] = ()) -> dpb.Assignments:
    return dpb.Assignments(full=False, updated=[task(t) for t in updated], removed=list(removed))


def ids(tasks: list[pb.Task]) -> list[str]:
    return [t.id for t in tasks]


# ---- diff ------------------------------------------------------------------------------------------


def test_a_first_full_set_starts_every_task():
    c = diff([], full("a", "b"))
    assert ids(c.start) == ["a", "b"] and not c.update and not c.remove


def test_a_full_set_drops_what_it_does_not_list_and_updates_what_it_does():
    c = diff(["a", "b", "c"], full("b", "d"))
    assert c.remove == ["a", "c"] and ids(c.update) == ["b"] and ids(c.start) == ["d"]


def test_an_empty_full_set_drops_everything():
    c = diff(["a", "b"], full())
    assert sorted(c.remove) == ["a", "b"] and not c.start and not c.update


def test_an_incremental_set_keeps_what_it_does_not_mention():
    c = diff(["a", "b"], incremental(updated=("c",)))
    assert ids(c.start) == ["c"] and not c.remove and not c.update


def test_an_incremental_set_updates_held_tasks_and_removes_named_ones():
    c = diff(["a", "b"], incremental(updated=("a",), removed=("b",)))
    assert ids(c.update) == ["a"] and c.remove == ["b"]


def test_removing_a_task_the_agent_does_not_hold_is_nothing_to_do():
    assert diff(["a"], incremental(removed=("zz",))).remove == []


def test_a_removal_wins_over_a_listing_in_the_same_set():
    c = diff(["a"], incremental(updated=("a", "b"), removed=("a", "b")))
    assert c.remove == ["a"] and not c.start and not c.update


def test_a_full_set_that_also_names_a_removal_removes_it_once():
    c = diff(["a", "b"], dpb.Assignments(full=True, updated=[task("b")], removed=["a"]))
    assert c.remove == ["a"] and ids(c.update) == ["b"]


def test_a_task_listed_twice_is_started_once_then_updated():
    a = dpb.Assignments(full=False, updated=[task("a", pb.RUNNING), task("a", pb.SHUTDOWN)])
    c = diff([], a)
    assert ids(c.start) == ["a"] and c.update[0].desired_state == pb.SHUTDOWN


def test_a_newer_version_carries_the_new_desired_state():
    a = dpb.Assignments(full=False, updated=[task("a", pb.SHUTDOWN)])
    assert diff(["a"], a).update[0].desired_state == pb.SHUTDOWN


TIDS = st.sampled_from([f"t{i}" for i in range(8)])
SETS = st.builds(
    lambda is_full, upd, rem: dpb.Assignments(full=is_full, updated=[task(t) for t in upd], removed=rem),
    st.booleans(),
    st.lists(TIDS, max_size=6),
    st.lists(TIDS, max_size=4),
)


@settings(max_examples=100)
@given(sets=st.lists(SETS, min_size=1, max_size=8))
def test_held_tasks_follow_the_sets_the_manager_sent(sets):
    """Applying diffs in turn keeps exactly what a model of the sets says the node should hold."""
    held: list[str] = []
    for a in sets:
        c = diff(held, a)
        assert len(set(c.remove)) == len(c.remove) and set(c.remove) <= set(held), "each removal once, only of held tasks"
        assert not set(ids(c.start)) & set(held), "a held task is updated, never started twice"
        assert len(set(ids(c.start))) == len(c.start)
        held = [t for t in held if t not in c.remove] + ids(c.start)
        named = set(a.removed)
        listed = {t.id for t in a.updated} - named
        if a.full:
            assert set(held) == listed
        else:
            assert listed <= set(held) and not named & set(held)
