"""What every catalog table should hold, computed from the simulated district's own records (issue 19).

The sync's other tests compare the tables with the simulator's answers to the sync's own requests
(`sync_support.expected_records`): a mistake shared by the source and the simulator (a window that drops students,
a key that repeats) passes them unseen. Here each table's rows are defined from the district itself (enrollments,
rosters, results, ...), following the README's strategies and the API's documented rules, without asking the API.

A table's truth is a set of key tuples typed as DuckDB returns them: the catalog's declared key, then, for academic
year slices that do not declare it, the `_academic_year` slice the row belongs to (a row in the wrong year's slice is
a wrong row). Sessions come from the district's Terms; years are named by their ending year (2027 = 2026-27).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from illuminate_sync.simulator import Simulator
from illuminate_sync.simulator import calendar as cal
from illuminate_sync.simulator.district import (
    GRADUATION_CATEGORIES,
    UC_CATEGORIES,
    District,
    Enrollment,
    Roster,
    Section,
)
from illuminate_sync.simulator.endpoints import FLAGS, GRADEBOOK_CATEGORIES
from illuminate_sync.sources.illuminate.catalog import Endpoint, load_catalog
from illuminate_sync.sources.illuminate.settings import SLICE_YEAR_COLUMN

Key = tuple[Any, ...]
GRADUATION_REQUIREMENTS = ("District Graduation", "UC/CSU")
"""The course requirement sets GraduationEligibility reports for every high-school enrollment."""
STANDARDS_PER_GRADEBOOK = 2
"""GradebookStandardsScores reports two standards per section, `<school_course_id>.STD.<n>`."""


@dataclass(frozen=True)
class Session:
    """One session of one academic year across all sites, as the district's Terms span it."""

    academic_year: int
    kind: str  # "Normal" or "Summer", the Terms' session_type
    start: dt.date
    end: dt.date

    def overlaps(self, start: dt.date, end: dt.date | None) -> bool:
        return self.start <= (end or dt.date.max) and start <= self.end


def compared_columns(endpoint: Endpoint) -> list[str]:
    """The columns a table's rows are compared on: its declared key, plus the slice year of an academic year slice
    whose key does not name it."""
    columns = list(endpoint.primary_key)
    if endpoint.strategy == "academic_year_slice" and SLICE_YEAR_COLUMN not in columns:
        columns.append(SLICE_YEAR_COLUMN)
    return columns


class DistrictTruth:
    """The rows each table should hold after a sync of `years` on the simulator's today."""

    def __init__(self, sim: Simulator, years: tuple[int, ...]) -> None:
        self.sim = sim
        self.district: District = sim.district.index()
        self.years = years
        self.today = sim.today
        self.sessions = {year: self._sessions(year) for year in years}

    def _sessions(self, year: int) -> list[Session]:
        spans: dict[int, tuple[dt.date, dt.date]] = {}
        for term in self.district.terms.values():
            if term.academic_year != year:
                continue
            start, end = spans.get(term.session_type_id, (term.start, term.end))
            spans[term.session_type_id] = (min(start, term.start), max(end, term.end))
        return [Session(year, cal.SESSION_TYPE_NAMES[kind], start, end) for kind, (start, end) in sorted(spans.items())]

    def keys(self, table: str) -> set[Key]:
        return set(TRUTH[table](self))

    # -- the district's records per synced year ---------------------------------------------------------------------

    def enrollments(self, year: int) -> list[Enrollment]:
        return [e for e in self.district.enrollments if e.academic_year == year]

    def rosters(self, year: int) -> list[Roster]:
        return [r for r in self.district.rosters if r.section.term.academic_year == year]

    def sections(self, year: int) -> list[Section]:
        return [s for s in self.district.sections.values() if s.term.academic_year == year]

    def in_sessions(self, year: int, start: dt.date, end: dt.date | None) -> bool:
        return any(session.overlaps(start, end) for session in self.sessions[year])

    def nearest_in_session(self) -> dt.date:
        """The API's documented default date for requests without one: "today (or nearest in session date)"."""
        return cal.nearest_in_session(self.today)

    def school_days(self, year: int, session_type_id: int, start: dt.date, end: dt.date) -> Iterator[dt.date]:
        """Instructional days of a session (the district's calendar: weekdays minus holidays) in [start, end], up to
        today: attendance exists only for days that have happened."""
        last = min(end, self.today)
        return (day for day in cal.instructional_days(year, session_type_id) if start <= day <= last)

    def as_of_rosters(self, year: int) -> Iterator[tuple[Session, Roster]]:
        """The gradebook's rows: per session of `year` that has started, the rosters of that session active on its
        as-of date (the session's last day, or today while it runs). The API's gradebook answers "as of" a `date`
        (default: today or the nearest in-session date) for one `session_type`; a session not yet started has no
        gradebook."""
        if year in self.district.gradebook_disabled_years:
            return
        for session in self.sessions[year]:
            if session.start > self.today:
                continue
            as_of = min(session.end, self.today)
            for roster in self.rosters(year):
                term = roster.section.term
                if cal.SESSION_TYPE_NAMES[term.session_type_id] == session.kind and roster.active_on(as_of):
                    yield session, roster

    def gradebook_name(self, section: Section) -> str:
        return section.gradebook_name

    def assignment_names(self, section: Section) -> list[str]:
        # Assignments are not stored in the district: the simulator derives them from a section's school days.
        return [name for name, *_ in self.sim.api._assignments(section)]


# ---------------------------------------------------------------------------------------------------------------------
# Per table: what exists for the synced years
# ---------------------------------------------------------------------------------------------------------------------
def _sites(t: DistrictTruth) -> Iterator[Key]:
    return ((site_id,) for site_id in t.district.sites)


def _grade_levels(t: DistrictTruth) -> Iterator[Key]:
    return ((grade.grade_level_id,) for grade in t.district.grade_levels)


def _students(t: DistrictTruth) -> Iterator[Key]:
    # One row per student and academic year they were enrolled in (summer and re-enrolments included), in that
    # year's slice.
    for year in t.years:
        for e in t.enrollments(year):
            yield e.student.student_id, e.academic_year, year


def _student_contacts(t: DistrictTruth) -> Iterator[Key]:
    # StudentContacts takes no date: the API answers for the students enrolled on the nearest in-session date.
    day = t.nearest_in_session()
    enrolled = {e.student.student_id for e in t.district.enrollments if e.active_on(day)}
    for contact in t.district.contacts:
        if contact.student.student_id in enrolled:
            yield contact.student.student_id, contact.contact_id


def _program_code(t: DistrictTruth) -> Iterator[Key]:
    # A program participation is reported per enrollment of the year it overlaps.
    for year in t.years:
        for e in t.enrollments(year):
            for program in t.district.programs_by_student.get(e.student.student_id, []):
                if program.participation_start <= e.leave_date and (
                    program.participation_end is None or program.participation_end >= e.entry_date
                ):
                    yield e.student.student_id, e.site_id, e.entry_date, program.code, program.eligibility_start, year


def _student_counselors(t: DistrictTruth) -> Iterator[Key]:
    # Assignments carry no year: one spanning two years' sessions belongs to both years' slices.
    for year in t.years:
        for span in t.district.counselor_spans:
            if t.in_sessions(year, span.start, span.end):
                yield span.student.student_id, span.counselor.user_id, span.start, year


def _student_special_ed(t: DistrictTruth) -> Iterator[Key]:
    # Every student with a special-education record (current or exited) enrolled in the year, once per year.
    for year in t.years:
        for e in t.enrollments(year):
            if e.student.sped is not None:
                yield e.student.student_id, year


def _users(t: DistrictTruth) -> Iterator[Key]:
    return ((user_id,) for user_id in t.district.users)


def _user_roles(t: DistrictTruth) -> Iterator[Key]:
    for user in t.district.users.values():
        for site_id, year, term_id, role_id, _ in user.roles:
            yield user.user_id, site_id, year, term_id, role_id


def _school_focus_permissions(t: DistrictTruth) -> Iterator[Key]:
    return ((user_id,) for user_id in t.district.users)


def _school_focus_sites(t: DistrictTruth) -> Iterator[Key]:
    for user in t.district.users.values():
        for site_id in {role[0] for role in user.roles}:
            yield user.user_id, site_id


def _terms(t: DistrictTruth) -> Iterator[Key]:
    for year in t.years:
        for term in t.district.terms.values():
            if term.academic_year == year:
                yield term.term_id, year


def _courses(t: DistrictTruth) -> Iterator[Key]:
    # The courses with a section in a synced year.
    return ((section.course.course_id,) for year in t.years for section in t.sections(year))


def _enrollment(t: DistrictTruth) -> Iterator[Key]:
    for year in t.years:
        for e in t.enrollments(year):
            yield e.student.student_id, e.site_id, e.entry_date, year


def _master_schedule(t: DistrictTruth) -> Iterator[Key]:
    # One row per section and teacher (co-teachers included).
    for year in t.years:
        for section in t.sections(year):
            for teacher in section.teachers:
                yield section.section_id, teacher.user_id, year


def _roster(t: DistrictTruth) -> Iterator[Key]:
    for year in t.years:
        for r in t.rosters(year):
            yield r.student.student_id, r.section.section_id, r.entry_date, year


def _assessments(t: DistrictTruth) -> Iterator[Key]:
    return ((assessment_id,) for assessment_id in t.district.assessments)


def _results(t: DistrictTruth) -> Iterator[Any]:
    """Every result taken in a synced year's sessions, whoever the student is enrolled with today."""
    for result in t.district.results:
        if any(t.in_sessions(year, result.date_taken, result.date_taken) for year in t.years):
            yield result


def _assessment_results(t: DistrictTruth) -> Iterator[Key]:
    for r in _results(t):
        yield r.assessment.assessment_id, r.student.local_id, r.date_taken


def _assessment_group_results(t: DistrictTruth) -> Iterator[Key]:
    for r in _results(t):
        for group in r.assessment.groups:
            yield r.assessment.assessment_id, r.student.local_id, r.date_taken, group


def _assessment_standard_results(t: DistrictTruth) -> Iterator[Key]:
    for r in _results(t):
        for standard in r.assessment.standards:
            yield r.assessment.assessment_id, r.student.local_id, r.date_taken, standard.guid


def _pool_results(t: DistrictTruth) -> Iterator[Any]:
    """Every pool result taken in a synced year's sessions up to today, students who tested and then left included:
    a result is the district's whatever the student's enrollment on the day the sync runs. (The API's documented
    `date` default, "today (or nearest in session date)", would answer only for students enrolled that day: the
    sync must ask with the session's dates, and this truth is what it must get.)"""
    for result in t.district.pool_results:
        taken = result.date_taken
        if taken <= t.today and any(t.in_sessions(year, taken, taken) for year in t.years):
            yield result


def _pool_assessment_results(t: DistrictTruth) -> Iterator[Key]:
    for r in _pool_results(t):
        yield r.pool.pool_assessment_id, r.student.local_id, r.date_taken


def _pool_assessment_standard_results(t: DistrictTruth) -> Iterator[Key]:
    for r in _pool_results(t):
        for standard in r.pool.standards:
            yield r.pool.pool_assessment_id, r.student.local_id, r.date_taken, standard.guid


def _attendance_daily(t: DistrictTruth) -> Iterator[Key]:
    # A mark per student, school and school day of an enrollment active that day, up to today (the API's `date` is
    # required: each day is asked for; a future day has no marks).
    for year in t.years:
        for e in t.enrollments(year):
            for day in t.school_days(year, e.session_type_id, e.entry_date, e.leave_date):
                yield e.student.student_id, e.site_id, day


def _attendance_section(t: DistrictTruth) -> Iterator[Key]:
    for year in t.years:
        for r in t.rosters(year):
            for day in t.school_days(year, r.section.term.session_type_id, r.entry_date, r.leave_date):
                yield r.student.student_id, r.section.section_id, day


def _attendance_flags(t: DistrictTruth) -> Iterator[Key]:
    return ((flag["flag_code"],) for flag in FLAGS)


def _course_requirement_checks(t: DistrictTruth) -> Iterator[Key]:
    # The sync asks `as_of_date` = today: "data for students enrolled as of a particular date" (high schools only).
    if t.district.crc_disabled:
        return
    for e in t.district.enrollments:
        if e.active_on(t.today) and t.district.sites[e.site_id].level == "high":
            for kind, categories in (("Graduation", GRADUATION_CATEGORIES), ("UC", UC_CATEGORIES)):
                for short_name, *_ in categories:
                    yield e.student.local_id, kind, short_name


def _graduation_eligibility(t: DistrictTruth) -> Iterator[Key]:
    for year in t.years:
        if year in t.district.graduation_disabled_years:
            continue
        for e in t.enrollments(year):
            if t.district.sites[e.site_id].level == "high":
                for requirement in GRADUATION_REQUIREMENTS:
                    yield e.student.student_id, e.site_id, e.entry_date, requirement, year


def _behavior(t: DistrictTruth) -> Iterator[Key]:
    # An incident is reported with the enrollment at its site that covers its date.
    for year in t.years:
        for e in t.enrollments(year):
            for incident in t.district.incidents_by_student.get(e.student.student_id, []):
                if incident.site_id == e.site_id and e.active_on(incident.date):
                    yield e.student.student_id, incident.incident_id, e.site_id, year


def _gradebook(detail: Callable[[DistrictTruth, Roster], list[Any]], with_section: bool) -> Callable[..., Any]:
    """A gradebook table's truth: per as-of roster (see `as_of_rosters`), one row per `detail` (assignment,
    category, standard, or one for the overall score). The base tables key rows by the slice year and session the
    sync asked for; the with-section tables by the section."""

    def rows(t: DistrictTruth) -> Iterator[Key]:
        for year in t.years:
            for session, r in t.as_of_rosters(year):
                name = t.gradebook_name(r.section)
                for item in detail(t, r):
                    head = (r.student.local_id, name, *item)
                    if with_section:
                        yield *head, r.section.section_id, year
                    else:
                        yield *head, year, session.kind

    return rows


def _assignments(t: DistrictTruth, r: Roster) -> list[Any]:
    return [(name,) for name in t.assignment_names(r.section)]


def _overall(t: DistrictTruth, r: Roster) -> list[Any]:
    return [()]


def _categories(t: DistrictTruth, r: Roster) -> list[Any]:
    return [(category,) for category, _ in GRADEBOOK_CATEGORIES]


def _standards(t: DistrictTruth, r: Roster) -> list[Any]:
    return [(f"{r.section.course.school_course_id}.STD.{k + 1}",) for k in range(STANDARDS_PER_GRADEBOOK)]


def _overall_with_section(t: DistrictTruth) -> Iterator[Key]:
    # This endpoint sends `section_id` as the district's section id when the section has one (text column), the
    # internal id otherwise.
    for year in t.years:
        for _, r in t.as_of_rosters(year):
            section = r.section
            yield (
                r.student.local_id,
                t.gradebook_name(section),
                section.district_section_id or str(section.section_id),
                year,
            )


def _assessment_view(t: DistrictTruth) -> Iterator[Key]:
    return ((assessment_id,) for assessment_id in t.district.assessments)


TRUTH: dict[str, Callable[[DistrictTruth], Any]] = {
    "sites": _sites,
    "grade_levels": _grade_levels,
    "students": _students,
    "students2": _students,
    "student_contacts": _student_contacts,
    "program_code": _program_code,
    "student_counselors": _student_counselors,
    "student_special_ed": _student_special_ed,
    "users": _users,
    "user_roles": _user_roles,
    "school_focus_permissions": _school_focus_permissions,
    "school_focus_sites": _school_focus_sites,
    "terms": _terms,
    "courses": _courses,
    "enrollment": _enrollment,
    "master_schedule": _master_schedule,
    "roster": _roster,
    "assessments": _assessments,
    "assessment_aggregate_student_responses": _assessment_results,
    "assessment_aggregate_student_responses_group": _assessment_group_results,
    "assessment_aggregate_student_responses_standard": _assessment_standard_results,
    "pool_assessment_aggregate_student_responses": _pool_assessment_results,
    "pool_assessment_aggregate_student_responses_standard": _pool_assessment_standard_results,
    "assessment_view": _assessment_view,
    "attendance_daily": _attendance_daily,
    "attendance_section": _attendance_section,
    "attendance_flags": _attendance_flags,
    "course_requirement_checks": _course_requirement_checks,
    "graduation_eligibility": _graduation_eligibility,
    "behavior": _behavior,
    "gradebook_scores": _gradebook(_assignments, with_section=False),
    "gradebook_overall_scores": _gradebook(_overall, with_section=False),
    "gradebook_category_scores": _gradebook(_categories, with_section=False),
    "gradebook_standards_scores": _gradebook(_standards, with_section=False),
    "gradebook_scores_with_section": _gradebook(_assignments, with_section=True),
    "gradebook_overall_scores_with_section": _overall_with_section,
    "gradebook_category_scores_with_section": _gradebook(_categories, with_section=True),
    "gradebook_standards_scores_with_section": _gradebook(_standards, with_section=True),
}
"""Per catalog table, its rows' compared columns (`compared_columns`) as the district defines them."""


def catalog_tables_without_truth() -> list[str]:
    return sorted(set(load_catalog()) - set(TRUTH))
