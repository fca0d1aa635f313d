"""Small-cell suppression: which aggregate cells the dashboard must not show.

State report cards hide any figure about fewer than N students (a rate of 1 in 3 identifies people in a small
school), and they also hide a second cell wherever a reader could otherwise get the hidden one back by subtracting
the shown cells from a shown total. This module decides both, for any table, from two things only:

- the number of students each cell describes (for a rate: its denominator, the students it is a rate of);
- the groups of cells that add up: a total and its parts (a row with an "all grades" total, a column with a district
  total, a student group and its complement adding up to "all students").

Rule: a cell describing 1 to N-1 students is suppressed (primary). Then, in every group, the suppressed members
(total or parts) must be none or at least two: a group with exactly one gets another one suppressed, the smallest
non-empty part not yet suppressed (or the total, when no part is left). This repeats until no group has exactly one,
because each new suppression can leave another group with exactly one. A cell of 0 students is shown: it describes
nobody.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

DEFAULT_MIN_CELL_SIZE = 10
"""Cells about fewer students than this are suppressed (the common report-card threshold)."""


@dataclass(frozen=True)
class Group(Generic[K]):
    """A total and the cells that add up to it: a reader who sees all but one of them can compute the last."""

    total: K
    parts: tuple[K, ...]


def primary_suppressed(counts: Mapping[K, int], min_cell_size: int) -> set[K]:
    """Cells about 1 to `min_cell_size - 1` students."""
    return {key for key, students in counts.items() if 0 < students < min_cell_size}


def suppress(counts: Mapping[K, int], groups: Iterable[Group[K]], min_cell_size: int) -> frozenset[K]:
    """The cells to hide: the small ones, and the complementary cells that keep them from being computed.

    `counts` maps every shown cell to its number of students; a group's members that are not in `counts` are not
    shown and are ignored (a school without that grade)."""
    hidden = primary_suppressed(counts, min_cell_size)
    shown_groups = [_shown_members(group, counts) for group in groups if group.total in counts]
    changed = True
    while changed:
        changed = False
        for group in shown_groups:
            members = (group.total, *group.parts)
            if sum(1 for key in members if key in hidden) != 1:
                continue
            complement = complementary_cell(group, counts, hidden)
            if complement is not None:
                hidden.add(complement)
                changed = True
    return frozenset(hidden)


def complementary_cell(group: Group[K], counts: Mapping[K, int], hidden: set[K]) -> K | None:
    """The cell to hide next to a group's only hidden one: the smallest non-empty shown part (the least information
    lost), else the total, else an empty part; None when every member is hidden already. Ties go to the smallest key
    as text, so the choice does not depend on the order the warehouse returned the rows in."""
    open_parts = sorted((key for key in group.parts if key not in hidden), key=repr)
    non_empty = [key for key in open_parts if counts[key] > 0]
    if non_empty:
        return min(non_empty, key=lambda key: (counts[key], repr(key)))
    if group.total not in hidden:
        return group.total
    return open_parts[0] if open_parts else None


def _shown_members(group: Group[K], counts: Mapping[K, int]) -> Group[K]:
    return Group(group.total, tuple(key for key in group.parts if key in counts))


def grid_groups(
    rows: Iterable[Hashable], columns: Iterable[Hashable], total_row: Hashable | None, total_column: Hashable | None
) -> list[Group[tuple[Hashable, Hashable]]]:
    """The groups of a table keyed by (row, column) with a total row and/or a total column: every column adds up to
    its cell in the total row, every row to its cell in the total column (the total row's own row included, so the
    grand total is covered both ways)."""
    row_keys = list(rows)
    column_keys = list(columns)
    groups: list[Group[tuple[Hashable, Hashable]]] = []
    all_columns = [*column_keys, *([total_column] if total_column is not None else [])]
    all_rows = [*row_keys, *([total_row] if total_row is not None else [])]
    if total_row is not None:
        for column in all_columns:
            groups.append(Group((total_row, column), tuple((row, column) for row in row_keys)))
    if total_column is not None:
        for row in all_rows:
            groups.append(Group((row, total_column), tuple((row, column) for column in column_keys)))
    return groups
