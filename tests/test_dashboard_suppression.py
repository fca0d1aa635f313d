"""The dashboard's small-cell suppression (pipelines/dashboard/suppression.py), on hand-made tables."""

from __future__ import annotations

import itertools

from illuminate_sync.pipelines.dashboard.suppression import Group, grid_groups, primary_suppressed, suppress


def test_small_cells_are_suppressed_and_empty_cells_shown() -> None:
    counts = {"a": 0, "b": 1, "c": 9, "d": 10, "e": 250}
    assert primary_suppressed(counts, 10) == {"b", "c"}
    assert suppress(counts, [], 10) == {"b", "c"}
    assert suppress(counts, [], 1) == set()


def test_a_lone_suppressed_part_takes_the_smallest_other_part_with_it() -> None:
    # total 73 = 3 + 40 + 30: showing 40 and 30 would give the 3 away
    counts = {"total": 73, "a": 3, "b": 40, "c": 30}
    assert suppress(counts, [Group("total", ("a", "b", "c"))], 10) == {"a", "c"}


def test_two_suppressed_parts_need_no_complement() -> None:
    counts = {"total": 50, "a": 3, "b": 4, "c": 43}
    assert suppress(counts, [Group("total", ("a", "b", "c"))], 10) == {"a", "b"}


def test_empty_parts_are_not_chosen_as_the_complement() -> None:
    counts = {"total": 35, "a": 5, "b": 0, "c": 30}
    assert suppress(counts, [Group("total", ("a", "b", "c"))], 10) == {"a", "c"}


def test_a_suppressed_total_cannot_be_added_up_from_its_parts() -> None:
    # the total is hidden by another group; its parts alone would add up to it
    counts = {"total": 40, "a": 20, "b": 20, "grand": 45, "other": 5}
    groups = [Group("total", ("a", "b")), Group("grand", ("total", "other"))]
    hidden = suppress(counts, groups, 10)
    assert {"other", "total"} <= hidden
    assert hidden & {"a", "b"}


def test_members_not_shown_are_ignored() -> None:
    counts = {"total": 60, "a": 4, "c": 56}  # part b is not a cell of the table (a school without that grade)
    assert suppress(counts, [Group("total", ("a", "b", "c"))], 10) == {"a", "c"}
    assert suppress({"a": 4}, [Group("total", ("a",))], 10) == {"a"}  # no total shown: nothing to subtract from


def test_a_grid_with_totals_never_leaves_a_row_or_column_with_one_hidden_cell() -> None:
    schools, grades = ["s1", "s2", "s3"], ["K", "1", "2"]
    counts_by_cell = {("s1", "K"): 3, ("s1", "1"): 25, ("s1", "2"): 30, ("s2", "K"): 20, ("s2", "1"): 22}
    counts_by_cell |= {("s2", "2"): 21, ("s3", "K"): 40, ("s3", "1"): 41, ("s3", "2"): 42}
    counts = dict(counts_by_cell)
    for school in schools:
        counts[(school, "all")] = sum(counts_by_cell[(school, grade)] for grade in grades)
    for grade in [*grades, "all"]:
        counts[("district", grade)] = sum(counts[(school, grade)] for school in schools)
    groups = grid_groups(schools, grades, "district", "all")
    hidden = suppress(counts, groups, 10)
    assert ("s1", "K") in hidden
    for group in groups:
        assert sum(1 for key in (group.total, *group.parts) if key in hidden) != 1, group
    # the complement is the smallest shown cell of the row and of the column
    assert ("s2", "K") in hidden and ("s1", "1") in hidden


def test_exhaustively_no_hidden_cell_can_be_solved_from_one_group() -> None:
    """Every 2x2 table with totals and counts from a small set: no row or column keeps exactly one hidden cell."""
    values = [0, 2, 9, 10, 30]
    for a, b, c, d in itertools.product(values, repeat=4):
        cells = {("r1", "c1"): a, ("r1", "c2"): b, ("r2", "c1"): c, ("r2", "c2"): d}
        counts = dict(cells)
        for row in ("r1", "r2"):
            counts[(row, "all")] = counts[(row, "c1")] + counts[(row, "c2")]
        for column in ("c1", "c2", "all"):
            counts[("all", column)] = counts[("r1", column)] + counts[("r2", column)]
        groups = grid_groups(["r1", "r2"], ["c1", "c2"], "all", "all")
        hidden = suppress(counts, groups, 10)
        assert {key for key, n in counts.items() if 0 < n < 10} <= hidden
        for group in groups:
            members = (group.total, *group.parts)
            assert sum(1 for key in members if key in hidden) != 1, (counts, hidden, group)


def test_the_complement_does_not_depend_on_the_order_of_the_parts() -> None:
    """Two equal candidates: the same one is chosen whichever order the warehouse returned the rows in."""
    counts = {"total": 43, "a": 3, "b": 20, "c": 20}
    chosen = {suppress(counts, [Group("total", parts)], 10) for parts in itertools.permutations(("a", "b", "c"))}
    assert chosen == {frozenset({"a", "b"})}
