"""Date parameters: explicit windows, and the trap of the default "today (or nearest in session date)"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator import calendar as cal
from illuminate_sync.simulator.endpoints import ApiError

TODAY = dt.date(2026, 11, 27)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    yield Simulator(SimulatorConfig(students=300, seed=4, today=TODAY))


@pytest.fixture(scope="module")
def summer_sim() -> Iterator[Simulator]:
    yield Simulator(SimulatorConfig(students=300, seed=4, today=dt.date(2026, 7, 10)))


def keys(records: list[dict], *names: str) -> set[tuple]:
    return {tuple(r[n] for n in names) for r in records}


def test_calendar_sessions_and_holidays() -> None:
    normal, summer = cal.normal_session(2027), cal.summer_session(2027)
    assert (normal.start, normal.end) == (dt.date(2026, 8, 17), dt.date(2027, 6, 11))
    assert (summer.start, summer.end) == (dt.date(2027, 6, 28), dt.date(2027, 7, 23))
    days = cal.instructional_days(2027)
    assert dt.date(2026, 11, 26) not in days and dt.date(2026, 11, 27) not in days  # Thanksgiving
    assert dt.date(2026, 12, 25) not in days and dt.date(2026, 11, 24) in days
    assert all(d.weekday() < 5 for d in days) and 180 <= len(days) <= 200
    assert cal.nearest_in_session(TODAY) == TODAY  # a holiday inside the session is still "in session"
    assert cal.nearest_in_session(dt.date(2026, 8, 10)) == dt.date(2026, 8, 17)
    assert cal.nearest_in_session(dt.date(2026, 7, 30)) == dt.date(2026, 7, 24)


@pytest.mark.parametrize(
    "path",
    [
        "Students",
        "Students2",
        "Enrollment",
        "Roster",
        "MasterSchedule",
        "Courses",
        "StudentCounselors",
        "StudentSpecialEd",
    ],
)
def test_no_date_means_the_nearest_in_session_date(sim: Simulator, path: str) -> None:
    assert sim.query(path, {}) == sim.query(path, {"date": TODAY.isoformat()})


def test_default_date_misses_students_who_left_before_today(sim: Simulator) -> None:
    default = keys(sim.query("Students", {}), "student_id", "academic_year")
    year = keys(
        sim.query("Students", {"start_date": "2026-08-01", "end_date": "2027-07-31"}), "student_id", "academic_year"
    )
    both = keys(
        sim.query("Students", {"start_date": "2025-08-01", "end_date": "2027-07-31"}), "student_id", "academic_year"
    )
    assert default < year < both
    assert {y for _, y in both} == {2026, 2027}
    withdrawn = {
        e.student.student_id for e in sim.district.enrollments if e.academic_year == 2027 and e.exit_code == "T200"
    }
    assert withdrawn and not withdrawn & {s for s, _ in default}
    assert withdrawn <= {s for s, _ in year}


def test_in_summer_the_default_answers_only_the_summer_session(summer_sim: Simulator) -> None:
    default = summer_sim.query("Enrollment", {})
    assert default and {r["session_type_id"] for r in default} == {2}
    last_year = summer_sim.query("Enrollment", {"start_date": "2025-08-01", "end_date": "2026-06-30"})
    assert len(last_year) > 5 * len(default)


def test_range_filters_select_overlapping_spans(sim: Simulator) -> None:
    window = ("2026-09-01", "2026-09-30")
    rows = sim.query("Enrollment", {"start_date": window[0], "end_date": window[1]})
    assert rows and all(r["entry_date"] <= window[1] and r["leave_date"] >= window[0] for r in rows)
    rows = sim.query("Roster", {"date": "2026-10-01"})
    assert rows and all(r["entry_date"] <= "2026-10-01" <= r["leave_date"] for r in rows)


def test_terms_default_to_the_current_session(sim: Simulator) -> None:
    terms = sim.query("Terms", {})
    assert terms and {t["academic_year"] for t in terms} == {2027}
    both = sim.query("Terms", {"start_date": "2025-08-01", "end_date": "2027-07-31"})
    assert {t["academic_year"] for t in both} == {2026, 2027}
    assert {t["session_type"] for t in both} == {"Normal", "Summer"}


AGGREGATES_WITH_DATE_DEFAULT = (
    "AssessmentAggregateStudentResponsesGroup",
    "AssessmentAggregateStudentResponsesStandard",
    "PoolAssessmentAggregateStudentResponses",
    "PoolAssessmentAggregateStudentResponsesStandard",
)


def enrolled_local_ids(sim: Simulator, start: dt.date, end: dt.date) -> set[str]:
    return {e.student.local_id for e in sim.district.index().enrollments if e.overlaps(start, end)}


def local_ids_with_results(sim: Simulator) -> set[str]:
    return {r.student.local_id for r in sim.district.results} | {r.student.local_id for r in sim.district.pool_results}


def test_aggregate_defaults_select_the_students_enrolled_on_the_nearest_in_session_date(sim: Simulator) -> None:
    # Group, Standard and both pool endpoints: "date ... Defaults to today (or nearest in session date) if not
    # provided"; the overall aggregate documents no default and returns every student's results.
    current = enrolled_local_ids(sim, TODAY, TODAY)
    departed = local_ids_with_results(sim) - current
    assert departed, "the district should have students who tested and then left"
    overall = {r["local_student_id"] for r in sim.query("AssessmentAggregateStudentResponses", {})}
    assert overall & departed
    for path in AGGREGATES_WITH_DATE_DEFAULT:
        students = {r["local_student_id"] for r in sim.query(path, {})}
        assert students and students <= current, path


def test_date_taken_alone_keeps_the_default_student_set(sim: Simulator) -> None:
    # date_taken_start/end filter results by date taken; they do not replace the enrollment default, so the results
    # of students who tested last year and then left the district are not returned.
    current = enrolled_local_ids(sim, TODAY, TODAY)
    last_year = {"date_taken_start": "2025-08-01", "date_taken_end": "2026-07-31"}
    for path in AGGREGATES_WITH_DATE_DEFAULT:
        rows = sim.query(path, last_year)
        assert rows and all("2025-08-01" <= r["date_taken"] <= "2026-07-31" for r in rows), path
        assert {r["local_student_id"] for r in rows} <= current, path


def test_start_and_end_date_select_the_students_enrolled_in_the_range(sim: Simulator) -> None:
    start, end = dt.date(2025, 8, 1), dt.date(2026, 7, 31)
    enrolled_last_year = enrolled_local_ids(sim, start, end)
    departed = enrolled_last_year - enrolled_local_ids(sim, TODAY, TODAY)
    window = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    for path in (*AGGREGATES_WITH_DATE_DEFAULT, "AssessmentAggregateStudentResponses"):
        rows = sim.query(path, window)
        students = {r["local_student_id"] for r in rows}
        assert students <= enrolled_last_year, path
        assert students & departed, path  # who left since is in last year's set
        assert {r["date_taken"][:4] for r in rows} > {"2026"}, path  # the range does not filter the date taken


def test_date_taken_window_and_single_date(sim: Simulator) -> None:
    rows = sim.query(
        "AssessmentAggregateStudentResponses", {"date_taken_start": "2026-09-01", "date_taken_end": "2026-10-15"}
    )
    assert rows and all("2026-09-01" <= r["date_taken"] <= "2026-10-15" for r in rows)
    # `date` selects the students enrolled on that day ("Filter results for a single date"), not the date taken.
    day = dt.date.fromisoformat(rows[0]["date_taken"])
    on_day = sim.query("AssessmentAggregateStudentResponses", {"date": day.isoformat()})
    assert {r["local_student_id"] for r in on_day} <= enrolled_local_ids(sim, day, day)
    assert {r["date_taken"] for r in on_day} > {day.isoformat()}
    pool = sim.query("PoolAssessmentAggregateStudentResponses", {"date_taken_start": "2026-08-01"})
    assert pool and all(r["date_taken"] >= "2026-08-01" for r in pool)


def test_modified_after_accepts_dates_and_timestamps(sim: Simulator) -> None:
    rows = sim.query("AssessmentAggregateStudentResponses", {})
    assert sim.query("AssessmentAggregateStudentResponses", {"modified_after": "2000-01-01"}) == rows
    assert sim.query("AssessmentAggregateStudentResponses", {"modified_after": "2099-01-01 00:00:00"}) == []
    stamps = sorted(r.modified_at for r in sim.district.results)
    middle = stamps[len(stamps) // 2]
    some = sim.query("AssessmentAggregateStudentResponses", {"modified_after": middle.strftime("%Y-%m-%d %H:%M:%S")})
    assert len(some) == sum(1 for s in stamps if s >= middle.replace(microsecond=0))
    assert 0 < len(some) < len(rows)


def test_enrollment_range_endpoints_and_graduation_window(sim: Simulator) -> None:
    high = next(s.site_id for s in sim.district.sites.values() if s.level == "high")
    params = {"site_id": high, "enrollment_start_date": "2026-08-01", "enrollment_end_date": "2027-07-31"}
    programs = sim.query("ProgramCode", params)
    assert programs and {r["enrollment_site_id"] for r in programs} == {str(high)}
    grads = sim.query("GraduationEligibility", {"site_id": high, "start_date": "2025-08-01", "end_date": "2026-07-31"})
    assert grads and {r["enrollment_year"] for r in grads} == {"2026"}
    behavior = sim.query("Behavior", params)
    assert all(
        r["enrollment_start_date"] <= r["incident_occurrence_date"] <= r["enrollment_end_date"] for r in behavior
    )


def test_attendance_only_up_to_today_and_on_instructional_days(sim: Simulator) -> None:
    assert sim.query("Attendance/Daily", {"date": "2026-11-24"})
    assert sim.query("Attendance/Daily", {"date": "2026-11-26"}) == []  # Thanksgiving
    assert sim.query("Attendance/Daily", {"date": "2026-12-01"}) == []  # after today
    assert sim.query("Attendance/Daily", {"date": "2026-07-13"})  # last year's summer session


def test_gradebook_and_requirement_checks_default_to_currently_enrolled(sim: Simulator) -> None:
    assert sim.query("GradebookOverallScores", {}) == sim.query("GradebookOverallScores", {"date": TODAY.isoformat()})
    assert sim.query("CourseRequirementChecks", {}) == sim.query(
        "CourseRequirementChecks", {"as_of_date": TODAY.isoformat()}
    )
    summer = sim.query("GradebookOverallScores", {"date": "2026-07-13", "session_type": "Summer"})
    assert summer and sim.query("GradebookOverallScores", {"date": "2026-07-13", "session_type": "Normal"}) == []


def test_terms_complete_a_half_open_range_with_the_session_bounds(sim: Simulator) -> None:
    # Terms: start_date "Defaults to the session start date if not provided", end_date "to the session end date".
    session = cal.normal_session(cal.academic_year(TODAY))
    assert sim.query("Terms", {}) == sim.query(
        "Terms", {"start_date": session.start.isoformat(), "end_date": session.end.isoformat()}
    )
    late_start = {"start_date": "2027-03-01"}
    assert sim.query("Terms", late_start) == sim.query("Terms", {**late_start, "end_date": session.end.isoformat()})
    assert all(r["start_date"] <= session.end.isoformat() for r in sim.query("Terms", late_start))


def test_special_ed_start_and_end_date_need_each_other(sim: Simulator) -> None:
    # StudentSpecialEd: start_date "(end date required)", end_date "(start date required)".
    with pytest.raises(ApiError) as missing_end:
        sim.query("StudentSpecialEd", {"start_date": "2026-08-01"})
    assert missing_end.value.status == 400 and "end_date" in str(missing_end.value.body)
    with pytest.raises(ApiError):
        sim.query("StudentSpecialEd", {"end_date": "2027-07-31"})
    assert sim.query("StudentSpecialEd", {"start_date": "2026-08-01", "end_date": "2027-07-31"})
