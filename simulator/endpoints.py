"""Per-endpoint query functions: which records an endpoint returns for given parameters, rendered as the wire sends.

`Api.select(path, params)` resolves a path (e.g. "Students", "Assessment/12/View") to a `Selection`: a sequence of
lightweight items plus a `render` function turning one item into the exact JSON object the real API sends. The HTTP
handler renders only the requested page; `Simulator.query` renders them all. Selections are cached per
(endpoint, parameters without page/limit) and the cache is dropped on any mutation or change of `today`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from illuminate_sync.simulator import calendar as cal
from illuminate_sync.simulator.district import (
    GRADUATION_CATEGORIES,
    UC_CATEGORIES,
    Assessment,
    Band,
    Contact,
    District,
    Enrollment,
    PoolResult,
    Result,
    Roster,
    Section,
    Student,
    band_for,
    mix,
    unit,
    unit_from,
)
from illuminate_sync.simulator.routes import Route, route_for

DEFAULT_LIMIT = 1000
PAGING_PARAMS = ("page", "limit")
Record = dict[str, Any]

FLAGS: list[Record] = [
    {
        "flag_code": "+",
        "flag_title": "Present",
        "char_code": "+",
        "precedence": 1,
        "is_present": True,
        "is_excused": False,
        "is_reconciled": True,
        "is_tardy": False,
        "is_extreme": False,
        "is_truancy": False,
        "is_suspension": False,
        "is_verified": False,
    },
    {
        "flag_code": "A",
        "flag_title": "Absent",
        "char_code": "A",
        "precedence": 2,
        "is_present": False,
        "is_excused": False,
        "is_reconciled": False,
        "is_tardy": False,
        "is_extreme": False,
        "is_truancy": True,
        "is_suspension": False,
        "is_verified": False,
    },
    {
        "flag_code": "E",
        "flag_title": "Excused Absence",
        "char_code": "E",
        "precedence": 3,
        "is_present": False,
        "is_excused": True,
        "is_reconciled": True,
        "is_tardy": False,
        "is_extreme": False,
        "is_truancy": False,
        "is_suspension": False,
        "is_verified": False,
    },
    {
        "flag_code": "I",
        "flag_title": "Illness",
        "char_code": "I",
        "precedence": 4,
        "is_present": False,
        "is_excused": True,
        "is_reconciled": True,
        "is_tardy": False,
        "is_extreme": False,
        "is_truancy": False,
        "is_suspension": False,
        "is_verified": False,
    },
    {
        "flag_code": "S",
        "flag_title": "Suspension",
        "char_code": "S",
        "precedence": 5,
        "is_present": False,
        "is_excused": True,
        "is_reconciled": True,
        "is_tardy": False,
        "is_extreme": False,
        "is_truancy": False,
        "is_suspension": True,
        "is_verified": False,
    },
    {
        "flag_code": "T",
        "flag_title": "Tardy",
        "char_code": "T",
        "precedence": 6,
        "is_present": True,
        "is_excused": False,
        "is_reconciled": True,
        "is_tardy": True,
        "is_extreme": False,
        "is_truancy": False,
        "is_suspension": False,
        "is_verified": True,
    },
    {
        "flag_code": "X",
        "flag_title": "Extreme Tardy",
        "char_code": "X",
        "precedence": 7,
        "is_present": True,
        "is_excused": False,
        "is_reconciled": True,
        "is_tardy": True,
        "is_extreme": True,
        "is_truancy": False,
        "is_suspension": False,
        "is_verified": True,
    },
]
FLAG_TITLES = {f["flag_code"]: f["flag_title"] for f in FLAGS}
GRADEBOOK_CATEGORIES = (("Homework", 30), ("Classwork", 30), ("Tests and Quizzes", 40))
GRADEBOOK_PATHS = {
    "GradebookScores",
    "GradebookOverallScores",
    "GradebookCategoryScores",
    "GradebookStandardsScores",
    "GradebookScoresWithSection",
    "GradebookOverallScoresWithSection",
    "GradebookCategoryScoresWithSection",
    "GradebookStandardsScoresWithSection",
}
STRING_COUNT_PATHS = {"Assessments", "Attendance/Daily", "Attendance/Section"}


class ApiError(Exception):
    """An error answer: HTTP status and an optional JSON body."""

    def __init__(self, status: int, body: Record | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def bad_request(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(400, {"error": {"code": code, "message": message}})


def wire_flag(value: bool) -> str:
    """A boolean as the API spells it: `t` or `f`."""
    return "t" if value else "f"


def wire_date(value: dt.date | None) -> str | None:
    """A date as the API spells it: `YYYY-MM-DD`, or null."""
    return value.isoformat() if value is not None else None


def wire_timestamp(value: dt.datetime) -> str:
    """A timestamp as the API spells it: `YYYY-MM-DD HH:MM:SS`, no zone."""
    return value.strftime("%Y-%m-%d %H:%M:%S")


def wire_number(value: float) -> str:
    """A number as the API spells it in text: `12` for a whole number, else two decimals (`"50.00"`)."""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def mark_for(percent: float) -> str:
    for threshold, mark in ((90, "A"), (80, "B"), (70, "C"), (60, "D")):
        if percent >= threshold:
            return mark
    return "F"


class Expanded(Sequence[tuple[Any, int]]):
    """A virtual sequence of (base item, k) for k in range(count(base)): lazily expanded child rows."""

    def __init__(self, bases: Sequence[Any], counts: Sequence[int]) -> None:
        self.bases = bases
        self.offsets: list[int] = []
        total = 0
        for c in counts:
            self.offsets.append(total)
            total += c
        self.total = total

    def __len__(self) -> int:
        return self.total

    def _item_at(self, i: int) -> tuple[Any, int]:
        j = bisect.bisect_right(self.offsets, i) - 1  # the last base starting at or before i (skips empty ones)
        return self.bases[j], i - self.offsets[j]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._item_at(i) for i in range(*index.indices(self.total))]
        if index < 0:
            index += self.total
        if not 0 <= index < self.total:
            raise IndexError(index)
        return self._item_at(index)

    def __iter__(self) -> Iterator[tuple[Any, int]]:
        for base, off, nxt in zip(self.bases, self.offsets, [*self.offsets[1:], self.total]):
            for k in range(nxt - off):
                yield base, k


@dataclass
class Selection:
    """What one endpoint returns for one set of parameters."""

    items: Sequence[Any]
    render: Callable[[Any], Any]
    shape: str  # paged, list, document
    string_count: bool = False
    single_object: bool = False

    def records(self) -> list[Any]:
        return [self.render(x) for x in self.items]


@dataclass
class Params:
    """A request's query parameters (blank ones count as absent) and the route they were sent to."""

    raw: dict[str, str]
    route: Route
    zone: dt.tzinfo = dt.timezone.utc
    """The server clock's zone: a timestamp sent with an offset is read as that instant on the server's clock."""

    def get(self, name: str) -> str | None:
        value = self.raw.get(name)
        return value if value not in (None, "") else None

    def int(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise bad_request(f"Invalid value for parameter {name}: must be numeric", "invalid_parameter") from None

    def date(self, name: str) -> dt.date | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            raise bad_request(f"Invalid date for parameter {name}: use YYYY-MM-DD", "invalid_parameter") from None

    def datetime(self, name: str) -> dt.datetime | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value.replace("T", " ").replace("Z", ""))
        except ValueError:
            raise bad_request(f"Invalid date for parameter {name}", "invalid_parameter") from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(self.zone)
        return parsed.replace(tzinfo=None)

    def flag(self, name: str) -> bool | None:
        value = self.get(name)
        if value is None:
            return None
        return value.lower() in ("1", "t", "true", "yes", "y")


def student_sort_key(student: Student) -> tuple[str, str, int]:
    return (student.last_name, student.first_name, student.student_id)


class Api:
    """The query engine behind every GET endpoint (and the state the POST endpoints change)."""

    def __init__(self, district: District, attendance_mode: str = "all") -> None:
        if attendance_mode not in ("all", "exceptions"):
            raise ValueError("attendance_mode must be 'all' or 'exceptions'")
        self.district = district
        self.attendance_mode = attendance_mode
        self.lock = threading.RLock()
        self._cache: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], Selection] = OrderedDict()
        self._cache_version: tuple[int, dt.date] = (-1, dt.date.min)
        self._aux: dict[Any, Any] = {}

    # -- plumbing ----------------------------------------------------------------------------------------------

    @property
    def today(self) -> dt.date:
        return self.district.today

    def nearest(self) -> dt.date:
        return cal.nearest_in_session(self.today)

    def invalidate(self) -> None:
        with self.lock:
            self._cache.clear()
            self._aux.clear()

    def _check_cache(self) -> None:
        version = (self.district.version, self.today)
        if version != self._cache_version:
            self._cache.clear()
            self._aux.clear()
            self._cache_version = version

    def select(self, path: str, params: dict[str, str]) -> Selection:
        route = route_for(path)
        if route is None:
            raise ApiError(404)
        with self.lock:
            self._check_cache()
            key = (path, tuple(sorted((k, v) for k, v in params.items() if k not in PAGING_PARAMS)))
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            p = Params(params, route, self.district.zone)
            for name in route.enforced_required:
                if p.get(name) is None:
                    raise bad_request(f"Missing required parameter: {name}", "missing_parameter")
            for name, needed in route.needs:
                if p.get(name) is not None and p.get(needed) is None:
                    raise bad_request(
                        f"Missing required parameter: {needed} (required with {name})", "missing_parameter"
                    )
            handler = getattr(self, "q_" + route.handler)
            selection: Selection = handler(p, path)
            selection.string_count = path in STRING_COUNT_PATHS
            selection.single_object = route.path in GRADEBOOK_PATHS
            overrides = [o for o in self.district.wire_overrides if o["path"] == route.path]
            if overrides:
                selection.render = _overridden(selection.render, overrides)
            self._cache[key] = selection
            while len(self._cache) > 256:
                self._cache.popitem(last=False)
            return selection

    def query(self, path: str, params: dict[str, str] | None = None) -> list[Any]:
        selection = self.select(path.strip("/"), dict(params or {}))
        with self.lock:
            return selection.records()

    # -- shared filters ------------------------------------------------------------------------------------------

    def window(self, p: Params) -> tuple[dt.date, dt.date] | None:
        """The date window of a request: `date`, or `start_date`/`end_date`, each completed by the route's documented
        default (`date`: the nearest in-session date; Terms' `start_date`/`end_date`: the session's bounds); None
        when nothing is sent and nothing is documented."""
        day = p.date("date")
        if day is not None:
            return day, day
        start, end = p.date("start_date"), p.date("end_date")
        if start is None and end is None and p.route.default("date") == "nearest_in_session":
            near = self.nearest()
            return near, near
        if start is None and p.route.default("start_date") == "session_start":
            start = self.session_bounds()[0]
        if end is None and p.route.default("end_date") == "session_end":
            end = self.session_bounds()[1]
        if start is None and end is None:
            return None
        lo, hi = start or dt.date.min, end or dt.date.max
        if lo > hi:
            raise bad_request("start_date cannot be greater than end_date", "invalid_parameter")
        return lo, hi

    def session_bounds(self) -> tuple[dt.date, dt.date]:
        """The session of the nearest in-session date (normal or summer): the default window of Terms."""
        near = self.nearest()
        year = cal.academic_year(near)
        for sess in (cal.normal_session(year), cal.summer_session(year), cal.normal_session(year + 1)):
            if sess.contains(near):
                return sess.start, sess.end
        return cal.normal_session(year).start, cal.normal_session(year).end

    def roster_students(self, p: Params) -> set[int] | None:
        user_id, section_id, course_id = p.int("user_id"), p.int("section_id"), p.int("course_id")
        local_section = p.get("local_section_id")
        if local_section is not None:
            match = [s.section_id for s in self.district.sections.values() if s.district_section_id == local_section]
            section_id = match[0] if match else -1
        if user_id is None and section_id is None and course_id is None:
            return None
        key = ("roster_students", user_id, section_id, course_id)
        if key not in self._aux:
            self._aux[key] = self.district.students_of_rosters(
                user_id=user_id, section_id=section_id, course_id=course_id
            )
        result: set[int] = self._aux[key]
        return result

    def filter_enrollments(
        self,
        p: Params,
        win: tuple[dt.date, dt.date] | None,
        *,
        site_param: str = "site_id",
        student_param: str = "district_student_id",
    ) -> list[Enrollment]:
        d = self.district.index()
        site_id, grade, student_id = p.int(site_param), p.int("grade_level_id"), p.int("student_id")
        local = p.get(student_param) or p.get("local_student_id")
        allowed = self.roster_students(p)
        out = []
        source = d.enrollments if student_id is None else d.enrollments_of(student_id)
        for e in source:
            if win is not None and not e.overlaps(*win):
                continue
            if site_id is not None and e.site_id != site_id:
                continue
            if grade is not None and e.grade_level_id != grade:
                continue
            if local is not None and e.student.local_id != local:
                continue
            if allowed is not None and e.student.student_id not in allowed:
                continue
            out.append(e)
        return out

    # -- student renderers ---------------------------------------------------------------------------------------

    def student_fields(self, s: Student, year: int) -> Record:
        nul = "NULL"
        rec: Record = {
            "student_id": s.student_id,
            "district_student_id": s.district_student_id,
            "state_student_id": s.state_student_id,
            "last_name": s.last_name,
            "first_name": s.first_name,
            "middle_name": s.middle_name,
            "username": None,
            "email": f"{s.first_name.lower()}.{s.last_name.lower()}{s.student_id}@students.example.org",
            "birth_date": wire_date(s.birth_date),
            "gender": s.gender,
            "ethnicity_1": s.ethnicity,
            "ethnicity_2": None,
            "ethnicity_3": None,
            "ethnicity_4": None,
            "ethnicity_5": None,
            "is_hispanic": wire_flag(s.is_hispanic),
            "primary_language": s.language,
            "correspondence_language": s.language,
            "language_fluency": s.fluency,
            "reclassification_date": wire_date(s.reclassification_date),
        }
        disability_key = "primary_disibility" if s.student_id % 2 == 0 else "primary_disability"
        current = s.disability if s.sped == "current" else None
        rec[disability_key] = current[0] if current else None
        rec["primary_disability_translation"] = current[1] if current else None
        rec.update(
            {
                "us_school_entry_date": (
                    wire_date(s.district_entry_date) if s.birth_country.startswith("United") else None
                ),
                "state_school_entry_date": wire_date(s.district_entry_date),
                "school_entry_date": wire_date(s.district_entry_date),
                "district_entry_date": wire_date(s.district_entry_date),
                "parent_education_level": s.parent_education,
                "birth_city": s.birth_city,
                "birth_state": s.birth_state,
                "birth_country": s.birth_country,
                "academic_year": year,
                "full_address": s.address,
                "aka_first_name": s.first_name[:3] if s.aka else nul,
                "aka_middle_name": nul,
                "aka_last_name": s.last_name if s.aka else nul,
                "name_suffix": nul,
                "aka_name_suffix": nul,
                "cellphone": nul if s.student_id % 5 else f"714555{s.student_id % 10000:04d}",
                "local_lunch_id": s.lunch_id,
            }
        )
        return rec

    def homeroom(self, s: Student, year: int) -> tuple[str | None, int | None]:
        d = self.district.index()
        for r in d.rosters_by_student.get(s.student_id, []):
            if r.section.term.academic_year == year and r.section.period in ("All Day", "1"):
                user = d.users[r.section.primary_user_id]
                return f"{user.last_name}, {user.first_name}", user.user_id
        return None, None

    # -- endpoints: reference lists --------------------------------------------------------------------------------

    def q_sites(self, p: Params, path: str) -> Selection:
        def render(s: Any) -> Record:
            return {
                "site_id": s.site_id,
                "site_name": s.name,
                "state_school_id": s.state_school_id,
                "start_grade_level_id": s.start_grade_level_id,
                "end_grade_level_id": s.end_grade_level_id,
                "site_type_name": s.site_type_name,
                "address": s.address,
                "address2": None,
                "city": s.city,
                "state": "CA",
                "zip": s.zip,
                "local_site_code": s.local_site_code,
                "num_hours": None if s.level == "district" else 1080,
                "num_weeks": None if s.level == "district" else 36,
                "parent_site_id": 1,
            }

        return Selection(sorted(self.district.sites.values(), key=lambda s: s.site_id), render, "list")

    def q_grade_levels(self, p: Params, path: str) -> Selection:
        def render(g: Any) -> Record:
            return {
                "grade_level_id": g.grade_level_id,
                "short_name": g.short_name,
                "long_name": g.long_name,
                "standard_age": 5 + g.number,
                "state_id": "KN" if g.number == 0 else g.number,
                "sort_order": g.grade_level_id + 1,
            }

        return Selection(self.district.grade_levels, render, "list")

    def q_attendance_flags(self, p: Params, path: str) -> Selection:
        return Selection(FLAGS, dict, "list")

    # -- students --------------------------------------------------------------------------------------------------

    def _student_years(self, p: Params) -> list[tuple[Student, Enrollment]]:
        win = self.window(p)
        seen: dict[tuple[int, int], Enrollment] = {}
        for e in self.filter_enrollments(p, win):
            seen.setdefault((e.student.student_id, e.academic_year), e)
        items = [(e.student, e) for e in seen.values()]
        items.sort(key=lambda x: (*student_sort_key(x[0]), x[1].academic_year))
        return items

    def q_students(self, p: Params, path: str) -> Selection:
        def render(item: tuple[Student, Enrollment]) -> Record:
            s, e = item
            rec = self.student_fields(s, e.academic_year)
            name, uid = self.homeroom(s, e.academic_year)
            rec["current_homeroom_teacher"] = name
            rec["current_homeroom_teacher_id"] = uid
            return rec

        return Selection(self._student_years(p), render, "paged")

    def q_students2(self, p: Params, path: str) -> Selection:
        programs = bool(p.flag("include_programs"))

        def render(item: tuple[Student, Enrollment]) -> Record:
            s, e = item
            rec = self.student_fields(s, e.academic_year)
            if programs:
                rec.update(
                    {
                        "gifted_slash_talented": "Y" if s.gifted else "N",
                        "mobility": "Y" if s.mobility else "N",
                        "lunch_status": s.lunch_status,
                        "plan": "Y" if s.plan_504 else "N",
                        "service_code": "SE" if s.sped == "current" else "GE",
                    }
                )
            return rec

        return Selection(self._student_years(p), render, "paged")

    def q_student_contacts(self, p: Params, path: str) -> Selection:
        d = self.district.index()
        # StudentContacts documents no date parameter; the documentation's general rule applies: "If date request
        # parameters are not used, the system will assume you want data for the nearest in session date."
        near = self.nearest()
        win = (near, near)
        site_id = p.int("site_id")
        sites: dict[int, int] = {}
        for e in d.enrollments:
            if win is not None and e.overlaps(*win) and (site_id is None or e.site_id == site_id):
                sites.setdefault(e.student.student_id, e.site_id)
        wanted = {name: p.flag(name) for name in ("legal_guardian", "emergency_contact", "resides_with")}
        items: list[tuple[Contact, int]] = []
        for sid, site in sites.items():
            for c in d.contacts_by_student.get(sid, []):
                if any(v is not None and getattr(c, k) != v for k, v in wanted.items()):
                    continue
                items.append((c, site))
        items.sort(key=lambda x: (*student_sort_key(x[0].student), x[0].contact_id))

        def render(item: tuple[Contact, int]) -> Record:
            c, site = item
            s = c.student
            street = s.address.split(",")[0]
            return {
                "student_id": str(s.student_id),
                "district_student_id": s.local_id,
                "site_id": str(site),
                "correspondence_language_code": c.language[0],
                "contact_id": str(c.contact_id),
                "contact_first_name": c.first_name,
                "contact_middle_name": c.middle_name,
                "contact_last_name": c.last_name,
                "contact_name_prefix": c.prefix,
                "contact_name_suffix": c.suffix,
                "relationship": c.relationship,
                "address": street,
                "address_2": "",
                "city": s.address.split(", ")[1],
                "state": "CA",
                "zip": s.address[-5:],
                "email_address": c.email,
                "home_phone_1": c.home_phone,
                "home_phone_2": None,
                "work_phone_1": c.work_phone,
                "work_phone_2": None,
                "mobile_phone_1": c.mobile_phone,
                "mobile_phone_2": None,
                "resides_with": wire_flag(c.resides_with),
                "legal_guardian": wire_flag(c.legal_guardian),
                "emergency_contact": wire_flag(c.emergency_contact),
                "is_primary": wire_flag(c.is_primary),
                "is_mailing": wire_flag(c.is_primary),
                "mailing_address": street if c.is_primary else "",
                "mailing_address_2": "",
                "mailing_city": s.address.split(", ")[1] if c.is_primary else "",
                "mailing_state": "CA" if c.is_primary else "",
                "mailing_zip": s.address[-5:] if c.is_primary else "",
            }

        return Selection(items, render, "paged")

    def q_program_code(self, p: Params, path: str) -> Selection:
        d = self.district.index()
        start, end = p.date("enrollment_start_date"), p.date("enrollment_end_date")
        assert start is not None and end is not None
        if start > end:
            raise bad_request("enrollment_start_date cannot be greater than enrollment_end_date", "invalid_parameter")
        pstart, pend = p.date("program_start_date"), p.date("program_end_date")
        items = []
        for e in self.filter_enrollments(p, (start, end)):
            for prog in d.programs_by_student.get(e.student.student_id, []):
                p_end = prog.participation_end or dt.date.max
                if prog.participation_start > e.leave_date or p_end < e.entry_date:
                    continue
                if pstart is not None and p_end < pstart:
                    continue
                if pend is not None and prog.participation_start > pend:
                    continue
                items.append((e, prog))
        items.sort(key=lambda x: (*student_sort_key(x[0].student), x[0].entry_date, x[1].code, x[1].eligibility_start))

        def render(item: Any) -> Record:
            e, prog = item
            s = e.student
            return {
                "enrollment_site_id": str(e.site_id),
                "enrollment_entry_date": wire_date(e.entry_date),
                "enrollment_leave_date": wire_date(e.leave_date),
                "student_id": str(s.student_id),
                "district_student_id": s.local_id,
                "state_student_id": str(s.state_student_id),
                "program_code": prog.code,
                "program_description": prog.description,
                "eligibility_start_date": wire_date(prog.eligibility_start),
                "eligibility_end_date": wire_date(prog.eligibility_end),
                "participation_start_date": wire_date(prog.participation_start),
                "participation_end_date": wire_date(prog.participation_end),
            }

        return Selection(items, render, "paged")

    def q_student_counselors(self, p: Params, path: str) -> Selection:
        win = self.window(p)
        sid, local = p.int("student_id"), p.get("district_student_id")
        cid, dcid = p.int("counselor_id"), p.get("district_counselor_id")
        items = []
        for span in self.district.counselor_spans:
            end = span.end or dt.date.max
            if win is not None and (span.start > win[1] or end < win[0]):
                continue
            if sid is not None and span.student.student_id != sid:
                continue
            if local is not None and span.student.local_id != local:
                continue
            if cid is not None and span.counselor.user_id != cid:
                continue
            if dcid is not None and span.counselor.district_user_id != dcid:
                continue
            items.append(span)
        items.sort(key=lambda x: (*student_sort_key(x.student), x.start))

        def render(span: Any) -> Record:
            s, c = span.student, span.counselor
            return {
                "student_id": s.student_id,
                "district_student_id": s.district_student_id,
                "state_student_id": s.state_student_id,
                "last_name": s.last_name,
                "first_name": s.first_name,
                "middle_name": s.middle_name,
                "counselor_id": c.user_id,
                "district_counselor_id": c.district_user_id,
                "counselor_last_name": c.last_name,
                "counselor_name": c.first_name,
                "counselor_email": c.email,
                "start_date": wire_date(span.start),
                "end_date": wire_date(span.end),
            }

        return Selection(items, render, "paged")

    def q_student_special_ed(self, p: Params, path: str) -> Selection:
        win = self.window(p)
        want = p.int("is_specialed")
        seen: dict[int, Student] = {}
        for e in self.filter_enrollments(p, win, student_param="local_student_id"):
            s = e.student
            if s.sped is None:
                continue
            if want is not None and (s.sped == "current") != bool(want):
                continue
            seen.setdefault(s.student_id, s)
        items = sorted(seen.values(), key=student_sort_key)

        def render(s: Student) -> Record:
            current = s.sped == "current"
            return {
                "student_id": s.student_id,
                "local_student_id": s.local_id,
                "district_student_id": s.district_student_id,
                "state_student_id": s.state_student_id,
                "last_name": s.last_name,
                "first_name": s.first_name,
                "middle_name": s.middle_name,
                "username": f"{s.first_name[0].lower()}{s.last_name.lower()}{s.student_id}",
                "email": f"{s.first_name.lower()}.{s.last_name.lower()}{s.student_id}@students.example.org",
                "birth_date": wire_date(s.birth_date),
                "gender": s.gender,
                "primary_disability": s.disability[1] if current and s.disability else None,
                "primary_disability_state_code": s.disability[2] if current and s.disability else None,
                "is_specialed": 1 if current else 0,
                "exit_date": wire_date(s.sped_exit),
            }

        return Selection(items, render, "paged")

    # -- staff --------------------------------------------------------------------------------------------

    def q_users(self, p: Params, path: str) -> Selection:
        uid, duid = p.int("user_id"), p.get("district_user_id")
        items = [
            u
            for u in sorted(self.district.users.values(), key=lambda u: u.user_id)
            if (uid is None or u.user_id == uid) and (duid is None or u.district_user_id == duid)
        ]

        def render(u: Any) -> Record:
            return {
                "user_id": u.user_id,
                "district_user_id": u.district_user_id,
                "last_name": u.last_name,
                "first_name": u.first_name,
                "middle_name": u.middle_name,
                "birth_date": wire_date(u.birth_date),
                "gender": u.gender,
                "email1": u.email,
                "email2": None,
                "phone1": u.phone,
                "phone2": None,
                "username": u.username,
                "state_user_id": u.state_user_id,
                "suffix": None,
                "name_former_last": None,
                "name_former_first": None,
                "name_former_middle": None,
                "primary_ethnicity": u.ethnicity,
                "is_hispanic": wire_flag(u.is_hispanic),
                "address": None,
                "city": None,
                "state": None,
                "zip": None,
                "job_title": u.job_title,
                "staff_education_level": u.education_level,
                "hire_date": wire_date(u.hire_date),
                "exit_date": wire_date(u.exit_date),
                "active": wire_flag(u.exit_date is None),
                "account_id": u.account_id,
            }

        return Selection(items, render, "paged")

    def q_user_roles(self, p: Params, path: str) -> Selection:
        uid, duid, year = p.int("user_id"), p.get("district_user_id"), p.int("academic_year")
        site, term, role = p.int("site_id"), p.int("term_id"), p.int("role_id")
        items = []
        for u in sorted(self.district.users.values(), key=lambda u: u.user_id):
            if (uid is not None and u.user_id != uid) or (duid is not None and u.district_user_id != duid):
                continue
            for r in sorted(u.roles):
                if (site is not None and r[0] != site) or (year is not None and r[1] != year):
                    continue
                if (term is not None and r[2] != term) or (role is not None and r[3] != role):
                    continue
                items.append((u, r))

        def render(item: Any) -> Record:
            u, r = item
            return {
                "user_id": u.user_id,
                "district_user_id": u.district_user_id,
                "site_id": str(r[0]),
                "academic_year": str(r[1]),
                "term_id": str(r[2]),
                "role_id": str(r[3]),
                "role_name": r[4],
            }

        return Selection(items, render, "paged")

    def _requested_user(self, p: Params) -> Any:
        uid = p.int("user_id")
        user = self.district.users.get(uid or -1)
        if user is None:
            raise ApiError(404)
        return user

    def q_school_focus_permissions(self, p: Params, path: str) -> Selection:
        user = self._requested_user(p)
        admin = user.job_title != "Teacher"
        doc = {
            "module": True,
            "create": True,
            "view": True,
            "update": True,
            "delete": admin,
            "erase": False,
            "no_photo": False,
            "no_video": False,
            "review": admin,
            "download": admin,
            "search": True,
        }
        return Selection([doc], lambda x: x, "document")

    def q_school_focus_sites(self, p: Params, path: str) -> Selection:
        user = self._requested_user(p)
        sites = sorted({r[0] for r in user.roles})
        doc: Any = {str(s): self.district.sites[s].name for s in sites} or []
        return Selection([doc], lambda x: x, "document")

    # -- schedule --------------------------------------------------------------------------------------------

    def _section_filter(self, p: Params) -> Callable[[Section], bool]:
        site, sec_id, course = p.int("site_id"), p.int("section_id"), p.int("course_id")
        grade, user, local = p.int("grade_level_id"), p.int("user_id"), p.get("local_section_id")
        name = p.get("section_name")
        student = p.int("student_id")
        student_sections = None
        if student is not None:
            student_sections = {r.section.section_id for r in self.district.index().rosters_by_student.get(student, [])}

        def matches(s: Section) -> bool:
            return (
                (site is None or s.site_id == site)
                and (sec_id is None or s.section_id == sec_id)
                and (course is None or s.course.course_id == course)
                and (grade is None or s.grade_level_id == grade)
                and (user is None or any(t.user_id == user for t in s.teachers))
                and (local is None or s.district_section_id == local)
                and (name is None or s.section_name == name)
                and (student_sections is None or s.section_id in student_sections)
            )

        return matches

    def q_terms(self, p: Params, path: str) -> Selection:
        win = self.window(p)
        d = self.district
        section_keys = None
        if any(
            p.get(k) is not None
            for k in ("user_id", "student_id", "section_id", "local_section_id", "course_id", "grade_level_id")
        ):
            ok = self._section_filter(p)
            section_keys = {s.term.term_id for s in d.sections.values() if ok(s)}
        site = p.int("site_id")
        items = [
            t
            for t in sorted(d.terms.values(), key=lambda t: t.term_id)
            if (win is None or (t.start <= win[1] and t.end >= win[0]))
            and (site is None or t.site_id == site)
            and (section_keys is None or t.term_id in section_keys)
        ]

        def render(t: Any) -> Record:
            return {
                "term_id": t.term_id,
                "site_id": t.site_id,
                "term_name": t.name,
                "term_num": t.num,
                "start_date": wire_date(t.start),
                "end_date": wire_date(t.end),
                "term_type": t.term_type,
                "session_type_id": t.session_type_id,
                "session_type": cal.SESSION_TYPE_NAMES[t.session_type_id],
                "academic_year": t.academic_year,
                "district_term_id": None,
            }

        return Selection(items, render, "paged")

    def q_courses(self, p: Params, path: str) -> Selection:
        win = self.window(p)
        ok = self._section_filter(p)
        ids = {
            s.course.course_id
            for s in self.district.sections.values()
            if ok(s) and (win is None or any(t.start <= win[1] and t.end >= win[0] for t in s.teachers))
        }
        items = [self.district.courses[c] for c in sorted(ids)]

        def render(c: Any) -> Record:
            return {
                "course_id": c.course_id,
                "school_course_id": c.school_course_id,
                "long_name": c.long_name,
                "short_name": c.short_name,
                "department_name": c.department,
                "start_grade_level_id": c.start_grade_level_id,
                "end_grade_level_id": c.end_grade_level_id,
                "site_ids": ", ".join(sorted(str(s) for s in c.site_ids)),
                "is_active": "t",
                "weight": None,
                "description": None,
                "credits": c.credits,
                "has_variable_credits": "f",
                "max_credits": c.credits,
                "is_specialed": "f",
                "max_capacity": 30,
                "is_intervention": wire_flag(c.department == "Summer"),
                "nclb_instructional_level": f"{c.level.title()} NCLB Core Academic Course",
                "course_content": None,
                "educational_service": None,
                "instructional_strategy": None,
                "program_funding_source": None,
                "cte_funding_provider": None,
                "tech_prep": "f",
            }

        return Selection(items, render, "paged")

    def q_enrollment(self, p: Params, path: str) -> Selection:
        win = self.window(p)
        items = self.filter_enrollments(p, win)
        items.sort(key=lambda e: (*student_sort_key(e.student), e.entry_date, e.site_id))
        sites = self.district.sites

        def render(e: Enrollment) -> Record:
            s = e.student
            return {
                "student_id": s.student_id,
                "district_student_id": s.district_student_id,
                "state_student_id": s.state_student_id,
                "last_name": s.last_name,
                "first_name": s.first_name,
                "middle_name": s.middle_name,
                "birth_date": wire_date(s.birth_date),
                "site_id": e.site_id,
                "entry_date": wire_date(e.entry_date),
                "leave_date": wire_date(e.leave_date),
                "grade_level_id": e.grade_level_id,
                "academic_year": e.academic_year,
                "is_primary_ada": wire_flag(e.session_type_id == cal.NORMAL),
                "attendance_category": "Regular Attendance Program",
                "enrollment_exit_reason": e.exit_reason,
                "session_type_id": e.session_type_id,
                "school": sites[e.site_id].name,
                "entry_code": e.entry_code,
                "exit_code": e.exit_code,
            }

        return Selection(items, render, "paged")

    def q_master_schedule(self, p: Params, path: str) -> Selection:
        win = self.window(p)
        ok = self._section_filter(p)
        user = p.int("user_id")
        items = []
        for s in sorted(self.district.sections.values(), key=lambda s: s.section_id):
            if not ok(s):
                continue
            for t in s.teachers:
                if (win is None or (t.start <= win[1] and t.end >= win[0])) and (user is None or t.user_id == user):
                    items.append((s, t))

        def render(item: Any) -> Record:
            s, t = item
            return {
                "section_id": s.section_id,
                "district_section_id": s.district_section_id,
                "site_id": s.site_id,
                "term_id": s.term.term_id,
                "term_name": s.term.name,
                "course_id": s.course.course_id,
                "user_id": t.user_id,
                "period": s.period,
                "academic_year": s.term.academic_year,
                "room_number": s.room,
                "session_type_id": s.term.session_type_id,
                "district_term_id": None,
                "quarter_num": None,
                "user_start_date": wire_date(t.start),
                "user_end_date": wire_date(t.end),
                "primary_teacher": wire_flag(t.primary),
                "section_name": s.section_name,
                "hqtcc": "Y" if s.section_id % 4 == 0 else "N",
            }

        return Selection(items, render, "paged")

    def q_roster(self, p: Params, path: str) -> Selection:
        win = self.window(p)
        ok = self._section_filter(p)
        d = self.district.index()
        sid, local = p.int("student_id"), p.get("district_student_id")
        source = d.rosters if sid is None else d.rosters_by_student.get(sid, [])
        items = [
            r
            for r in source
            if (win is None or r.overlaps(*win))
            and ok(r.section)
            and (local is None or r.student.local_id == local)
            and (p.int("grade_level_id") is None or r.enrollment.grade_level_id == p.int("grade_level_id"))
        ]
        items.sort(key=lambda r: (*student_sort_key(r.student), r.section.section_id, r.entry_date))

        def render(r: Roster) -> Record:
            s, sec = r.student, r.section
            return {
                "student_id": s.student_id,
                "district_student_id": s.district_student_id,
                "state_student_id": s.state_student_id,
                "last_name": s.last_name,
                "first_name": s.first_name,
                "middle_name": s.middle_name,
                "birth_date": wire_date(s.birth_date),
                "section_id": sec.section_id,
                "local_section_id": sec.district_section_id,
                "site_id": sec.site_id,
                "course_id": sec.course.course_id,
                "user_id": sec.primary_user_id,
                "entry_date": wire_date(r.entry_date),
                "leave_date": wire_date(r.leave_date),
                "grade_level_id": r.enrollment.grade_level_id,
                "academic_year": sec.term.academic_year,
                "session_type_id": sec.term.session_type_id,
            }

        return Selection(items, render, "paged")

    # -- assessments ---------------------------------------------------------------------------------------------

    def q_assessments(self, p: Params, path: str) -> Selection:
        aid, local, author = p.int("assessment_id"), p.get("local_assessment_id"), p.int("author_id")
        dauthor, subject, scope = p.get("district_author_id"), p.int("subject_id"), p.int("scope_id")
        items = [
            a
            for a in sorted(self.district.assessments.values(), key=lambda a: a.assessment_id)
            if (aid is None or a.assessment_id == aid)
            and (local is None or a.local_assessment_id == local)
            and (author is None or a.author.user_id == author)
            and (dauthor is None or a.author.district_user_id == dauthor)
            and (subject is None or a.subject_id == subject)
            and (scope is None or a.scope_id == scope)
        ]

        def render(a: Assessment) -> Record:
            return {
                "assessment_id": str(a.assessment_id) if a.assessment_id % 7 == 3 else a.assessment_id,
                "local_assessment_id": a.local_assessment_id,
                "title": a.title,
                "description": a.description,
                "author_id": a.author.user_id,
                "district_author_id": a.author.district_user_id,
                "author_first": a.author.first_name,
                "author_last": a.author.last_name,
                "scope_id": a.scope_id,
                "scope": a.scope,
                "subject_id": a.subject_id,
                "subject": a.subject,
                "grade_levels": ", ".join("K" if g == 1 else str(g - 1) for g in a.grade_level_ids),
                "created_at": wire_timestamp(a.created_at),
                "updated_at": wire_timestamp(a.updated_at),
            }

        return Selection(items, render, "paged")

    @staticmethod
    def _taken_window(p: Params) -> tuple[dt.date, dt.date] | None:
        """`date_taken_start`/`date_taken_end`: the only parameters filtering assessment results by date taken."""
        start, end = p.date("date_taken_start"), p.date("date_taken_end")
        if start is None and end is None:
            return None
        return start or dt.date.min, end or dt.date.max

    def _tested_students(self, p: Params) -> set[int] | None:
        """The student set of an aggregate endpoint: `date`/`start_date`/`end_date` select students by enrollment
        (an enrollment active on `date`, or overlapping `[start_date, end_date]`); without them, the route's default
        (the students enrolled on the nearest in-session date), or every student where none is documented. A student
        who tested and then left the district is therefore not in the default set."""
        window = self.window(p)
        if window is None:
            return None
        key = ("enrolled_students", window)
        students: set[int] | None = self._aux.get(key)
        if students is None:
            students = self._aux[key] = {
                e.student.student_id for e in self.district.index().enrollments if e.overlaps(*window)
            }
        return students

    def _results(self, p: Params) -> list[Result]:
        win = self._taken_window(p)
        enrolled = self._tested_students(p)
        after = p.datetime("modified_after")
        aid, sid = p.int("assessment_id"), p.int("student_id")
        local, site, grade = p.get("local_student_id"), p.int("site_id"), p.int("grade_level_id")
        allowed = self.roster_students(p)
        out = [
            r
            for r in self.district.results
            if (win is None or win[0] <= r.date_taken <= win[1])
            and (after is None or r.modified_at >= after)
            and (enrolled is None or r.student.student_id in enrolled)
            and (aid is None or r.assessment.assessment_id == aid)
            and (sid is None or r.student.student_id == sid)
            and (local is None or r.student.local_id == local)
            and (site is None or r.site_id == site)
            and (grade is None or r.grade_level_id == grade)
            and (allowed is None or r.student.student_id in allowed)
        ]
        out.sort(key=lambda r: (r.assessment.assessment_id, *student_sort_key(r.student), r.date_taken))
        return out

    @staticmethod
    def _score_fields(title: str, points: int, possible: int, bands: list[Band]) -> Record:
        percent = 100.0 * points / possible if possible else 0.0
        band = band_for(bands, percent)
        return {
            "points": str(points),
            "points_possible": str(possible),
            "percent_correct": f"{percent:.2f}",
            "performance_band_level": str(band.number),
            "performance_band_label": band.label,
            "mastered": wire_flag(band.is_mastery),
        }

    @staticmethod
    def _student_names(s: Student) -> Record:
        """The fields that name the student in every assessment result record."""
        return {
            "local_student_id": s.local_id,
            "first_name": s.first_name,
            "last_name": s.last_name,
            "middle_name": s.middle_name,
        }

    def q_assessment_aggregate_student_responses(self, p: Params, path: str) -> Selection:
        def render(r: Result) -> Record:
            a = r.assessment
            points, possible = self.district.result_percent(r)
            return {
                "assessment_id": str(a.assessment_id),
                "title": a.title,
                **self._student_names(r.student),
                "version": str(r.version),
                "version_label": f"Version {r.version}",
                "date_taken": wire_date(r.date_taken),
                **self._score_fields(a.title, points, possible, a.bands),
            }

        return Selection(self._results(p), render, "paged")

    def q_assessment_aggregate_student_responses_group(self, p: Params, path: str) -> Selection:
        results = self._results(p)
        expanded = Expanded(results, [len(r.assessment.groups) for r in results])

        def render(item: tuple[Result, int]) -> Record:
            r, k = item
            a = r.assessment
            label = a.groups[k]
            points, possible = self.district.result_percent(r, [i for i, f in enumerate(a.fields) if f.group == label])
            return {
                "assessment_id": str(a.assessment_id),
                "title": a.title,
                "reporting_group": label,
                **self._student_names(r.student),
                "date_taken": wire_date(r.date_taken),
                **self._score_fields(a.title, points, possible, a.bands),
            }

        return Selection(expanded, render, "paged")

    def q_assessment_aggregate_student_responses_standard(self, p: Params, path: str) -> Selection:
        results = self._results(p)
        expanded = Expanded(results, [len(r.assessment.standards) for r in results])

        def render(item: tuple[Result, int]) -> Record:
            r, k = item
            a = r.assessment
            std = a.standards[k]
            aligned = [i for i, f in enumerate(a.fields) if f.standard == std.guid]
            points, possible = self.district.result_percent(r, aligned)
            return {
                "assessment_id": str(a.assessment_id),
                "title": a.title,
                "academic_benchmark_guid": std.guid,
                "standard_code": std.code,
                "standard_description": std.description,
                **self._student_names(r.student),
                "date_taken": wire_date(r.date_taken),
                **self._score_fields(a.title, points, possible, a.bands),
            }

        return Selection(expanded, render, "paged")

    def _pool_results(self, p: Params) -> list[PoolResult]:
        win = self._taken_window(p)
        enrolled = self._tested_students(p)
        pid, sid = p.int("pool_assessment_id"), p.int("student_id")
        local, site, grade = p.get("local_student_id"), p.int("site_id"), p.int("grade_level_id")
        allowed = self.roster_students(p)
        out = [
            r
            for r in self.district.pool_results
            if (win is None or win[0] <= r.date_taken <= win[1])
            and (enrolled is None or r.student.student_id in enrolled)
            and (pid is None or r.pool.pool_assessment_id == pid)
            and (sid is None or r.student.student_id == sid)
            and (local is None or r.student.local_id == local)
            and (site is None or r.site_id == site)
            and (grade is None or r.grade_level_id == grade)
            and (allowed is None or r.student.student_id in allowed)
        ]
        out.sort(key=lambda r: (r.pool.pool_assessment_id, *student_sort_key(r.student), r.date_taken))
        return out

    def q_pool_assessment_aggregate_student_responses(self, p: Params, path: str) -> Selection:
        def render(r: PoolResult) -> Record:
            pool = r.pool
            end = r.start_time + dt.timedelta(minutes=r.minutes, seconds=r.student.student_id % 60)
            return {
                "pool_assessment_id": str(pool.pool_assessment_id),
                "title": pool.title,
                **self._student_names(r.student),
                "date_taken": wire_date(r.date_taken),
                **self._score_fields(pool.title, sum(r.standard_points), 10 * len(r.standard_points), pool.bands),
                "start_time": wire_timestamp(r.start_time) + "+08",
                "end_time": wire_timestamp(end) + "+08",
                "minutes_elapsed": str(r.minutes),
                "student_pauses": str(r.pauses),
            }

        return Selection(self._pool_results(p), render, "paged")

    def q_pool_assessment_aggregate_student_responses_standard(self, p: Params, path: str) -> Selection:
        results = self._pool_results(p)
        expanded = Expanded(results, [len(r.pool.standards) for r in results])

        def render(item: tuple[PoolResult, int]) -> Record:
            r, k = item
            std = r.pool.standards[k]
            return {
                "pool_assessment_id": str(r.pool.pool_assessment_id),
                "title": r.pool.title,
                "academic_benchmark_guid": std.guid,
                "standard_code": std.code,
                "standard_description": std.description,
                **self._student_names(r.student),
                "date_taken": wire_date(r.date_taken),
                **self._score_fields(r.pool.title, r.standard_points[k], 10, r.pool.bands),
            }

        return Selection(expanded, render, "paged")

    def q_assessment_view(self, p: Params, path: str) -> Selection:
        try:
            aid = int(path.split("/")[1])
        except ValueError:
            raise ApiError(404) from None
        a = self.district.assessments.get(aid)
        if a is None:
            raise ApiError(404)
        return Selection([a], self.view_document, "document")

    def view_document(self, a: Assessment) -> Record:
        created, updated = wire_timestamp(a.created_at), wire_timestamp(a.updated_at)
        order2 = a.version_order(2)
        fields = []
        for f in a.fields:
            if f.is_rubric:
                responses = [
                    {
                        "points": str(v),
                        "choice": None,
                        "rationale": None,
                        "version_number": str(ver),
                        "response": str(v),
                    }
                    for v in range(1, f.maximum + 1)
                    for ver in (1, 2)
                ]
                sheet = "{" + ",".join(str(v) for v in range(1, f.maximum + 1)) + ',"",""}'
            else:
                responses = [
                    {
                        "points": "1",
                        "choice": None,
                        "rationale": None,
                        "version_number": str(ver),
                        "response": f.key[ver],
                    }
                    for ver in (1, 2)
                ]
                sheet = "{A,B,C,D,E}"
            fields.append(
                {
                    "order": str(f.order),
                    "maximum": str(f.maximum),
                    "created_at": created,
                    "updated_at": updated,
                    "body": None,
                    "sort_order": f"{{{f.order},{order2.index(f.order)}}}",
                    "is_rubric": f.is_rubric,
                    "sheet_label": str(f.order + 1),
                    "sheet_responses": sheet,
                    "responses": responses,
                    "standards": [f.standard],
                    "groups": [f.group],
                }
            )
        return {
            "exported_at": wire_timestamp(self.district.now()),
            "version": 4,
            "performance_band_sets": [
                {
                    "performance_band_set_id": "1",
                    "description": "Imported District Default",
                    "performance_bands": [
                        {
                            "minimum_value": str(b.minimum),
                            "label": b.label,
                            "label_number": str(b.number),
                            "color": b.color,
                            "is_mastery": b.is_mastery,
                        }
                        for b in a.bands
                    ],
                }
            ],
            "assessment": {
                "title": a.title,
                "description": a.description,
                "created_at": created,
                "updated_at": updated,
                "administered_at": wire_date(a.administered_at),
                "academic_year": str(a.academic_year),
                "guid": a.guid,
                "tags": a.subject,
                "performance_band_set_id": "1",
                "subject_area": a.subject,
                "scope": a.scope,
                "grade_levels": ["K" if g == 1 else str(g - 1) for g in a.grade_level_ids],
                "standards": [{"guid": s.guid, "performance_band_set_id": "1"} for s in a.standards],
                "groups": [
                    {"sort_order": str(i), "performance_band_set_id": "1", "label": g} for i, g in enumerate(a.groups)
                ],
                "versions": [
                    {"number": str(v), "label": f"Version {v}", "created_at": created, "updated_at": created}
                    for v in (1, 2)
                ],
                "fields": fields,
            },
        }

    # -- attendance --------------------------------------------------------------------------------------------

    def _contact_fields(self, s: Student) -> Record:
        """A student's primary-contact fields of attendance rows, built once per student (a mutation clears them)."""
        key = ("contact", s.student_id)
        fields: Record | None = self._aux.get(key)
        if fields is None:
            fields = self._aux[key] = self._build_contact_fields(s)
        return fields

    def _build_contact_fields(self, s: Student) -> Record:
        c = self.district.primary_contact(s.student_id)
        if c is None:
            return {
                k: None
                for k in (
                    "contact_first_name",
                    "contact_middle_name",
                    "contact_last_name",
                    "contact_name_suffix",
                    "contact_email_address",
                    "contact_name_prefix",
                    "contact_gender",
                    "contact_birth_date",
                    "email_opt_out",
                    "contact_type_code",
                    "contact_type",
                    "correspondence_language_code",
                    "correspondence_language",
                    "marital_status_code",
                    "marital_status",
                    "address",
                    "address_2",
                    "city",
                    "zip",
                    "state",
                    "household_name",
                    "local_dwelling_block_id",
                    "dwelling_block_name",
                    "contact_phone",
                    "contact_phone_type_code",
                    "contact_phone_type",
                )
            }
        phone, ptype = (
            (c.mobile_phone, ("C", "Cellular"))
            if c.mobile_phone
            else (c.home_phone, ("H", "Home"))
            if c.home_phone
            else (c.work_phone or "", ("W", "Work"))
        )
        return {
            "contact_first_name": c.first_name,
            "contact_middle_name": c.middle_name,
            "contact_last_name": c.last_name,
            "contact_name_suffix": c.suffix,
            "contact_email_address": c.email,
            "contact_name_prefix": c.prefix,
            "contact_gender": c.gender,
            "contact_birth_date": wire_date(c.birth_date),
            "email_opt_out": wire_flag(c.email_opt_out),
            "contact_type_code": c.type_code,
            "contact_type": c.relationship.upper(),
            "correspondence_language_code": c.language[0],
            "correspondence_language": c.language[1],
            "marital_status_code": c.marital[0],
            "marital_status": c.marital[1],
            "address": s.address.split(",")[0],
            "address_2": "",
            "city": s.address.split(", ")[1],
            "zip": s.address[-5:],
            "state": "CA",
            "household_name": "",
            "local_dwelling_block_id": "",
            "dwelling_block_name": "",
            "contact_phone": phone,
            "contact_phone_type_code": ptype[0],
            "contact_phone_type": ptype[1],
        }

    def _attendance_student(self, s: Student, flag: str, site_id: str, day: str) -> Record:
        """The leading fields of an attendance row; `site_id` and `day` come formatted, the student's part is cached."""
        key = ("attendance_student", s.student_id)
        names: tuple[str, str, str, str, str | None, str | None, str] | None = self._aux.get(key)
        if names is None:
            names = self._aux[key] = (
                s.local_id,
                str(s.student_id),
                s.last_name,
                s.first_name,
                s.middle_name,
                wire_date(s.birth_date),
                s.gender,
            )
        local_id, student_id, last, first, middle, birth, gender = names
        return {
            "district_student_id": local_id,
            "illuminate_student_id": student_id,
            "flag_code": flag,
            "flag_title": FLAG_TITLES[flag],
            "site_id": site_id,
            "date": day,
            "last_name": last,
            "first_name": first,
            "middle_name": middle,
            "birth_date": birth,
            "gender": gender,
        }

    def _attendance_section_fields(self, sec: Section) -> Record:
        """The section and teacher fields of a section attendance row, built once per section."""
        key = ("attendance_section", sec.section_id)
        fields: Record | None = self._aux.get(key)
        if fields is None:
            teacher = self.district.index().users[sec.primary_user_id]
            fields = self._aux[key] = {
                "section_id": str(sec.section_id),
                "local_section_id": sec.district_section_id,
                "course_id": str(sec.course.course_id),
                "course_short_name": sec.course.short_name,
                "timeblocks": "1" if sec.period == "All Day" else sec.period,
                "teacher_first_name": teacher.first_name,
                "teacher_last_name": teacher.last_name,
            }
        return fields

    def q_attendance_daily(self, p: Params, path: str) -> Selection:
        day = p.date("date")
        assert day is not None
        d = self.district.index()
        items: list[tuple[Enrollment, str]] = []
        if day <= self.today:
            site, grade, sid, code = p.int("site_id"), p.int("grade_level_id"), p.int("student_id"), p.get("flag_code")
            allowed = self.roster_students(p)
            year = cal.academic_year(day)
            for e in d.enrollments_by_year.get(year, []):
                if not e.active_on(day) or not cal.is_instructional(day, e.session_type_id):
                    continue
                if (site is not None and e.site_id != site) or (grade is not None and e.grade_level_id != grade):
                    continue
                if sid is not None and e.student.student_id != sid:
                    continue
                if allowed is not None and e.student.student_id not in allowed:
                    continue
                flag = d.daily_flag(e.student, day)
                if self.attendance_mode == "exceptions" and flag == "+":
                    continue
                if code is not None and flag != code:
                    continue
                items.append((e, flag))
        items.sort(key=lambda x: (*student_sort_key(x[0].student), x[0].site_id))

        day_text = wire_date(day)

        def render(item: tuple[Enrollment, str]) -> Record:
            e, flag = item
            return {
                **self._attendance_student(e.student, flag, str(e.site_id), day_text),
                **self._contact_fields(e.student),
            }

        return Selection(items, render, "paged")

    def q_attendance_section(self, p: Params, path: str) -> Selection:
        day, site = p.date("date"), p.int("site_id")
        assert day is not None and site is not None
        d = self.district.index()
        items: list[tuple[Roster, str]] = []
        if day <= self.today:
            ok = self._section_filter(p)
            grade, code = p.int("grade_level_id"), p.get("flag_code")
            daily_flags: dict[int, str] = {}
            for r in d.rosters_by_site_year.get((site, cal.academic_year(day)), []):
                if not r.active_on(day) or not cal.is_instructional(day, r.section.term.session_type_id):
                    continue
                if not ok(r.section) or (grade is not None and r.enrollment.grade_level_id != grade):
                    continue
                student_id = r.student.student_id
                daily = daily_flags.get(student_id)
                if daily is None:  # a student has several sections a day: one daily flag each
                    daily = daily_flags[student_id] = d.daily_flag(r.student, day)
                flag = d.section_flag(r, day, daily)
                if self.attendance_mode == "exceptions" and flag == "+":
                    continue
                if code is not None and flag != code:
                    continue
                items.append((r, flag))
        items.sort(key=lambda x: (*student_sort_key(x[0].student), x[0].section.section_id))

        day_text = wire_date(day)

        def render(item: tuple[Roster, str]) -> Record:
            r, flag = item
            sec = r.section
            return {
                **self._attendance_student(r.student, flag, str(sec.site_id), day_text),
                **self._attendance_section_fields(sec),
                **self._contact_fields(r.student),
            }

        return Selection(items, render, "paged")

    # -- high school ---------------------------------------------------------------------------------------------------

    def q_course_requirement_checks(self, p: Params, path: str) -> Selection:
        day = p.date("as_of_date") or self.nearest()
        site = p.int("site_id")
        d = self.district.index()
        items = []
        if not d.crc_disabled:
            seen: set[int] = set()
            for e in sorted(d.enrollments, key=lambda e: (*student_sort_key(e.student), e.entry_date)):
                if not e.active_on(day) or d.sites[e.site_id].level != "high" or e.student.student_id in seen:
                    continue
                if site is not None and e.site_id != site:
                    continue
                seen.add(e.student.student_id)
                for kind, cats in (("Graduation", GRADUATION_CATEGORIES), ("UC", UC_CATEGORIES)):
                    for cat in cats:
                        items.append((e, kind, cat))

        def render(item: Any) -> Record:
            e, kind, (short, full, non_credit, required) = item
            s = e.student
            years_done = e.grade_level_id - 10
            h = unit(d.seed, s.student_id, zlib.crc32(short.encode()) & 0xFFFF, 11)  # hash() differs per process
            received = 0 if non_credit else min(required, 5 * round(required * years_done / 4 * (0.6 + 0.6 * h) / 5))
            in_progress = 0 if non_credit or received >= required else 5
            satisfied = (h < 0.3 + 0.2 * years_done) if non_credit else received >= required
            return {
                "local_student_id": s.local_id,
                "site_id": str(e.site_id),
                "requirement_check_type": kind,
                "requirement_category_short_name": short,
                "requirement_category_full_name": full,
                "requirement_category_is_non_credit": non_credit,
                "requirement_category_credits_required": required,
                "requirement_category_is_satisfied": satisfied,
                "requirement_category_credits_received": received,
                "requirement_category_credits_in_progress": in_progress,
                "requirement_category_credits_scheduled": 5 if in_progress and years_done < 3 else 0,
            }

        return Selection(items, render, "list")

    def q_graduation_eligibility(self, p: Params, path: str) -> Selection:
        start, end = p.date("start_date"), p.date("end_date")
        assert start is not None and end is not None
        if start > end:
            raise bad_request("start_date cannot be greater than end_date", "invalid_parameter")
        name = p.get("course_requirement_name")
        d = self.district
        items = []
        for e in self.filter_enrollments(p, (start, end)):
            if d.sites[e.site_id].level != "high" or e.academic_year in d.graduation_disabled_years:
                continue
            for req in ("District Graduation", "UC/CSU"):
                if name is None or name == req:
                    items.append((e, req))
        items.sort(key=lambda x: (*student_sort_key(x[0].student), x[0].entry_date, x[1]))

        def render(item: Any) -> Record:
            e, req = item
            s = e.student
            return {
                "enrollment_site_id": str(e.site_id),
                "enrollment_year": str(e.academic_year),
                "enrollment_start_date": wire_date(e.entry_date),
                "enrollment_end_date": wire_date(e.leave_date),
                "student_id": str(s.student_id),
                "district_student_id": s.local_id,
                "state_student_id": str(s.state_student_id),
                "course_requirement_site_id": str(e.site_id),
                "course_requirement_year": str(e.academic_year),
                "course_requirement_name": req,
            }

        return Selection(items, render, "paged")

    def q_behavior(self, p: Params, path: str) -> Selection:
        start, end = p.date("enrollment_start_date"), p.date("enrollment_end_date")
        assert start is not None and end is not None
        if start > end:
            raise bad_request("enrollment_start_date cannot be greater than enrollment_end_date", "invalid_parameter")
        d = self.district.index()
        items = []
        for e in self.filter_enrollments(p, (start, end)):
            for inc in d.incidents_by_student.get(e.student.student_id, []):
                if inc.site_id == e.site_id and e.entry_date <= inc.date <= e.leave_date:
                    items.append((e, inc))
        items.sort(key=lambda x: (*student_sort_key(x[0].student), x[1].date, x[1].incident_id))

        def render(item: Any) -> Record:
            e, inc = item
            s = e.student
            return {
                "site_id": str(e.site_id),
                "enrollment_start_date": wire_date(e.entry_date),
                "enrollment_end_date": wire_date(e.leave_date),
                "student_id": str(s.student_id),
                "district_student_id": s.local_id,
                "state_student_id": str(s.state_student_id),
                "incident_type": inc.incident_type,
                "incident_unique_id": inc.incident_id,
                "incident_occurrence_date": wire_date(inc.date),
                "action_authority_code": "1",
                "action_taken_code": inc.action,
                "primary_offense": inc.offenses[0],
                "second_offense": inc.offenses[1],
                "third_offense": inc.offenses[2],
                "most_severe_offense_code": inc.most_severe,
                "duration_days": str(inc.duration_days),
                "instructional_support_indicator": inc.support,
                "weapon_category_code": inc.weapon,
                "modification_category_code": inc.modification,
                "primary_disability_code": s.disability[0] if s.sped == "current" and s.disability else None,
            }

        return Selection(items, render, "paged")

    # -- gradebook (lazy) ----------------------------------------------------------------------------------------------

    def _assignments(self, sec: Section) -> list[tuple[str, int, dt.date, int]]:
        key = ("assignments", sec.section_id)
        if key not in self._aux:
            days = [
                x
                for x in cal.instructional_days(sec.term.academic_year, sec.term.session_type_id)
                if sec.term.start <= x <= min(sec.term.end, self.today)
            ]
            out = []
            for i, day in enumerate(days[4::7]):
                cat = i % 3
                possible = (10, 20, 50)[cat]
                out.append((f"{GRADEBOOK_CATEGORIES[cat][0][:-1] if cat < 2 else 'Quiz'} {i + 1}", cat, day, possible))
            self._aux[key] = out
        result: list[tuple[str, int, dt.date, int]] = self._aux[key]
        return result

    def _score(self, r: Roster, i: int, possible: int) -> tuple[float, bool, bool]:
        d = self.district
        u = unit_from(d.roster_hash(r.student.student_id, r.section.section_id), i, 21)
        missing = u < 0.03
        excused = 0.03 <= u < 0.05
        spread = unit_from(d.student_hash(r.student.student_id), i, 22) - 0.45
        pct = min(1.0, max(0.0, r.student.ability + spread * 0.4))
        return (0.0 if missing else round(possible * pct)), missing, excused

    def _gradebook_totals(self, r: Roster) -> dict[int | None, tuple[float, int, int, int, int, dt.date | None]]:
        """Earned, possible, missing, zero and excused counts and the last assignment's day: overall (None) and per
        category."""
        keys: list[int | None] = [None, *range(len(GRADEBOOK_CATEGORIES))]
        sums = {k: [0.0, 0, 0, 0, 0] for k in keys}
        last: dict[int | None, dt.date | None] = dict.fromkeys(keys)
        for i, (_, cat, day, pts) in enumerate(self._assignments(r.section)):
            score, miss, exc = self._score(r, i, pts)
            for k in (None, cat):
                last[k] = day
                if exc:
                    sums[k][4] += 1
                    continue
                sums[k][0] += score
                sums[k][1] += pts
                sums[k][2] += miss
                sums[k][3] += score == 0
        return {
            k: (sums[k][0], int(sums[k][1]), int(sums[k][2]), int(sums[k][3]), int(sums[k][4]), last[k]) for k in keys
        }

    def _gradebook_rosters(self, p: Params, with_section: bool) -> list[Roster]:
        d = self.district.index()
        day = p.date("date") or self.nearest()
        local = p.get("local_student_id")
        session = p.get("session_type")
        want_type = None
        if session is not None:
            want_type = cal.SUMMER if session.lower() in ("summer", "2") else cal.NORMAL
        name = p.get("section_name") if with_section else None
        out = [
            r
            for r in d.rosters_by_year.get(cal.academic_year(day), [])
            if r.active_on(day)
            and r.section.term.academic_year not in d.gradebook_disabled_years
            and (local is None or r.student.local_id == local)
            and (want_type is None or r.section.term.session_type_id == want_type)
            and (name is None or r.section.section_name == name)
        ]
        out.sort(key=lambda r: (*student_sort_key(r.student), r.section.section_id))
        return out

    def _section_fields(self, sec: Section) -> Record:
        return {
            "local_section_id": sec.district_section_id,
            "section_id": str(sec.section_id),
            "section_name": sec.section_name,
            "school_course_id": sec.course.school_course_id,
        }

    def _gradebook(self, p: Params, kind: str, with_section: bool) -> Selection:
        rosters = self._gradebook_rosters(p, with_section)
        counts = {
            "scores": lambda r: len(self._assignments(r.section)),
            "overall": lambda r: 1,
            "category": lambda r: len(GRADEBOOK_CATEGORIES),
            "standards": lambda r: 2,
        }[kind]
        expanded = Expanded(rosters, [counts(r) for r in rosters])

        def totals(r: Roster, category: int | None) -> tuple[float, int, int, int, int, dt.date | None]:
            key = ("gradebook_totals", r.student.student_id, r.section.section_id)
            by_category: dict[int | None, tuple[float, int, int, int, int, dt.date | None]] | None = self._aux.get(key)
            if by_category is None:  # the overall, category and standards endpoints all read them: scored once
                by_category = self._aux[key] = self._gradebook_totals(r)
            return by_category[category]

        def stamp(day: dt.date | None, r: Roster) -> str:
            base = dt.datetime.combine(day or r.section.term.start, dt.time(2, 0))
            seconds = mix(r.student.student_id, r.section.section_id) % 7200
            return wire_timestamp(base + dt.timedelta(days=1, seconds=seconds))

        def render(item: tuple[Roster, int]) -> Record:
            r, k = item
            sec = r.section
            rec: Record = {"local_student_id": r.student.local_id, "gradebook_name": sec.gradebook_name}
            frame_start, frame_end = sec.term.start, sec.term.end
            if kind == "scores":
                name, cat, day, possible = self._assignments(sec)[k]
                score, missing, excused = self._score(r, k, possible)
                pct = 100.0 * score / possible
                updated = stamp(day, r)
                rec.update(
                    {
                        "assignment_name": name,
                        "category_name": GRADEBOOK_CATEGORIES[cat][0],
                        "is_excused": wire_flag(excused),
                        "is_missing": wire_flag(missing),
                        "points": str(possible),
                        "score": wire_number(score),
                        "percentage": wire_number(round(pct, 2)),
                        "use_for_calc": "t",
                        "use_for_aggregate": "t",
                        "use_category_weights": "t",
                        "last_updated": updated,
                        "calculated_at": updated,
                        "mark": mark_for(pct),
                        "entry": "mi" if missing else "",
                    }
                )
            elif kind == "overall":
                earned, possible, missing, zero, excused, last = totals(r, None)
                pct = 100.0 * earned / possible if possible else 0.0
                rec.update(
                    {
                        "possible_points": str(possible),
                        "points_earned": wire_number(earned),
                        "percentage": wire_number(round(pct, 2)),
                        "mark": mark_for(pct) if possible else None,
                        "color": "null",
                        "missing_count": str(missing),
                        "assignment_count": str(len(self._assignments(sec))),
                        "zero_count": str(zero),
                        "excused_count": str(excused),
                        "time_frame_start_date": wire_date(frame_start),
                        "time_frame_end_date": wire_date(frame_end),
                        "calculated_at": stamp(last, r),
                    }
                )
            elif kind == "category":
                earned, possible, missing, zero, excused, last = totals(r, k)
                pct = 100.0 * earned / possible if possible else 0.0
                rec.update(
                    {
                        "possible_points": str(possible),
                        "points_earned": wire_number(earned),
                        "percentage": wire_number(round(pct, 2)),
                        "category_name": GRADEBOOK_CATEGORIES[k][0],
                        "weight": str(GRADEBOOK_CATEGORIES[k][1]),
                        "mark": mark_for(pct) if possible else None,
                        "mark_color": "null",
                        "missing_count": str(missing),
                        "assignment_count": str(sum(1 for a in self._assignments(sec) if a[1] == k)),
                        "zero_count": str(zero),
                        "excused_count": str(excused),
                        "calculated_at": stamp(last, r),
                        "time_frame_start_date": wire_date(frame_start),
                        "time_frame_end_date": wire_date(frame_end),
                    }
                )
            else:
                earned, possible, missing, zero, excused, last = totals(r, None)
                share = 0.5 + 0.1 * (1 if k else -1)
                pct = 100.0 * earned / possible if possible else 0.0
                pct = max(0.0, min(100.0, pct + (8 if k else -5)))
                rec.update(
                    {
                        "standard": f"{sec.course.school_course_id}.STD.{k + 1}",
                        "percentage": wire_number(round(pct, 2)),
                        "mark": mark_for(pct),
                        "points_earned": wire_number(round(earned * share, 2)),
                        "possible_points": wire_number(round(possible * share, 2)),
                        "color": "#dcdcdc",
                        "missing_count": str(missing),
                        "assignment_count": str(len(self._assignments(sec))),
                        "zero_count": str(zero),
                        "excused_count": str(excused),
                        "timeframe_start_date": wire_date(frame_start),
                        "timeframe_end_date": wire_date(frame_end),
                        "calculated_at": stamp(last, r),
                    }
                )
            if with_section:
                rec.update(self._section_fields(sec))
                if kind == "overall":
                    rec["section_id"] = sec.district_section_id or str(sec.section_id)
                    rec["internal_section_id"] = str(sec.section_id)
                    rec["district_section_id"] = sec.district_section_id
            return rec

        return Selection(expanded, render, "paged")

    def q_gradebook_scores(self, p: Params, path: str) -> Selection:
        return self._gradebook(p, "scores", False)

    def q_gradebook_overall_scores(self, p: Params, path: str) -> Selection:
        return self._gradebook(p, "overall", False)

    def q_gradebook_category_scores(self, p: Params, path: str) -> Selection:
        return self._gradebook(p, "category", False)

    def q_gradebook_standards_scores(self, p: Params, path: str) -> Selection:
        return self._gradebook(p, "standards", False)

    def q_gradebook_scores_with_section(self, p: Params, path: str) -> Selection:
        return self._gradebook(p, "scores", True)

    def q_gradebook_overall_scores_with_section(self, p: Params, path: str) -> Selection:
        return self._gradebook(p, "overall", True)

    def q_gradebook_category_scores_with_section(self, p: Params, path: str) -> Selection:
        return self._gradebook(p, "category", True)

    def q_gradebook_standards_scores_with_section(self, p: Params, path: str) -> Selection:
        return self._gradebook(p, "standards", True)


def _overridden(render: Callable[[Any], Any], overrides: list[dict[str, Any]]) -> Callable[[Any], Any]:
    """`render` with the `corrupt_record` mutations applied to the records they match."""

    def render_overridden(item: Any) -> Any:
        record = render(item)
        if not isinstance(record, dict):
            return record
        for o in overrides:
            if all(str(record.get(k)) == v for k, v in o["match"].items()):
                record = {**record, o["field"]: o["value"]}
        return record

    return render_overridden


def page_body(selection: Selection, page: int, limit: int) -> Any:
    """The JSON body of one request: a page envelope, a bare list or a document."""
    if selection.shape == "list":
        return selection.records()
    if selection.shape == "document":
        return selection.render(selection.items[0])
    total = len(selection.items)
    num_pages = (total + limit - 1) // limit
    start = (page - 1) * limit
    chunk = selection.items[start : start + limit] if start < total else []
    results: Any = [selection.render(x) for x in chunk]
    if selection.single_object and total == 1 and len(results) == 1:
        results = results[0]
    return {
        "page": page,
        "num_pages": num_pages,
        "num_results": str(total) if selection.string_count else total,
        "results": results,
    }
