"""Coalescing rules of DESIGN §4, example by example and as properties."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from astara.core.coalesce import MACHINE_ACTIONS, coalesce, coalesce_all, merge
from astara.core.events import Action

C, R, U, D, P, E = (
    Action.CREATE,
    Action.READ,
    Action.UPDATE,
    Action.DELETE,
    Action.POLL,
    Action.REBUILD,
)


def test_delete_anywhere_wins_and_empties_the_queue():
    pending = [C, U, P, D, E, U]
    assert coalesce(pending) is D
    assert pending == []


def test_rebuild_absorbs_create_and_update_in_either_order():
    assert coalesce_all([U, E, C]) == [E]
    assert coalesce_all([E, U, C, U]) == [E]


def test_create_absorbs_update():
    assert coalesce_all([U, C]) == [C]
    assert coalesce_all([C, U, U]) == [C]


def test_polls_collapse_into_any_real_action():
    assert coalesce_all([P, U, P, P]) == [U]
    assert coalesce_all([P, R]) == [R]
    assert coalesce_all([P, P, P]) == [P]


def test_runs_of_one_action_collapse_to_one():
    assert coalesce_all([U] * 50) == [U]
    assert coalesce_all([R, R, R]) == [R]


def test_unmergeable_actions_keep_their_order():
    assert coalesce_all([U, R, U]) == [U, R, U]
    assert coalesce_all([R, C, P, R]) == [R, C, R]


def test_coalesce_takes_only_the_head_and_leaves_the_rest():
    pending = [U, U, R, C]
    assert coalesce(pending) is U
    assert pending == [R, C]
    assert coalesce([]) is None


def test_merge_refuses_unrelated_pairs():
    assert merge(R, U) is None
    assert merge(U, R) is None
    assert merge(P, D) is D


actions = st.lists(st.sampled_from(sorted(MACHINE_ACTIONS)), max_size=30)


@given(actions)
def test_a_delete_in_the_input_is_all_that_runs(queue):
    out = coalesce_all(queue)
    if D in queue:
        assert out == [D]
    else:
        assert D not in out


@given(actions)
def test_no_two_neighbours_of_the_output_could_have_merged(queue):
    out = coalesce_all(queue)
    assert all(merge(a, b) is None for a, b in itertools.pairwise(out))


@given(actions)
def test_poll_survives_only_when_nothing_else_was_asked(queue):
    out = coalesce_all(queue)
    if P in out:
        assert out == [P] and set(queue) == {P}
    assert len(out) <= len(queue)


STRONGER = {U: {U, C, E}, C: {C, E}, E: {E}, R: {R}}


@given(actions)
def test_every_real_action_is_done_by_itself_or_by_a_stronger_one(queue):
    if D in queue:
        return
    out = set(coalesce_all(queue))
    for action in set(queue) - {P}:
        assert STRONGER[action] & out, (action, queue, out)
    assert out - {P} <= set(queue)
