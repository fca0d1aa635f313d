"""Changes to the district after generation: control-API mutations and the effects of the POST endpoints.

Every change bumps `District.version`, which drops the query caches. Each mutation returns a small JSON-able dict
describing what changed (ids, natural keys) so tests can assert on it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from illuminate_sync.simulator import calendar as cal
from illuminate_sync.simulator.district import Assessment, District, Result, Student, without_counselor_year
from illuminate_sync.simulator.endpoints import FLAG_TITLES, GRADEBOOK_PATHS


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def result_key(r: Result) -> list[Any]:
    return [r.assessment.assessment_id, r.student.local_id, r.date_taken.isoformat()]


class Mutator:
    """Applies named mutations to a district."""

    def __init__(self, district: District) -> None:
        self.d = district
        self.actions: dict[str, Callable[..., dict[str, Any]]] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("do_")
        }

    def apply(self, action: str, **kwargs: Any) -> dict[str, Any]:
        fn = self.actions.get(action)
        if fn is None:
            raise ValueError(f"unknown mutation {action!r}; one of {', '.join(sorted(self.actions))}")
        out = fn(**kwargs)
        self.d.touch()
        return {"action": action, **out}

    # -- helpers -------------------------------------------------------------------------------------------------

    def school_day(self) -> dt.date:
        """The latest instructional day of the current year up to today (the session start before it begins)."""
        year = self.d.current_year
        days = [x for x in cal.instructional_days(year) if x <= self.d.today]
        return days[-1] if days else cal.normal_session(year).start

    def _student(self, student_id: Any) -> Student:
        student = self.d.students.get(int(student_id))
        if student is None:
            raise ValueError(f"unknown student {student_id}")
        return student

    def _results(self, assessment_id: Any = None, student_id: Any = None) -> list[Result]:
        out = [r for r in self.d.results
               if (assessment_id is None or r.assessment.assessment_id == int(assessment_id))
               and (student_id is None or r.student.student_id == int(student_id))]
        if not out:
            raise ValueError("no matching assessment result")
        return out

    # -- mutations -----------------------------------------------------------------------------------------------

    def do_add_students(self, count: int = 1, site_id: int | None = None, grade_level_id: int | None = None,
                        entry_date: str | dt.date | None = None, with_results: bool = False) -> dict[str, Any]:
        """New students enrolled in the current year from `entry_date` (default: the latest school day), with
        rosters, contacts, a counselor and programs; `with_results` also scores them on the assessments they were
        enrolled for (as late-arriving rows, modified now)."""
        entry = _as_date(entry_date) if entry_date else self.school_day()
        students = [self.d.add_student(site_id, grade_level_id, entry) for _ in range(int(count))]
        results = 0
        if with_results:
            now = self.d.now()
            for s in students:
                e = next((x for x in reversed(self.d.enrollments) if x.student is s), None)
                for a in self.d.assessments.values():
                    if e is None or e.grade_level_id not in a.grade_level_ids or not e.active_on(a.administered_at):
                        continue
                    self.d.results.append(Result(a, s, a.administered_at, 1, self.d.score(a, s), e.site_id,
                                                 e.grade_level_id, now))
                    results += 1
        return {"student_ids": [s.student_id for s in students],
                "district_student_ids": [s.local_id for s in students], "entry_date": entry.isoformat(),
                "results_added": results}

    def do_change_assessment_result(self, assessment_id: int | None = None, student_id: int | None = None,
                                    count: int = 1) -> dict[str, Any]:
        results = self._results(assessment_id, student_id)
        now = self.d.now()
        rng = self.d.rng
        changed = rng.sample(results, min(int(count), len(results))) if student_id is None else results[:1]
        for r in changed:
            pts = bytearray(r.points)
            for i, f in enumerate(r.assessment.fields):
                if rng.random() < 0.4:
                    pts[i] = (pts[i] + 1) % (f.maximum + 1)
            if bytes(pts) == r.points:
                pts[0] = (pts[0] + 1) % (r.assessment.fields[0].maximum + 1)
            r.points = bytes(pts)
            r.modified_at = now
        return {"keys": [result_key(r) for r in changed], "modified_at": now.isoformat(sep=" ")}

    def do_delete_assessment_result(self, assessment_id: int | None = None,
                                    student_id: int | None = None) -> dict[str, Any]:
        r = self._results(assessment_id, student_id)[0]
        self.d.results.remove(r)
        return {"key": result_key(r)}

    def do_update_assessment(self, assessment_id: int | None = None, title: str | None = None) -> dict[str, Any]:
        if assessment_id is None:  # the most recently administered one
            assessment_id = max(self.d.assessments.values(), key=lambda x: x.administered_at).assessment_id
        a = self.d.assessments.get(int(assessment_id))
        if a is None:
            raise ValueError(f"unknown assessment {assessment_id}")
        a.updated_at = self.d.now().replace(microsecond=0)
        a.title = title or f"{a.title} (revised)"
        return {"assessment_id": a.assessment_id, "title": a.title, "updated_at": a.updated_at.isoformat(sep=" ")}

    def do_delete_enrollment(self, student_id: int | None = None, academic_year: int | None = None) -> dict[str, Any]:
        year = int(academic_year or self.d.current_year)
        if student_id is None:  # a deterministic choice: the first student (by id) enrolled that year
            student_id = min(e.student.student_id for e in self.d.enrollments if e.academic_year == year)
        gone = [e for e in self.d.enrollments if e.student.student_id == int(student_id) and e.academic_year == year]
        if not gone:
            raise ValueError(f"student {student_id} has no enrollment in {year}")
        ids = {id(e) for e in gone}
        self.d.enrollments = [e for e in self.d.enrollments if id(e) not in ids]
        before = len(self.d.rosters)
        self.d.rosters = [r for r in self.d.rosters if id(r.enrollment) not in ids]
        self.d.counselor_spans = without_counselor_year(self.d.counselor_spans, year, int(student_id))
        return {"removed": [[e.student.student_id, e.site_id, e.entry_date.isoformat()] for e in gone],
                "rosters_removed": before - len(self.d.rosters)}

    def do_withdraw_student(self, student_id: int, date: str | dt.date | None = None,
                            exit_code: str = "T200") -> dict[str, Any]:
        student = self._student(student_id)
        day = _as_date(date) if date else self.school_day()
        e = self.d.enrollment_on(student.student_id, day)
        if e is None:
            raise ValueError(f"student {student_id} is not enrolled on {day}")
        e.leave_date, e.exit_code, e.exit_reason = day, exit_code, "Moved out of district"
        kept = []
        for r in self.d.rosters:
            if r.enrollment is e:
                if r.entry_date > day:
                    continue
                r.leave_date = min(r.leave_date, day)
            kept.append(r)
        self.d.rosters = kept
        for c in self.d.counselor_spans:
            if c.student is student and c.start <= day and (c.end is None or c.end > day):
                c.end = day
        return {"student_id": student.student_id, "site_id": e.site_id, "entry_date": e.entry_date.isoformat(),
                "leave_date": day.isoformat()}

    def do_correct_attendance(self, date: str | dt.date, flag_code: str,
                              student_id: int | None = None) -> dict[str, Any]:
        day = _as_date(date)
        if student_id is None:  # the first student (by id) enrolled that day whose mark differs
            candidates = sorted(e.student.student_id for e in self.d.enrollments
                                 if e.active_on(day) and cal.is_instructional(day, e.session_type_id)
                                 and self.d.daily_flag(e.student, day) != flag_code)
            if not candidates:
                raise ValueError(f"nobody's attendance on {day} can change to {flag_code!r}")
            student_id = candidates[0]
        student = self._student(student_id)
        if flag_code not in FLAG_TITLES:
            raise ValueError(f"unknown flag code {flag_code!r}")
        if day > self.d.today or self.d.enrollment_on(student.student_id, day) is None:
            raise ValueError(f"student {student_id} has no attendance on {day}")
        old = self.d.daily_flag(student, day)
        self.d.attendance_overrides[(student.student_id, day)] = flag_code
        return {"student_id": student.student_id, "date": day.isoformat(), "old_flag": old, "new_flag": flag_code}

    def do_add_attendance_day(self, days: int = 1) -> dict[str, Any]:
        self.d.today += dt.timedelta(days=int(days))
        return {"today": self.d.today.isoformat()}

    def do_empty_slice(self, path: str, academic_year: int) -> dict[str, Any]:
        """Remove every record `path` returns for one academic year."""
        year = int(academic_year)
        d = self.d
        path = path.strip("/")
        removed = 0
        if path == "Behavior":
            bounds = cal.academic_year_bounds(year)
            before = len(d.incidents)
            d.incidents = [i for i in d.incidents if not bounds[0] <= i.date <= bounds[1]]
            removed = before - len(d.incidents)
        elif path in ("Enrollment", "Students", "Students2"):
            before = len(d.enrollments)
            d.enrollments = [e for e in d.enrollments if e.academic_year != year]
            d.rosters = [r for r in d.rosters if r.enrollment.academic_year != year]
            d.counselor_spans = without_counselor_year(d.counselor_spans, year)
            removed = before - len(d.enrollments)
        elif path == "Roster":
            before = len(d.rosters)
            d.rosters = [r for r in d.rosters if r.section.term.academic_year != year]
            removed = before - len(d.rosters)
        elif path == "MasterSchedule":
            gone = {k for k, s in d.sections.items() if s.term.academic_year == year}
            for k in gone:
                del d.sections[k]
            d.rosters = [r for r in d.rosters if r.section.section_id not in gone]
            removed = len(gone)
        elif path == "StudentCounselors":
            before = len(d.counselor_spans)
            d.counselor_spans = without_counselor_year(d.counselor_spans, year)
            removed = before - len(d.counselor_spans)
        elif path == "GraduationEligibility":
            d.graduation_disabled_years.add(year)
            removed = -1
        elif path in GRADEBOOK_PATHS:
            d.gradebook_disabled_years.add(year)
            removed = -1
        elif path.startswith("AssessmentAggregateStudentResponses"):
            before = len(d.results)
            d.results = [r for r in d.results if r.assessment.academic_year != year]
            removed = before - len(d.results)
        elif path.startswith("PoolAssessmentAggregateStudentResponses"):
            before = len(d.pool_results)
            d.pool_results = [r for r in d.pool_results if r.pool.academic_year != year]
            removed = before - len(d.pool_results)
        elif path == "ProgramCode":
            start, end = cal.academic_year_bounds(year)
            before = len(d.programs)
            d.programs = [p for p in d.programs
                          if not (p.participation_start <= end and (p.participation_end or dt.date.max) >= start)]
            removed = before - len(d.programs)
        else:
            raise ValueError(f"empty_slice does not support {path!r}")
        return {"path": path, "academic_year": year, "removed": removed}

    def do_corrupt_record(self, path: str, field: str, value: Any, match: dict[str, Any]) -> dict[str, Any]:
        """Serve `value` (e.g. an id with a letter in it) as `field` of the records of `path` that match `match`
        (wire field -> value, compared as text) from now on: a record that breaks its declared type."""
        if not match:
            raise ValueError("corrupt_record needs `match`: the fields that pick the record(s)")
        override = {"path": path.strip("/"), "field": field, "value": value,
                    "match": {k: str(v) for k, v in match.items()}}
        self.d.wire_overrides.append(override)
        return override

    # -- POST endpoints ------------------------------------------------------------------------------------------

    def post_scores(self, a: Assessment, payload: Any, today: dt.date) -> dict[str, Any]:
        if not isinstance(payload, list):
            raise ValueError("the payload must be a JSON list")
        d = self.d.index()
        now = self.d.now()
        accepted: list[dict[str, Any]] = []
        rejected: list[Any] = []
        students: set[int] = set()
        for item in payload:
            student = d.students_by_local.get(str(item.get("local_student_id"))) if isinstance(item, dict) else None
            responses = item.get("responses") if isinstance(item, dict) else None
            try:
                version = int(item.get("version") or 1) if isinstance(item, dict) else 0
                taken = _as_date(item.get("date_taken") or today) if isinstance(item, dict) else today
            except (TypeError, ValueError):
                version, taken = 0, today
            if (student is None or not isinstance(responses, list) or len(responses) != len(a.fields)
                    or version not in (1, 2)):
                rejected.append(item)
                continue
            points = bytearray(len(a.fields))
            for pos, field_index in enumerate(a.version_order(version)):
                f = a.fields[field_index]
                answer = str(responses[pos]).strip()
                if f.is_rubric:
                    points[field_index] = max(0, min(f.maximum, int(answer))) if answer.isdigit() else 0
                else:
                    points[field_index] = 1 if answer.upper() == f.key[version] else 0
            enrollment = d.enrollment_on(student.student_id, taken)
            if enrollment is None:
                spans = [e for e in d.enrollments_of(student.student_id) if e.academic_year == cal.academic_year(taken)]
                enrollment = spans[-1] if spans else (d.enrollments_of(student.student_id) or [None])[-1]
            site_id = enrollment.site_id if enrollment else 1
            grade = enrollment.grade_level_id if enrollment else 0
            existing = [r for r in d.results if r.assessment is a and r.student is student and r.date_taken == taken]
            if existing:
                r = existing[0]
                r.points, r.version, r.modified_at = bytes(points), version, now
            else:
                d.results.append(Result(a, student, taken, version, bytes(points), site_id, grade, now))
            students.add(student.student_id)
            accepted.append(item)
        return {"students_count": len(students), "responses_count": len(accepted),
                "rejected_responses_count": len(rejected), "rejected_responses_details": rejected}


def user_api_keys(seed: int, user_id: int) -> tuple[str, str]:
    digest = hashlib.sha1(f"user-api-{seed}-{user_id}".encode()).hexdigest()
    return digest[:12].upper(), hashlib.sha1(f"secret-{digest}".encode()).hexdigest()
