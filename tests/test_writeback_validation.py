"""Write-back validation without HTTP: which rows are sent, which are listed with a reason, and the payload digest."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from illuminate_sync.pipelines.writeback import (
    Target,
    UsageError,
    batch_ranges,
    payload_digest,
    prepare_repository,
    prepare_scores,
)

SCORES = Target("assessment_id", "1001")
REPOSITORY = Target("repository_id", "1")


def reasons(prepared: Any) -> dict[int, str]:
    return {problem.row: problem.reason for problem in prepared.problems}


def test_valid_score_rows_become_the_documented_payload() -> None:
    columns = ["local_student_id", "responses", "version", "text_responses", "date_taken"]
    rows = [
        (12345, ["A", "B", "C", "C", 3], None, None, None),
        ("12346", ["C", "C", "B", "A", "0"], 2, None, date(2026, 11, 24)),
        (12347.0, ["A", "B", "C", "C", None], Decimal(1), ["", "", "", "", "apel"], "2026-11-25"),
    ]
    prepared = prepare_scores(SCORES, columns, rows)
    assert prepared.problems == []
    assert prepared.items == [
        {"local_student_id": 12345, "responses": ["A", "B", "C", "C", 3]},
        {"local_student_id": "12346", "version": 2, "responses": ["C", "C", "B", "A", "0"], "date_taken": "2026-11-24"},
        {
            "local_student_id": 12347,
            "version": 1,
            "responses": ["A", "B", "C", "C", ""],
            "text_responses": ["", "", "", "", "apel"],
            "date_taken": "2026-11-25",
        },
    ]
    assert prepared.row_numbers == [1, 2, 3]


def test_invalid_score_rows_are_listed_with_the_reason_and_not_sent() -> None:
    columns = ["LOCAL_STUDENT_ID", "responses", "version", "text_responses", "date_taken"]
    rows = [
        (None, ["A"], None, None, None),  # 1 missing student
        ("  ", ["A"], None, None, None),  # 2 blank student
        ("7", [], None, None, None),  # 3 empty responses
        ("8", None, None, None, None),  # 4 no responses
        ("9", ["A"], None, None, "2026-13-01"),  # 5 not a date
        ("10", ["A"], None, None, "11/24/2026"),  # 6 not ISO
        ("11", ["A"], None, None, datetime(2026, 11, 24, 8, 30)),  # 7 a timestamp
        ("12", ["A"], 0, None, None),  # 8 version 0
        ("13", ["A", "B"], None, ["x"], None),  # 9 text_responses of another length
        ("14", "A,B", None, None, None),  # 10 responses not a list
        ("15", ["A", 2.5], None, None, None),  # 11 not a whole rubric score
        ("16", '["A", "B"]', None, None, "2026-11-24"),  # 12 JSON text of a list: valid
        ("16", ["C", "D"], None, None, "2026-11-24"),  # 13 same student and date as row 12
        (True, ["A"], None, None, None),  # 14 a boolean id
    ]
    prepared = prepare_scores(SCORES, columns, rows)
    found = reasons(prepared)
    assert sorted(found) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14]
    assert found[1] == found[2] == "missing student id"
    assert found[3] == "empty responses"
    assert found[4] == "missing responses"
    assert "not a date" in found[5] and "YYYY-MM-DD" in found[6] and "cast it to DATE" in found[7]
    assert "version" in found[8]
    assert "text_responses has 1 items but responses has 2" in found[9]
    assert "not a list" in found[10]
    assert "2.5" in found[11]
    assert "row 12" in found[13]
    assert prepared.items == [{"local_student_id": "16", "responses": ["A", "B"], "date_taken": "2026-11-24"}]
    assert prepared.row_numbers == [12]
    assert [p.render("local_student_id") for p in prepared.problems][2] == "row 3 (local_student_id 7): empty responses"


@pytest.mark.parametrize(
    ("columns", "needle"),
    [
        (["local_student_id"], "'responses'"),
        (["responses"], "'local_student_id'"),
        (["local_student_id", "responses", "score"], "'score'"),
        (["local_student_id", "responses", "Responses"], "two columns"),
    ],
)
def test_score_columns_are_checked_before_any_row(columns: list[str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        prepare_scores(SCORES, columns, [])


def test_repository_rows() -> None:
    columns = ["student_id", "field_score", "field_comments", "field_date"]
    rows = [
        (12345, Decimal("3.5"), "needs work", date(2026, 11, 24)),  # 1
        (None, 2, "x", None),  # 2 missing student
        (12346, None, None, None),  # 3 nothing to store
        (12347, math.nan, None, None),  # 4 not a number
        (12348, [1, 2], None, None),  # 5 a list
        ("12349", 2.0, None, None),  # 6
    ]
    prepared = prepare_repository(REPOSITORY, columns, rows)
    assert prepared.items == [
        {"student_id": 12345, "field_score": "3.5", "field_comments": "needs work", "field_date": "2026-11-24"},
        {"student_id": "12349", "field_score": 2.0, "field_comments": None, "field_date": None},
    ]
    found = reasons(prepared)
    assert sorted(found) == [2, 3, 4, 5]
    assert found[2] == "missing student id" and "NULL" in found[3] and "nan" in found[4] and "list" in found[5]


@pytest.mark.parametrize(
    ("columns", "needle"),
    [
        (["field_score"], "'student_id'"),
        (["student_id"], "no field_"),
        (["student_id", "field_score", "comments"], "'comments'"),
    ],
)
def test_repository_columns_are_checked(columns: list[str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        prepare_repository(REPOSITORY, columns, [])


def test_digest_covers_payload_and_target() -> None:
    items = [{"local_student_id": 1, "responses": ["A"]}]
    digest = payload_digest(SCORES, items)
    assert digest == payload_digest(Target("assessment_id", "1001"), [{"responses": ["A"], "local_student_id": 1}])
    assert digest != payload_digest(Target("assessment_id", "1002"), items)
    assert digest != payload_digest(Target("local_assessment_id", "1001"), items)
    assert digest != payload_digest(SCORES, [{"local_student_id": 1, "responses": ["B"]}])
    assert len(digest) == 64


def test_batch_ranges_split_contiguous_runs() -> None:
    assert batch_ranges(list(range(5)), 2) == [(0, 2), (2, 4), (4, 5)]
    assert batch_ranges([0, 1, 4, 5, 6], 2) == [(0, 2), (4, 6), (6, 7)]
    assert batch_ranges([], 500) == []


def test_target_paths() -> None:
    assert Target("assessment_id", "12").path == "Assessment/12/Scores/"
    assert Target("local_assessment_id", "LA 1/2").path == "Assessment/local_assessment_id/LA%201%2F2/Scores/"
    assert Target("repository_id", "3").path == "Repository/3/Data/"
    assert Target("local_repository_id", "abc123").path == "Repository/local_repository_id/abc123/Data/"
