"""Request windows come from the terms of each academic year: one per session type, summer included."""

from __future__ import annotations

from datetime import date

from illuminate_sync.sources.illuminate.windows import (
    SessionWindow,
    academic_year_of,
    attendance_dates,
    session_windows,
    window_params,
)


def test_academic_years_are_named_by_their_ending_year() -> None:
    assert academic_year_of(date(2026, 11, 27)) == 2027
    assert academic_year_of(date(2026, 6, 10)) == 2026
    assert academic_year_of(date(2026, 8, 1)) == 2027


def test_each_session_type_spans_its_terms_across_sites() -> None:
    terms = [
        {
            "academic_year": 2027,
            "session_type": "Normal",
            "start_date": date(2026, 8, 17),
            "end_date": date(2027, 1, 15),
        },
        {
            "academic_year": 2027,
            "session_type": "Normal",
            "start_date": date(2026, 8, 12),
            "end_date": date(2027, 6, 11),
        },
        {
            "academic_year": 2027,
            "session_type": "Summer",
            "start_date": date(2027, 6, 21),
            "end_date": date(2027, 7, 23),
        },
        {
            "academic_year": 2026,
            "session_type": "Normal",
            "start_date": date(2025, 8, 12),
            "end_date": date(2026, 6, 11),
        },
    ]
    assert session_windows(terms, 2027) == [
        SessionWindow(2027, date(2026, 8, 12), date(2027, 6, 11), "Normal"),
        SessionWindow(2027, date(2027, 6, 21), date(2027, 7, 23), "Summer"),
    ]


def test_a_year_without_terms_falls_back_to_the_whole_academic_year() -> None:
    assert session_windows([], 2025) == [SessionWindow(2025, date(2024, 8, 1), date(2025, 7, 31), "Normal")]


def test_gradebook_windows_ask_as_of_the_last_session_day_or_today() -> None:
    window = SessionWindow(2027, date(2026, 8, 12), date(2027, 6, 11), "Normal")
    assert window_params("as_of_date", window, date(2026, 11, 27)) == {"date": "2026-11-27", "session_type": "Normal"}
    assert window_params("as_of_date", window, date(2027, 7, 1)) == {"date": "2027-06-11", "session_type": "Normal"}
    summer = SessionWindow(2027, date(2027, 6, 21), date(2027, 7, 23), "Summer")
    assert window_params("as_of_date", summer, date(2026, 11, 27)) is None


def test_attendance_dates_are_in_session_weekdays_up_to_today() -> None:
    window = SessionWindow(2027, date(2026, 11, 20), date(2027, 6, 11), "Normal")
    assert attendance_dates([window], date(2026, 11, 19), date(2026, 11, 25), include_weekends=False) == [
        date(2026, 11, 20),
        date(2026, 11, 23),
        date(2026, 11, 24),
        date(2026, 11, 25),
    ]
