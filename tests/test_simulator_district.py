"""The synthetic district is deterministic, realistic enough, and relationally consistent across endpoints."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest

from illuminate_sync.simulator import District, Simulator, SimulatorConfig
from illuminate_sync.simulator import calendar as cal
from illuminate_sync.simulator.district import mix, mix_from, unit, unit_from

TODAY = dt.date(2026, 11, 27)
BOTH = {"start_date": "2025-08-01", "end_date": "2027-07-31"}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    yield Simulator(SimulatorConfig(students=400, seed=7, today=TODAY))


def test_generation_of_a_small_district_is_fast() -> None:
    start = time.perf_counter()
    District(300, 11, TODAY)
    assert time.perf_counter() - start < 2.0


def test_same_seed_same_data_and_different_seed_different_data() -> None:
    a, b, c = (Simulator(students=120, seed=s, today=TODAY) for s in (5, 5, 6))
    for path, params in (
        ("Students", BOTH),
        ("Roster", BOTH),
        ("AssessmentAggregateStudentResponses", {}),
        ("Attendance/Daily", {"date": "2026-10-07"}),
        ("Users", {}),
    ):
        assert a.query(path, params) == b.query(path, params), path
    assert a.query("Students", BOTH) != c.query("Students", BOTH)


def test_same_seed_same_answers_in_another_process() -> None:
    """Python's str hash differs per process: nothing the simulator serves may depend on it."""
    script = (
        "import datetime as dt, hashlib, json\n"
        "from simulator import Simulator\n"
        "sim = Simulator(students=300, seed=5, today=dt.date(2026, 11, 27))\n"
        "answers = [sim.query(path, params) for path, params in ("
        "('CourseRequirementChecks', {}), ('GradebookOverallScores', {}), "
        "('Attendance/Section', {'date': '2026-10-07', 'site_id': '2'}))]\n"
        "print(hashlib.sha256(json.dumps(answers, default=str).encode()).hexdigest())\n"
    )

    def answers_digest(hash_seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    assert answers_digest("1") == answers_digest("2")


def test_continued_hash_equals_the_whole_hash() -> None:
    assert mix_from(mix(7, 100123), 4567, 1) == mix(7, 100123, 4567, 1)
    assert unit_from(mix(7, 100123, 881), 739000) == unit(7, 100123, 881, 739000)


def test_district_shape(sim: Simulator) -> None:
    d = sim.district
    levels = defaultdict(int)
    for site in d.sites.values():
        levels[site.level] += 1
    assert levels["district"] == 1 and min(levels["elementary"], levels["middle"], levels["high"]) >= 1
    current = {e.student.student_id for e in d.enrollments if e.academic_year == 2027}
    assert 380 <= len(current) <= 420
    grades = {e.grade_level_id for e in d.enrollments}
    assert grades == set(range(1, 14))
    sped = sum(1 for s in d.students.values() if s.sped) / len(d.students)
    assert 0.06 < sped < 0.2
    assert any(s.sped == "exited" for s in d.students.values())
    codes = {e.exit_code for e in d.enrollments}
    assert {"T165", "T200", None} <= codes
    summer = [e for e in d.enrollments if e.session_type_id == cal.SUMMER]
    assert summer and all(d.sites[e.site_id].has_summer for e in summer)
    assert any(d.sites[e.site_id].level == "middle" for e in summer) or len(summer) < 5


def test_students_promote_a_grade_and_move_up_a_level(sim: Simulator) -> None:
    d = sim.district.index()
    moved = 0
    for spans in d.enrollments_by_student.values():
        by_year = {e.academic_year: e for e in spans if e.session_type_id == cal.NORMAL}
        if 2026 in by_year and 2027 in by_year:
            assert by_year[2027].grade_level_id == by_year[2026].grade_level_id + 1
            moved += by_year[2026].grade_level_id == 6 and d.sites[by_year[2027].site_id].level == "middle"
    assert moved > 0


def test_every_roster_span_lies_inside_an_enrollment_at_the_same_site(sim: Simulator) -> None:
    rosters = sim.query("Roster", BOTH)
    enrollments = defaultdict(list)
    for e in sim.query("Enrollment", BOTH):
        enrollments[e["student_id"]].append(e)
    sections = {s["section_id"]: s for s in sim.query("MasterSchedule", BOTH)}
    courses = {c["course_id"] for c in sim.query("Courses", BOTH)}
    users = {u["user_id"] for u in sim.query("Users", {})}
    for r in rosters:
        assert any(
            e["site_id"] == r["site_id"] and e["entry_date"] <= r["entry_date"] and r["leave_date"] <= e["leave_date"]
            for e in enrollments[r["student_id"]]
        ), r
        assert r["section_id"] in sections and r["course_id"] in courses and r["user_id"] in users
        assert sections[r["section_id"]]["site_id"] == r["site_id"]


def test_students_ids_agree_across_endpoints(sim: Simulator) -> None:
    students = {s["student_id"]: s for s in sim.query("Students", BOTH)}
    for path in ("Enrollment", "Roster", "StudentCounselors"):
        for r in sim.query(path, BOTH):
            assert students[r["student_id"]]["district_student_id"] == r["district_student_id"], path
    locals_ = {str(s["district_student_id"]) for s in students.values()}
    for contact in sim.query("StudentContacts", {}):
        assert int(contact["student_id"]) in students and contact["district_student_id"] in locals_


def test_aggregate_students_were_enrolled_on_the_date_taken(sim: Simulator) -> None:
    d = sim.district.index()
    by_local = {s.local_id: s for s in d.students.values()}
    rows = sim.query("AssessmentAggregateStudentResponses", {})
    assert rows
    for row in rows:
        student = by_local[row["local_student_id"]]
        day = dt.date.fromisoformat(row["date_taken"])
        enrollment = d.enrollment_on(student.student_id, day)
        assert enrollment is not None
        assessment = d.assessments[int(row["assessment_id"])]
        assert enrollment.grade_level_id in assessment.grade_level_ids
    keys = [(r["assessment_id"], r["local_student_id"]) for r in rows]
    retakes = len(keys) - len(set(keys))
    assert 0 < retakes < 0.15 * len(keys)


def test_attendance_daily_covers_every_enrolled_student_and_some_are_chronically_absent(sim: Simulator) -> None:
    d = sim.district
    day = dt.date(2026, 10, 7)
    rows = sim.query("Attendance/Daily", {"date": day.isoformat()})
    enrolled = {e.student.student_id for e in d.enrollments if e.active_on(day)}
    assert {int(r["illuminate_student_id"]) for r in rows} == enrolled
    days = [x for x in cal.instructional_days(2027) if x <= TODAY]
    absent = defaultdict(int)
    for x in days:
        for s in (e.student for e in d.enrollments if e.active_on(x) and e.academic_year == 2027):
            absent[s.student_id] += d.daily_flag(s, x) in ("A", "E", "I")
    chronic = sum(1 for n in absent.values() if n >= 0.1 * len(days))
    assert 0.05 < chronic / len(absent) < 0.3


def test_exceptions_mode_serves_only_non_present_marks() -> None:
    full = Simulator(students=150, seed=3, today=TODAY)
    exc = Simulator(students=150, seed=3, today=TODAY, attendance_mode="exceptions")
    day = {"date": "2026-10-07"}
    everyone = full.query("Attendance/Daily", day)
    exceptions = exc.query("Attendance/Daily", day)
    assert exceptions == [r for r in everyone if r["flag_code"] != "+"]
    assert exceptions and len(exceptions) < len(everyone) / 2
    high = next(s.site_id for s in full.district.sites.values() if s.level == "high")
    section = exc.query("Attendance/Section", {**day, "site_id": high})
    assert all(r["flag_code"] != "+" for r in section)


def test_section_attendance_follows_the_daily_mark(sim: Simulator) -> None:
    high = next(s.site_id for s in sim.district.sites.values() if s.level == "high")
    day = "2026-10-07"
    daily = {r["illuminate_student_id"]: r["flag_code"] for r in sim.query("Attendance/Daily", {"date": day})}
    for r in sim.query("Attendance/Section", {"date": day, "site_id": high}):
        if daily[r["illuminate_student_id"]] in ("A", "E", "I", "S"):
            assert r["flag_code"] == daily[r["illuminate_student_id"]]


def test_high_schoolers_have_requirement_checks_and_graduation_rows(sim: Simulator) -> None:
    checks = sim.query("CourseRequirementChecks", {})
    assert {c["requirement_check_type"] for c in checks} == {"Graduation", "UC"}
    d = sim.district
    for c in checks[:200]:
        assert d.sites[int(c["site_id"])].level == "high"
    high = [s.site_id for s in d.sites.values() if s.level == "high"]
    names = {
        r["course_requirement_name"] for h in high for r in sim.query("GraduationEligibility", {"site_id": h, **BOTH})
    }
    assert names == {"District Graduation", "UC/CSU"}


def test_a_large_district_generates_quickly() -> None:
    start = time.perf_counter()
    d = District(5000, 1, TODAY)
    assert time.perf_counter() - start < 10
    assert len(d.sites) >= 12
