"""Deterministic generation of a synthetic school district (ground truth for the simulator and the tests).

Everything derives from `random.Random(seed)` (never the global generator) and the district size, so the same
configuration always produces the same district. Attendance and gradebook scores are *not* materialised: they are
computed on demand from a hash of (seed, ids, date), plus override dictionaries for corrections.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from illuminate_sync.simulator import calendar as cal

SERVER_TIMEZONE = "America/Los_Angeles"
"""The zone of the server's clock. The API's timestamps (`created_at`, `updated_at`, `exported_at`) and its
`modified_after` filter are wall-clock times without a zone ("2011-09-19 15:27:37" in the documentation's examples),
and the documentation does not name the zone. The simulated server keeps US Pacific time, the vendor's, by default (a
simulator option): a client that assumes UTC, as a naive reading would, then misses changes in the tests, as it would
against a real instance whose clock is hours behind UTC."""

MASK64 = (1 << 64) - 1
FLAG_ABSENT_CODES = ("A", "E", "I")


MIX_START = 0x9E3779B97F4A7C15


def mix(*values: int) -> int:
    """A fast deterministic 64-bit hash of integers (splitmix64 steps)."""
    return mix_from(MIX_START, *values)


def mix_from(h: int, *values: int) -> int:
    """`mix` continued from an earlier result: `mix_from(mix(a, b), c) == mix(a, b, c)`, one step per value.

    The attendance and gradebook answers hash (seed, student, section, ...) for every row; continuing from a cached
    (seed, student[, section]) hash halves the work of the simulator's largest answers.
    """
    for v in values:
        h = (h ^ (v & MASK64)) & MASK64
        h = (h * 0xBF58476D1CE4E5B9) & MASK64
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & MASK64
        h ^= h >> 29
    return h


def unit(*values: int) -> float:
    """A deterministic float in [0, 1) from integers."""
    return (mix(*values) >> 11) / float(1 << 53)


def unit_from(h: int, *values: int) -> float:
    """`unit` continued from an earlier `mix` result: `unit_from(mix(a, b), c) == unit(a, b, c)`."""
    return (mix_from(h, *values) >> 11) / float(1 << 53)


# ----------------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class GradeLevel:
    grade_level_id: int
    number: int  # 0 = K

    @property
    def short_name(self) -> str | int:
        return "K" if self.number == 0 else self.number

    @property
    def long_name(self) -> str:
        if self.number == 0:
            return "Kindergarten"
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(self.number if self.number < 20 else 0, "th")
        return f"{self.number}{suffix} Grade"


@dataclass(slots=True, eq=False)
class Site:
    site_id: int
    name: str
    level: str  # district, elementary, middle, high
    start_grade_level_id: int
    end_grade_level_id: int
    state_school_id: int
    address: str
    city: str
    zip: int
    local_site_code: str | None
    has_summer: bool
    site_type_name: str


@dataclass(slots=True, eq=False)
class Term:
    term_id: int
    site_id: int
    academic_year: int
    name: str
    num: int
    start: dt.date
    end: dt.date
    term_type: str
    session_type_id: int


@dataclass(slots=True, eq=False)
class User:
    user_id: int
    district_user_id: str | None
    first_name: str
    last_name: str
    middle_name: str
    gender: str
    birth_date: dt.date
    username: str
    email: str
    job_title: str
    education_level: str
    hire_date: dt.date
    exit_date: dt.date | None
    state_user_id: int
    ethnicity: str
    is_hispanic: bool
    account_id: str
    phone: str
    password: str
    roles: list[tuple[int, int, int, int, str]] = field(default_factory=list)  # site, year, term, role_id, name


@dataclass(slots=True, eq=False)
class Student:
    student_id: int
    district_student_id: int
    state_student_id: int
    first_name: str
    middle_name: str
    last_name: str
    gender: str
    birth_date: dt.date
    ethnicity: str
    is_hispanic: bool
    language: str
    fluency: str
    reclassification_date: dt.date | None
    district_entry_date: dt.date
    parent_education: str
    birth_city: str
    birth_state: str
    birth_country: str
    address: str
    lunch_id: str
    absence_rate: float
    ability: float
    aka: bool
    gifted: bool
    lunch_status: str
    plan_504: bool
    mobility: bool = False
    sped: str | None = None  # "current", "exited" or None
    disability: tuple[str, str, str] | None = None  # (code, translation, state code)
    sped_exit: dt.date | None = None

    @property
    def local_id(self) -> str:
        return str(self.district_student_id)


@dataclass(slots=True, eq=False)
class Enrollment:
    student: Student
    site_id: int
    academic_year: int
    grade_level_id: int
    entry_date: dt.date
    leave_date: dt.date
    session_type_id: int
    entry_code: str
    exit_code: str | None = None
    exit_reason: str | None = None

    def active_on(self, day: dt.date) -> bool:
        return self.entry_date <= day <= self.leave_date

    def overlaps(self, start: dt.date, end: dt.date) -> bool:
        return self.entry_date <= end and self.leave_date >= start


@dataclass(slots=True, eq=False)
class Course:
    course_id: int
    school_course_id: str
    long_name: str
    short_name: str
    department: str
    start_grade_level_id: int
    end_grade_level_id: int
    site_ids: set[int]
    credits: float | None
    level: str


@dataclass(slots=True, eq=False)
class TeacherSpan:
    user_id: int
    start: dt.date
    end: dt.date
    primary: bool


@dataclass(slots=True, eq=False)
class Section:
    section_id: int
    site_id: int
    term: Term
    course: Course
    period: str
    room: int
    section_name: str
    district_section_id: str | None
    teachers: list[TeacherSpan]
    grade_level_id: int
    gradebook_name: str = ""
    """The teacher's gradebook of the section: "Per. 3 Biology Yearlong" (`section_gradebook_name`); a summer
    credit-recovery or bridge section reuses the name of its subject's gradebook of the normal session."""

    def __post_init__(self) -> None:
        self.gradebook_name = self.gradebook_name or section_gradebook_name(self)

    @property
    def primary_user_id(self) -> int:
        return next(t.user_id for t in self.teachers if t.primary)


def section_gradebook_name(section: Section) -> str:
    per = "All Day" if section.period == "All Day" else f"Per. {section.period}"
    return f"{per} {section.course.short_name} {section.term.name}"


@dataclass(slots=True, eq=False)
class Roster:
    student: Student
    section: Section
    enrollment: Enrollment
    entry_date: dt.date
    leave_date: dt.date

    def active_on(self, day: dt.date) -> bool:
        return self.entry_date <= day <= self.leave_date

    def overlaps(self, start: dt.date, end: dt.date) -> bool:
        return self.entry_date <= end and self.leave_date >= start


@dataclass(slots=True, eq=False)
class Contact:
    contact_id: int
    student: Student
    first_name: str
    middle_name: str
    last_name: str
    prefix: str
    suffix: str
    relationship: str
    type_code: str
    gender: str
    birth_date: dt.date
    marital: tuple[str, str]
    language: tuple[str, str]
    email: str
    home_phone: str | None
    work_phone: str | None
    mobile_phone: str | None
    resides_with: bool
    legal_guardian: bool
    emergency_contact: bool
    is_primary: bool
    email_opt_out: bool


@dataclass(slots=True, eq=False)
class CounselorSpan:
    """One counselor assignment; it spans academic years `academic_year`..`last_year` (a student who stays at a school
    keeps the counselor: one assignment, answered in every year's window it overlaps)."""

    student: Student
    counselor: User
    site_id: int
    academic_year: int
    start: dt.date
    end: dt.date | None
    last_year: int = 0

    def __post_init__(self) -> None:
        self.last_year = max(self.last_year, self.academic_year)


def without_counselor_year(spans: list[CounselorSpan], year: int, student_id: int | None = None) -> list[CounselorSpan]:
    """`spans` as if academic year `year` had none (of `student_id`, or of anyone): an assignment of that year only
    goes, one that spans it and another year keeps the other year's part."""
    kept = []
    for span in spans:
        if (student_id is not None and span.student.student_id != student_id) or not (
            span.academic_year <= year <= span.last_year
        ):
            kept.append(span)
        elif span.academic_year < year:  # keep the earlier years' part
            span.end, span.last_year = cal.normal_session(year - 1).end, year - 1
            kept.append(span)
        elif span.last_year > year:  # keep the later years' part
            span.start, span.academic_year = cal.normal_session(year + 1).start, year + 1
            kept.append(span)
    return kept


@dataclass(slots=True, eq=False)
class Program:
    student: Student
    code: str
    description: str
    eligibility_start: dt.date
    eligibility_end: dt.date | None
    participation_start: dt.date
    participation_end: dt.date | None


@dataclass(slots=True, eq=False)
class Incident:
    student: Student
    site_id: int
    incident_id: str
    date: dt.date
    incident_type: str
    action: str
    offenses: tuple[str, str, str]
    most_severe: str
    duration_days: int
    support: str
    weapon: str
    modification: str


@dataclass(slots=True, eq=False)
class Band:
    minimum: int
    label: str
    number: int
    color: str
    is_mastery: bool


@dataclass(slots=True, eq=False)
class AssessmentField:
    order: int
    maximum: int
    is_rubric: bool
    key: dict[int, str]  # version -> correct response (multiple choice)
    group: str
    standard: str


@dataclass(slots=True, eq=False)
class Standard:
    guid: str
    code: str
    description: str


@dataclass(slots=True, eq=False)
class Assessment:
    assessment_id: int
    local_assessment_id: str
    title: str
    description: str
    author: User
    created_at: dt.datetime
    updated_at: dt.datetime
    scope_id: int
    scope: str
    subject_id: int
    subject: str
    grade_level_ids: list[int]
    academic_year: int
    administered_at: dt.date
    guid: str
    fields: list[AssessmentField]
    groups: list[str]
    standards: list[Standard]
    bands: list[Band]
    versions: int = 2

    def version_order(self, version: int) -> list[int]:
        """Field indexes in the question order of a version (version 2 reverses the master order)."""
        idx = list(range(len(self.fields)))
        return idx if version == 1 else idx[::-1]

    @property
    def points_possible(self) -> int:
        return sum(f.maximum for f in self.fields)


@dataclass(slots=True, eq=False)
class Result:
    assessment: Assessment
    student: Student
    date_taken: dt.date
    version: int
    points: bytes  # per field, master order
    site_id: int
    grade_level_id: int
    modified_at: dt.datetime


@dataclass(slots=True, eq=False)
class PoolAssessment:
    pool_assessment_id: int
    title: str
    standards: list[Standard]
    points_possible: int
    bands: list[Band]
    academic_year: int


@dataclass(slots=True, eq=False)
class PoolResult:
    pool: PoolAssessment
    student: Student
    date_taken: dt.date
    standard_points: tuple[int, ...]  # per standard; possible split evenly
    start_time: dt.datetime
    minutes: int
    pauses: int
    site_id: int
    grade_level_id: int


@dataclass(slots=True, eq=False)
class Repository:
    repository_id: int
    local_repository_id: str
    title: str
    rows: list[dict[str, object]] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------
# Reference data
# ----------------------------------------------------------------------------------------------------------------

FIRST_M = [
    "James", "John", "Robert", "Michael", "William", "David", "Joseph", "Daniel", "Matthew", "Anthony", "Jose",
    "Luis", "Carlos", "Juan", "Miguel", "Kevin", "Brian", "Ethan", "Noah", "Liam", "Mason", "Lucas", "Logan",
    "Aiden", "Jayden", "Diego", "Angel", "Adrian", "Minh", "Wei", "Arjun", "Omar", "Samuel", "Isaac", "Gabriel",
    "Leo"
]
FIRST_F = [
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen", "Maria",
    "Sofia", "Isabella", "Camila", "Valeria", "Emma", "Olivia", "Ava", "Mia", "Emily", "Abigail", "Madison",
    "Chloe", "Grace", "Lily", "Aaliyah", "Zoe", "Hannah", "Mai", "Mei", "Priya", "Fatima", "Leah", "Nora", "Ruby"
]
LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
    "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers",
    "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim",
    "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza",
    "Ruiz", "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Tran", "Chen"
]
STREETS = [
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Hanford", "Acme", "Walnut", "Willow", "Sunset", "Lincoln", "Jefferson",
    "Mission", "Valley", "Lake"
]
CITIES = ("Acme City", "Menifee", "Riverside", "Lakeview", "Hemet")
ETHNICITIES = (
    ("White", 0.30),
    ("Hispanic or Latino", 0.0),
    ("Black or African American", 0.10),
    ("Asian", 0.12),
    ("Filipino", 0.04),
    ("American Indian or Alaska Native", 0.02),
    ("Native Hawaiian or Other Pacific Islander", 0.02),
)
LANGUAGES = (("ENGLISH", 0.62), ("SPANISH", 0.28), ("VIETNAMESE", 0.04), ("MANDARIN", 0.03), ("TAGALOG", 0.03))
LANGUAGE_CODES = {"ENGLISH": "EN", "SPANISH": "SP", "VIETNAMESE": "VI", "MANDARIN": "MA", "TAGALOG": "TA"}
PARENT_ED = (
    "Graduate School/Post Graduate",
    "College Graduate",
    "Some College",
    "High School Graduate",
    "Not a High School Graduate",
    "Declined to State",
)
DISABILITIES = (
    ("290", "Specific Learning Disability (SLD)", "290"),
    ("240", "Speech or Language Impairment (SLI)", "240"),
    ("320", "Autism (AUT)", "320"),
    ("280", "Other Health Impairment (OHI)", "280"),
    ("210", "Intellectual Disability (ID)", "210"),
    ("260", "Emotional Disturbance (ED)", "260"),
)
STAFF_ED = ("Baccalaureate", "Baccalaureate Plus 30", "Master's Degree", "Master's Degree Plus 30", "Doctorate")
BAND_TEMPLATE = (
    (90, "Advanced", 5, "00CA3F", True),
    (80, "Proficient", 4, "91FD57", True),
    (70, "Basic", 3, "FEFE56", False),
    (60, "Below Basic", 2, "FFBF42", False),
    (0, "Far Below Basic", 1, "FF001A", False),
)
SCOPES = ((1, "District Benchmark"), (2, "Common Formative"), (3, "Unit Test"), (4, "Interim"))
SUBJECTS = ((1, "English Language Arts"), (2, "Mathematics"), (3, "Science"), (4, "History-Social Science"))
ROLE_TEACHER = (2, "Teacher")
ROLE_SITE_ADMIN = (3, "Site Administrator")
ROLE_DISTRICT_ADMIN = (1, "District Administrator")
ROLE_COUNSELOR = (5, "Counselor")

# Course templates per level: (slot, department, short name pattern, long name pattern, credits, grades)
ELEMENTARY_SLOTS = ("Core",)
MIDDLE_SLOTS = ("English", "Mathematics", "Science", "History", "Physical Education", "Elective")
HIGH_COURSES: dict[int, list[tuple[str, str] | tuple[tuple[str, str], tuple[str, str]]]] = {
    9: [("English", "English 9"), ("Mathematics", "Algebra 1"), ("Science", "Biology"),
        ("History", "Geography"), ("Physical Education", "PE 9"),
        (("Health", "Health"), ("Elective", "Computer Literacy"))],
    10: [("English", "English 10"), ("Mathematics", "Geometry"), ("Science", "Chemistry"),
         ("History", "World History"), ("Physical Education", "PE 10"),
         (("Elective", "Spanish 1A"), ("Elective", "Spanish 1B"))],
    11: [("English", "English 11"), ("Mathematics", "Algebra 2"), ("Science", "Physics"),
         ("History", "US History"), ("Elective", "Art"), (("Elective", "Music A"), ("Elective", "Music B"))],
    12: [("English", "English 12"), ("Mathematics", "Pre-Calculus"), ("Science", "Environmental Science"),
         ("Elective", "Journalism"), ("Elective", "Ceramics"), (("History", "Government"), ("History", "Economics"))],
}
GRADUATION_CATEGORIES = (
    ("ENG", "English", False, 40), ("MATH", "Mathematics", False, 20), ("SCI", "Science", False, 20),
    ("SS", "Social Science", False, 30), ("PE", "Physical Education", False, 20),
    ("FA", "Fine Arts / World Language", False, 10), ("ELEC", "Electives", False, 70),
    ("CIV", "Civics Test", True, 0),
)
UC_CATEGORIES = (
    ("A", "History/Social Science", False, 20), ("B", "English", False, 40), ("C", "Mathematics", False, 30),
    ("D", "Laboratory Science", False, 20), ("E", "Language Other Than English", False, 20),
    ("F", "Visual & Performing Arts", False, 10), ("G", "College-Preparatory Elective", False, 10),
)
PROGRAMS = {
    "EL": ("300", "English Learner"),
    "GATE": ("127", "Gifted and Talented Education (GATE)"),
    "504": ("101", "Section 504 Accommodation Plan"),
    "FREE": ("181", "Free Meal Program"),
    "REDUCED": ("182", "Reduced-Price Meal Program"),
}


def _weighted_choice(rng: random.Random, weighted: Iterable[tuple[str, float]]) -> str:
    items = list(weighted)
    total = sum(w for _, w in items)
    r = rng.random() * total
    for value, weight in items:
        r -= weight
        if r < 0:
            return value
    return items[-1][0]


def _random_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _random_hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


# ----------------------------------------------------------------------------------------------------------------
# The district
# ----------------------------------------------------------------------------------------------------------------


class District:
    """A whole synthetic district, generated deterministically from (students, seed, today)."""

    def __init__(
        self, students: int = 300, seed: int = 1, today: dt.date | None = None, timezone: str = SERVER_TIMEZONE
    ) -> None:
        self.zone = ZoneInfo(timezone)
        self.size = max(13, int(students))
        self.seed = seed
        self.today = today or dt.date.today()
        self.rng = random.Random(seed)
        self.current_year = cal.academic_year(cal.nearest_in_session(self.today))
        self.years = (self.current_year - 1, self.current_year)
        self.grade_levels = [GradeLevel(i + 1, i) for i in range(13)]
        self.sites: dict[int, Site] = {}
        self.terms: dict[int, Term] = {}
        self.users: dict[int, User] = {}
        self.students: dict[int, Student] = {}
        self.enrollments: list[Enrollment] = []
        self.courses: dict[int, Course] = {}
        self.sections: dict[int, Section] = {}
        self.rosters: list[Roster] = []
        self.contacts: list[Contact] = []
        self.counselor_spans: list[CounselorSpan] = []
        self.programs: list[Program] = []
        self.incidents: list[Incident] = []
        self.assessments: dict[int, Assessment] = {}
        self.results: list[Result] = []
        self.pools: dict[int, PoolAssessment] = {}
        self.pool_results: list[PoolResult] = []
        self.repositories: dict[int, Repository] = {}
        self.attendance_overrides: dict[tuple[int, dt.date], str] = {}
        self.gradebook_disabled_years: set[int] = set()
        self.graduation_disabled_years: set[int] = set()
        self.crc_disabled: bool = False
        self.wire_overrides: list[dict[str, Any]] = []  # corrupt_record: values replaced on the wire
        self.version = 0
        self._days_cache: dict[int, list[dt.date]] = {}
        self._student_hashes: dict[int, int] = {}  # pure functions of the seed and ids: never stale
        self._roster_hashes: dict[tuple[int, int], int] = {}
        self._index_version = -1
        self._next_student_id = 100001
        self._next_contact_id = 500001
        self._next_user_id = 1001
        self._dept_pools: dict[tuple[int, str], list[User]] = defaultdict(list)
        self._generate()

    # -- indexes ---------------------------------------------------------------------------------------------

    def touch(self) -> None:
        """Record a mutation: indexes and caches built on an older version are rebuilt on the next read."""
        self.version += 1

    def _ensure_index(self) -> None:
        if self._index_version == self.version:
            return
        self.enrollments_by_student: dict[int, list[Enrollment]] = defaultdict(list)
        self.enrollments_by_year: dict[int, list[Enrollment]] = defaultdict(list)
        for e in self.enrollments:
            self.enrollments_by_student[e.student.student_id].append(e)
            self.enrollments_by_year[e.academic_year].append(e)
        self.rosters_by_student: dict[int, list[Roster]] = defaultdict(list)
        self.rosters_by_site_year: dict[tuple[int, int], list[Roster]] = defaultdict(list)
        self.rosters_by_year: dict[int, list[Roster]] = defaultdict(list)
        for r in self.rosters:
            self.rosters_by_student[r.student.student_id].append(r)
            self.rosters_by_site_year[(r.section.site_id, r.section.term.academic_year)].append(r)
            self.rosters_by_year[r.section.term.academic_year].append(r)
        self.contacts_by_student: dict[int, list[Contact]] = defaultdict(list)
        for c in self.contacts:
            self.contacts_by_student[c.student.student_id].append(c)
        self.programs_by_student: dict[int, list[Program]] = defaultdict(list)
        for p in self.programs:
            self.programs_by_student[p.student.student_id].append(p)
        self.incidents_by_student: dict[int, list[Incident]] = defaultdict(list)
        for i in self.incidents:
            self.incidents_by_student[i.student.student_id].append(i)
        self.students_by_local: dict[str, Student] = {s.local_id: s for s in self.students.values()}
        self._index_version = self.version

    def index(self) -> District:
        self._ensure_index()
        return self

    def enrollments_of(self, student_id: int) -> list[Enrollment]:
        self._ensure_index()
        return self.enrollments_by_student.get(student_id, [])

    def enrollment_on(self, student_id: int, day: dt.date) -> Enrollment | None:
        for e in self.enrollments_of(student_id):
            if e.active_on(day):
                return e
        return None

    def students_of_rosters(self, *, user_id: int | None = None, section_id: int | None = None,
                            course_id: int | None = None) -> set[int]:
        """Students ever rostered in matching sections (used for the cheap user/section/course filters)."""
        out: set[int] = set()
        for r in self.rosters:
            sec = r.section
            if section_id is not None and sec.section_id != section_id:
                continue
            if course_id is not None and sec.course.course_id != course_id:
                continue
            if user_id is not None and all(t.user_id != user_id for t in sec.teachers):
                continue
            out.add(r.student.student_id)
        return out

    @property
    def user_credentials(self) -> dict[str, str]:
        """username -> password of every user, valid for `CreateUserApiKeys`."""
        return {u.username: u.password for u in self.users.values()}

    def primary_contact(self, student_id: int) -> Contact | None:
        self._ensure_index()
        contacts = self.contacts_by_student.get(student_id)
        return contacts[0] if contacts else None

    # -- attendance (lazy) -----------------------------------------------------------------------------------

    def daily_flag(self, student: Student, day: dt.date) -> str:
        override = self.attendance_overrides.get((student.student_id, day))
        if override is not None:
            return override
        prefix = mix_from(self.student_hash(student.student_id), day.toordinal())
        u = unit_from(prefix, 1)
        p = student.absence_rate
        if u < p:
            v = unit_from(prefix, 2)
            return "A" if v < 0.5 else ("E" if v < 0.85 else "I")
        if u < p + 0.045:
            return "T"
        if u < p + 0.048:
            return "S"
        return "+"

    def section_flag(self, roster: Roster, day: dt.date, daily: str | None = None) -> str:
        """The section's flag for the student that day; `daily`, when the caller has it, is the day's daily flag."""
        if daily is None:
            daily = self.daily_flag(roster.student, day)
        if daily == "T":
            return "T" if roster.section.period in ("1", "All Day") else "+"
        if daily == "+" and unit_from(self.roster_hash(roster.student.student_id, roster.section.section_id),
                                      day.toordinal()) < 0.01:  # tardy to this section only
            return "T"
        return daily

    def student_hash(self, student_id: int) -> int:
        """`mix(seed, student_id)`, cached: the start of every per-student hash of attendance and scores."""
        h = self._student_hashes.get(student_id)
        if h is None:
            h = self._student_hashes[student_id] = mix(self.seed, student_id)
        return h

    def roster_hash(self, student_id: int, section_id: int) -> int:
        """`mix(seed, student_id, section_id)`, cached: the start of every per-enrolment hash."""
        key = (student_id, section_id)
        h = self._roster_hashes.get(key)
        if h is None:
            h = self._roster_hashes[key] = mix(self.seed, student_id, section_id)
        return h

    # -- generation ------------------------------------------------------------------------------------------

    def _new_user(self, job_title: str, hire_floor: int = 1990) -> User:
        rng = self.rng
        gender = rng.choice("MF")
        first = rng.choice(FIRST_M if gender == "M" else FIRST_F)
        last = rng.choice(LAST)
        uid = self._next_user_id
        self._next_user_id += 1
        username = f"{first[0].lower()}{last.lower()}{uid}"
        user = User(
            user_id=uid,
            district_user_id=None if rng.random() < 0.1 else f"E{uid:06d}",
            first_name=first,
            last_name=last,
            middle_name=rng.choice("ABCDEFGHJKLMNPRSTW"),
            gender=gender,
            birth_date=_random_date(rng, dt.date(1955, 1, 1), dt.date(1998, 12, 31)),
            username=username,
            email=f"{username}@district.example.org",
            job_title=job_title,
            education_level=rng.choice(STAFF_ED),
            hire_date=_random_date(rng, dt.date(hire_floor, 1, 1), dt.date(self.years[0] - 1, 8, 1)),
            exit_date=None,
            state_user_id=rng.randint(100000, 999999),
            ethnicity=_weighted_choice(rng, ETHNICITIES[:1] + ETHNICITIES[2:]),
            is_hispanic=rng.random() < 0.25,
            account_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            phone=f"951555{rng.randint(1000, 9999)}",
            password=f"pw-{_random_hex(rng, 10)}",
        )
        self.users[uid] = user
        return user

    def _generate(self) -> None:
        self._gen_sites()
        self._gen_terms()
        self._gen_courses()
        self._gen_staff()
        self._gen_students()
        self._gen_sections_and_rosters()
        self._gen_contacts()
        self._gen_counselors()
        self._gen_special_ed_and_programs()
        self._gen_behavior()
        self._gen_assessments()
        self._gen_pools()
        self._gen_repositories()
        self._ensure_index()

    def _gen_sites(self) -> None:
        rng = self.rng
        s = self.size
        n_elem = max(2 if s >= 100 else 1, round(s * 6 / 13 / 400))  # two, so that mid-year moves exist
        n_mid = max(1, round(s * 3 / 13 / 400))
        n_high = max(1, round(s * 4 / 13 / 400))
        self.sites[1] = Site(1, "Acme Unified School District", "district", 1, 13, 12340100000000, "123 ABC Street",
                             "Acme City", 90000, None, False, "District Office")
        sid = 2
        names = list(STREETS) + list(LAST)
        rng.shuffle(names)
        for level, count, lo, hi, kind in (
            ("elementary", n_elem, 1, 6, "Elementary"),
            ("middle", n_mid, 7, 9, "Middle Schools"),
            ("high", n_high, 10, 13, "High Schools"),
        ):
            for i in range(count):
                base = names[(sid * 7) % len(names)]
                suffix = {"elementary": "Elementary", "middle": "Middle School", "high": "High School"}[level]
                name = f"{base} {suffix}" + (f" {i + 1}" if count > len(names) else "")
                self.sites[sid] = Site(
                    site_id=sid, name=name, level=level, start_grade_level_id=lo, end_grade_level_id=hi,
                    state_school_id=1234000000000 + sid * 1013,
                    address=f"{rng.randint(100, 9999)} {rng.choice(STREETS)} Street",
                    city=rng.choice(CITIES), zip=rng.randint(90000, 92999),
                    local_site_code=None if rng.random() < 0.3 else f"{sid:03d}",
                    has_summer=level == "high" or (level == "middle" and i == 0), site_type_name=kind,
                )
                sid += 1

    def sites_of(self, level: str) -> list[Site]:
        return [s for s in self.sites.values() if s.level == level]

    def _gen_terms(self) -> None:
        tid = 1
        self.terms_by_site_year: dict[tuple[int, int, int], list[Term]] = defaultdict(list)
        for year in self.years:
            normal = cal.normal_session(year)
            days = cal.instructional_days(year)
            mid = days[len(days) // 2]
            for site in self.sites.values():
                specs = [("Yearlong", 1, normal.start, normal.end, "Full Year")]
                if site.level != "district":
                    specs += [("Semester 1", 2, normal.start, mid - dt.timedelta(days=1), "Semester"),
                              ("Semester 2", 3, mid, normal.end, "Semester")]
                for name, num, start, end, ttype in specs:
                    term = Term(tid, site.site_id, year, name, num, start, end, ttype, cal.NORMAL)
                    self.terms[tid] = term
                    self.terms_by_site_year[(site.site_id, year, cal.NORMAL)].append(term)
                    tid += 1
                if site.has_summer:
                    summer = cal.summer_session(year)
                    term = Term(tid, site.site_id, year, "Summer", 1, summer.start, summer.end, "Summer", cal.SUMMER)
                    self.terms[tid] = term
                    self.terms_by_site_year[(site.site_id, year, cal.SUMMER)].append(term)
                    tid += 1

    def _gen_courses(self) -> None:
        cid = 101
        self.course_by_key: dict[tuple[str, str], Course] = {}

        def add(level: str, dept: str, short: str, long: str, lo: int, hi: int, credits: float | None) -> Course:
            nonlocal cid
            key = (level, short)
            if key in self.course_by_key:
                course = self.course_by_key[key]
                course.start_grade_level_id = min(course.start_grade_level_id, lo)
                course.end_grade_level_id = max(course.end_grade_level_id, hi)
                return course
            site_ids = {s.site_id for s in self.sites_of(level)}
            course = Course(cid, f"{level[0].upper()}{cid:04d}", long, short, dept, lo, hi, site_ids, credits, level)
            self.courses[cid] = course
            self.course_by_key[key] = course
            cid += 1
            return course

        for g in range(0, 6):
            name = "Kindergarten Core" if g == 0 else f"Grade {g} Core"
            add("elementary", "Elementary", name, f"{name} (Self-Contained)", g + 1, g + 1, None)
        for g in range(6, 9):
            for dept in MIDDLE_SLOTS:
                short = f"{dept} {g}" if dept not in ("Physical Education", "Elective") else f"{dept} MS"
                add("middle", dept, short, short, g + 1, g + 1, None)
        for g, slots in HIGH_COURSES.items():
            for slot in slots:
                pair = slot if isinstance(slot[0], tuple) else (slot,)
                for dept, short in pair:  # type: ignore[misc]
                    credits = 5.0 if isinstance(slot[0], tuple) else 10.0
                    add("high", str(dept), str(short), str(short), g + 1, g + 1, credits)
        for short in ("Credit Recovery English", "Credit Recovery Math"):
            add("high", "Summer", short, short, 10, 13, 5.0)
            add("middle", "Summer", short.replace("Credit Recovery", "Summer Bridge"),
                short.replace("Credit Recovery", "Summer Bridge"), 7, 9, None)

    def _gen_staff(self) -> None:
        admin = self._new_user("District Administrator")
        for year in self.years:
            term = self.terms_by_site_year[(1, year, cal.NORMAL)][0]
            admin.roles.append((1, year, term.term_id, *ROLE_DISTRICT_ADMIN))
        for site in self.sites.values():
            if site.level == "district":
                continue
            principal = self._new_user("Principal")
            self._add_roles(principal, site.site_id, ROLE_SITE_ADMIN)
        for i in range(max(2, self.size // 500)):  # former staff
            user = self._new_user("Teacher")
            user.exit_date = _random_date(self.rng, user.hire_date, dt.date(self.years[0] - 1, 6, 30))
            del i

    def _add_roles(self, user: User, site_id: int, role: tuple[int, str], years: Iterable[int] | None = None) -> None:
        for year in years or self.years:
            for term in self.terms_by_site_year[(site_id, year, cal.NORMAL)]:
                entry = (site_id, year, term.term_id, *role)
                if entry not in user.roles:
                    user.roles.append(entry)

    def _teacher(self, site_id: int, dept: str, index: int, year: int) -> User:
        pool = self._dept_pools[(site_id, dept)]
        while len(pool) <= index:
            pool.append(self._new_user("Teacher"))
        user = pool[index]
        self._add_roles(user, site_id, ROLE_TEACHER, [year])
        return user

    def _new_student(self, grade_in_current: int) -> Student:
        rng = self.rng
        sid = self._next_student_id
        self._next_student_id += 1
        gender = rng.choice("MF")
        y = self.current_year
        born_lo = dt.date(y - 7 - grade_in_current, 9, 2)
        ethnicity = _weighted_choice(rng, ETHNICITIES[:1] + ETHNICITIES[2:])
        hispanic = rng.random() < 0.35
        language = "SPANISH" if hispanic and rng.random() < 0.6 else _weighted_choice(rng, LANGUAGES)
        if language == "ENGLISH":
            fluency = "English Only"
            reclass = None
        else:
            fluency = rng.choice(("English Learner", "Reclassified Fluent English Proficient",
                                  "Initially Fluent English Proficient"))
            reclassified = fluency.startswith("Re")
            reclass = _random_date(rng, dt.date(y - 4, 1, 1), dt.date(y - 1, 6, 1)) if reclassified else None
        chronic = rng.random() < 0.12
        last = rng.choice(LAST)
        student = Student(
            student_id=sid,
            district_student_id=200000 + (sid - 100000) * 7 % 800000,
            state_student_id=1000000000 + rng.randint(0, 899999999),
            first_name=rng.choice(FIRST_M if gender == "M" else FIRST_F),
            middle_name=rng.choice("ABCDEFGHJKLMNPRSTW"),
            last_name=last,
            gender=gender,
            birth_date=_random_date(rng, born_lo, born_lo + dt.timedelta(days=364)),
            ethnicity=ethnicity,
            is_hispanic=hispanic,
            language=language,
            fluency=fluency,
            reclassification_date=reclass,
            district_entry_date=cal.normal_session(y - grade_in_current).start,
            parent_education=rng.choice(PARENT_ED),
            birth_city=rng.choice(CITIES),
            birth_state="CA" if rng.random() < 0.85 else rng.choice(("AZ", "NV", "TX", "OR")),
            birth_country="United States Of America" if rng.random() < 0.9 else "Mexico",
            address=(f"{rng.randint(100, 99999)} {rng.choice(STREETS)} St, {rng.choice(CITIES)}, "
                     f"CA {rng.randint(90000, 92999)}"),
            lunch_id=str(rng.randint(10000, 99999)),
            absence_rate=rng.uniform(0.12, 0.3) if chronic else rng.uniform(0.0, 0.06),
            ability=rng.uniform(0.25, 0.97),
            aka=rng.random() < 0.03,
            gifted=rng.random() < 0.08,
            lunch_status=_weighted_choice(rng, (("FL", 0.4), ("RL", 0.08), ("PL", 0.52))),
            plan_504=rng.random() < 0.03,
        )
        self.students[sid] = student
        return student

    def _site_for(self, student: Student, grade: int, salt: int = 0) -> Site:
        level = "elementary" if grade <= 5 else ("middle" if grade <= 8 else "high")
        sites = self.sites_of(level)
        return sites[mix(self.seed, student.student_id // 37, salt) % len(sites)]

    def _days_until_today(self, year: int) -> list[dt.date]:
        cache = self._days_cache
        if year not in cache:
            cache[year] = [d for d in cal.instructional_days(year) if d <= self.today]
        return cache[year]

    def _year_spans(self, student: Student, year: int, grade: int, *, new_entrant: bool, leaver: bool) -> None:
        """Create the enrollment spans of one student in one academic year (with the mid-year events)."""
        rng = self.rng
        sess = cal.normal_session(year)
        days = self._days_until_today(year)
        site = self._site_for(student, grade)
        gid = grade + 1
        entry = sess.start
        if new_entrant and rng.random() < 0.3 and len(days) > 10:
            entry = rng.choice(days[5:])
        if year == self.current_year and entry > self.today and new_entrant:
            entry = sess.start
        code = "01" if new_entrant else "02"
        if student.district_entry_date > entry or new_entrant:
            student.district_entry_date = entry
        cut = entry + dt.timedelta(days=10)
        candidates = days[bisect.bisect_right(days, cut):]
        r = rng.random()
        if leaver:
            r = 0.06
        if candidates and r < 0.05:
            others = [s for s in self.sites_of(site.level) if s.site_id != site.site_id]
            if others:
                d = rng.choice(candidates)
                other = rng.choice(others)
                student.mobility = True
                self.enrollments.append(Enrollment(student, site.site_id, year, gid, entry,
                                                   cal.previous_instructional_day(d), cal.NORMAL, code, "T165",
                                                   "Transfer to another school in district"))
                self.enrollments.append(Enrollment(student, other.site_id, year, gid, d, sess.end, cal.NORMAL, "03"))
                return
        if candidates and (0.05 <= r < 0.08) and (leaver or year == self.current_year):
            d = rng.choice(candidates)
            self.enrollments.append(Enrollment(student, site.site_id, year, gid, entry, d, cal.NORMAL, code, "T200",
                                               "Moved out of district"))
            return
        if len(candidates) > 20 and 0.08 <= r < 0.09:
            i = rng.randrange(0, len(candidates) - 15)
            d1, d2 = candidates[i], candidates[i + rng.randint(5, 14)]
            self.enrollments.append(Enrollment(student, site.site_id, year, gid, entry, d1, cal.NORMAL, code, "T180",
                                               "Withdrawn, whereabouts unknown"))
            self.enrollments.append(Enrollment(student, site.site_id, year, gid, d2, sess.end, cal.NORMAL, "04"))
            return
        self.enrollments.append(Enrollment(student, site.site_id, year, gid, entry, sess.end, cal.NORMAL, code))

    def _gen_students(self) -> None:
        rng = self.rng
        y0, y1 = self.years
        grades = [i % 13 for i in range(self.size)]
        rng.shuffle(grades)
        for grade in grades:
            student = self._new_student(grade)
            new = grade == 0 or rng.random() < 0.05
            if not new:
                self._year_spans(student, y0, grade - 1, new_entrant=False, leaver=False)
            self._year_spans(student, y1, grade, new_entrant=new, leaver=False)
        for _ in range(self.size // 13):  # last year's seniors
            student = self._new_student(13)
            self._year_spans(student, y0, 12, new_entrant=False, leaver=False)
        for _ in range(max(1, self.size * 3 // 100)):  # left the district last year
            grade = rng.randint(1, 12)
            student = self._new_student(grade)
            self._year_spans(student, y0, grade - 1, new_entrant=False, leaver=True)
        # summer sessions that have started by today (last year's, and this year's when today is in summer)
        for year in self.years:
            summer = cal.summer_session(year)
            if summer.start > self.today:
                continue
            done: set[int] = set()
            for e in list(self.enrollments):
                site = self.sites[e.site_id]
                if e.academic_year != year or not site.has_summer or e.exit_code == "T200":
                    continue
                if e.student.student_id in done or e.session_type_id != cal.NORMAL or rng.random() >= 0.12:
                    continue
                done.add(e.student.student_id)
                self.enrollments.append(Enrollment(e.student, e.site_id, year, e.grade_level_id, summer.start,
                                                   summer.end, cal.SUMMER, "02"))

    def _slot_index(self, student: Student, year: int, n: int) -> int:
        return mix(self.seed, student.student_id, year, 77) % n

    def _gen_sections_and_rosters(self) -> None:
        counts: dict[tuple[int, int, int, int], int] = defaultdict(int)
        for e in self.enrollments:
            counts[(e.site_id, e.academic_year, e.session_type_id, e.grade_level_id)] += 1
        sec_id = 1001
        load: dict[tuple[int, int, str], int] = defaultdict(int)
        # (site, year, session, grade) -> list of slots; a slot is a list of lists of sections (one list per term)
        self.slots: dict[tuple[int, int, int, int], list[list[list[Section]]]] = {}
        rng = self.rng
        for (site_id, year, session_type, gid), count in sorted(counts.items()):
            site = self.sites[site_id]
            grade = gid - 1
            terms = self.terms_by_site_year[(site_id, year, session_type)]
            yearlong = terms[0]
            slot_specs: list[list[tuple[Term, Course]]] = []
            if session_type == cal.SUMMER:
                prefix = "Credit Recovery" if site.level == "high" else "Summer Bridge"
                for subject in ("English", "Math"):
                    slot_specs.append([(yearlong, self.course_by_key[(site.level, f"{prefix} {subject}")])])
                per = 25
            elif site.level == "elementary":
                name = "Kindergarten Core" if grade == 0 else f"Grade {grade} Core"
                slot_specs.append([(yearlong, self.course_by_key[("elementary", name)])])
                per = 26
            elif site.level == "middle":
                for dept in MIDDLE_SLOTS:
                    short = f"{dept} {grade}" if dept not in ("Physical Education", "Elective") else f"{dept} MS"
                    slot_specs.append([(yearlong, self.course_by_key[("middle", short)])])
                per = 30
            else:
                for slot in HIGH_COURSES[grade]:
                    if isinstance(slot[0], tuple):
                        s1, s2 = slot  # type: ignore[misc]
                        slot_specs.append([(terms[1], self.course_by_key[("high", s1[1])]),
                                           (terms[2], self.course_by_key[("high", s2[1])])])
                    else:
                        slot_specs.append([(yearlong, self.course_by_key[("high", str(slot[1]))])])
                per = 30
            n = max(1, math.ceil(count / per))
            slots: list[list[list[Section]]] = []
            for k, spec in enumerate(slot_specs):
                per_term: list[list[Section]] = []
                for term, course in spec:
                    secs: list[Section] = []
                    for j in range(n):
                        period = "All Day" if site.level == "elementary" else str((k + j) % 6 + 1)
                        dept = course.department if site.level != "elementary" else f"Grade {grade}"
                        load_key = (site_id, year, dept)
                        load[load_key] += 1
                        per_teacher = 1 if site.level == "elementary" else 5
                        teacher = self._teacher(site_id, dept, (load[load_key] - 1) // per_teacher, year)
                        spans = [TeacherSpan(teacher.user_id, term.start, term.end, True)]
                        if rng.random() < 0.05:
                            co = self._teacher(site_id, "Special Education", j % 3, year)
                            spans.append(TeacherSpan(co.user_id, term.start + dt.timedelta(days=21), term.end, False))
                        name = "Homeroom" if site.level == "elementary" and rng.random() < 0.5 else ""
                        sec = Section(sec_id, site_id, term, course, period, rng.randint(100, 420), name,
                                      None if rng.random() < 0.5 else f"{site_id}-{sec_id}", spans, gid)
                        self.sections[sec_id] = sec
                        sec_id += 1
                        secs.append(sec)
                    per_term.append(secs)
                slots.append(per_term)
            self.slots[(site_id, year, session_type, gid)] = slots
            if session_type == cal.SUMMER:
                self._reuse_normal_gradebook_names(slots, self.slots.get((site_id, year, cal.NORMAL, gid), []))
        for e in self.enrollments:
            self._roster_enrollment(e)

    @staticmethod
    def _reuse_normal_gradebook_names(summer: list[list[list[Section]]], normal: list[list[list[Section]]]) -> None:
        """A summer section's gradebook takes the name of the normal session's first gradebook of its subject (a
        teacher copying last term's gradebook): one gradebook name in two sessions of one year, for a student in both
        (the API's gradebook records name no session)."""
        by_department = {per_term[0][0].course.department: per_term[0][0] for per_term in normal if per_term[0]}
        for per_term in summer:
            for section in per_term[0]:
                subject = "Mathematics" if section.course.short_name.endswith("Math") else "English"
                twin = by_department.get(subject)
                if twin is not None:
                    section.gradebook_name = twin.gradebook_name

    def _roster_enrollment(self, e: Enrollment) -> list[Roster]:
        made: list[Roster] = []
        slots = self.slots.get((e.site_id, e.academic_year, e.session_type_id, e.grade_level_id))
        if not slots:
            return made
        for per_term in slots:
            for secs in per_term:
                sec = secs[self._slot_index(e.student, e.academic_year, len(secs))]
                start = max(e.entry_date, sec.term.start)
                end = min(e.leave_date, sec.term.end)
                if start <= end:
                    roster = Roster(e.student, sec, e, start, end)
                    self.rosters.append(roster)
                    made.append(roster)
        return made

    def _make_contacts(self, student: Student) -> None:
        rng = self.rng
        n = rng.choice((1, 2, 2, 2, 3))
        rels = [("Mother", "M", "F"), ("Father", "F", "M"), ("Grandparent", "G", rng.choice("MF")),
                ("Guardian", "L", rng.choice("MF"))]
        first_two = rels[:2] if rng.random() < 0.8 else [rels[3], rels[2]]
        chosen = [*first_two, rels[2]][:n]
        language = (LANGUAGE_CODES.get(student.language, "EN"), student.language.title())
        for i, (rel, code, gender) in enumerate(chosen):
            cid = self._next_contact_id
            self._next_contact_id += 1
            first = rng.choice(FIRST_M if gender == "M" else FIRST_F)
            last = student.last_name if rng.random() < 0.8 else rng.choice(LAST)
            self.contacts.append(Contact(
                contact_id=cid, student=student, first_name=first, middle_name=rng.choice(("", "J", "M", "A")),
                last_name=last, prefix="" if rng.random() < 0.7 else ("Mr." if gender == "M" else "Ms."),
                suffix="", relationship=rel, type_code=code, gender=gender,
                birth_date=student.birth_date - dt.timedelta(days=rng.randint(20 * 365, 45 * 365)),
                marital=rng.choice((("M", "Married"), ("S", "Single"), ("D", "Divorced"))), language=language,
                email=f"{first.lower()}.{last.lower()}{cid}@mail.example.com",
                home_phone=f"951555{rng.randint(1000, 9999)}" if rng.random() < 0.6 else None,
                work_phone=f"909555{rng.randint(1000, 9999)}" if rng.random() < 0.3 else None,
                mobile_phone=f"714555{rng.randint(1000, 9999)}" if rng.random() < 0.8 else None,
                resides_with=i == 0 or rng.random() < 0.5, legal_guardian=i < 2 and rel != "Grandparent",
                emergency_contact=True if i == 0 else rng.random() < 0.7, is_primary=i == 0,
                email_opt_out=rng.random() < 0.05,
            ))

    def _gen_contacts(self) -> None:
        for student in self.students.values():
            self._make_contacts(student)

    def _gen_counselors(self) -> None:
        counselors: dict[int, list[User]] = {}
        per_site: dict[int, set[int]] = defaultdict(set)
        for e in self.enrollments:
            per_site[e.site_id].add(e.student.student_id)
        for site in self.sites.values():
            if site.level in ("middle", "high"):
                n = max(1, math.ceil(len(per_site[site.site_id]) / 2 / 350))
                counselors[site.site_id] = []
                for _ in range(n):
                    user = self._new_user("Counselor")
                    self._add_roles(user, site.site_id, ROLE_COUNSELOR)
                    counselors[site.site_id].append(user)
        self.counselors_by_site = counselors
        for e in self.enrollments:
            self._counselor_for(e)

    def _counselor_for(self, e: Enrollment) -> None:
        pool = self.counselors_by_site.get(e.site_id) if hasattr(self, "counselors_by_site") else None
        if not pool or e.session_type_id != cal.NORMAL:
            return
        counselor = pool[mix(self.seed, e.student.student_id, 5) % len(pool)]
        end = e.leave_date if e.leave_date < self.today or e.academic_year < self.current_year else None
        earlier = self._continued_counselor_span(e, counselor)
        if earlier is not None:  # the same assignment goes on: one record spanning both years
            earlier.end, earlier.last_year = end, e.academic_year
            return
        self.counselor_spans.append(CounselorSpan(e.student, counselor, e.site_id, e.academic_year, e.entry_date, end))

    def _continued_counselor_span(self, e: Enrollment, counselor: User) -> CounselorSpan | None:
        """The previous year's assignment that `e` continues, for half of the students who finish a year at a school
        and return to it with the same counselor (the others get a new assignment record each year)."""
        if mix(self.seed, e.student.student_id, 6) % 2 or e.entry_date != cal.normal_session(e.academic_year).start:
            return None
        for span in reversed(self.counselor_spans):
            if span.student is e.student:
                finished = span.end == cal.normal_session(e.academic_year - 1).end
                same = span.counselor is counselor and span.site_id == e.site_id
                return span if finished and same and span.last_year == e.academic_year - 1 else None
        return None

    def _gen_special_ed_and_programs(self) -> None:
        rng = self.rng
        first_year_start = cal.normal_session(self.years[0]).start
        for student in self.students.values():
            if rng.random() < 0.12:
                student.disability = rng.choice(DISABILITIES)
                if rng.random() < 0.15:
                    student.sped = "exited"
                    student.sped_exit = _random_date(
                        rng, first_year_start, min(self.today, first_year_start + dt.timedelta(days=400)))
                else:
                    student.sped = "current"
            self._programs_for(student)

    def _programs_for(self, student: Student) -> None:
        rng = self.rng
        start = student.district_entry_date

        def add(key: str, pstart: dt.date, pend: dt.date | None) -> None:
            code, desc = PROGRAMS[key]
            self.programs.append(Program(student, code, desc, pstart, pend, pstart, pend))

        if student.fluency == "English Learner":
            add("EL", start, None)
        elif student.reclassification_date is not None:
            reclass = student.reclassification_date
            add("EL", start if start < reclass else reclass - dt.timedelta(days=400),
                student.reclassification_date)
        if student.gifted:
            add("GATE", max(start, cal.normal_session(self.years[0]).start), None)
        if student.plan_504:
            add("504", start, None)
        if student.lunch_status in ("FL", "RL"):
            key = "FREE" if student.lunch_status == "FL" else "REDUCED"
            for year in self.years:
                sess = cal.normal_session(year)
                if rng.random() < 0.95:
                    add(key, sess.start, sess.end)

    def _gen_behavior(self) -> None:
        rng = self.rng
        counters: dict[int, int] = defaultdict(int)
        normal = [e for e in self.enrollments if e.session_type_id == cal.NORMAL]
        for pos, e in enumerate(normal):
            if rng.random() >= 0.05 or (self.sites[e.site_id].level == "elementary" and rng.random() < 0.6):
                continue
            last = min(e.leave_date, self.today)
            days = [d for d in cal.instructional_days(e.academic_year) if e.entry_date <= d <= last]
            if not days:
                continue
            for _ in range(rng.choice((1, 1, 2, 3))):
                counters[e.site_id] += 1
                major = rng.random() < 0.3
                action = rng.choice(("Warning", "Detention", "Parent Conference", "Suspension", "Counseling"))
                incident = Incident(
                    student=e.student, site_id=e.site_id,
                    incident_id=f"{e.site_id}-{e.academic_year}-{counters[e.site_id]:05d}",
                    date=rng.choice(days), incident_type="Major" if major else "Minor", action=action,
                    offenses=(rng.choice(("48900(a)", "48900(k)", "48900(b)", "48900.4")),
                              "null" if rng.random() < 0.7 else "48900(k)", "null"),
                    most_severe=rng.choice(("100", "110", "500", "510")),
                    duration_days=rng.randint(1, 5) if action == "Suspension" else 0,
                    support="1" if rng.random() < 0.5 else "0", weapon="null" if rng.random() < 0.95 else "111",
                    modification="null" if rng.random() < 0.9 else "100",
                )
                self.incidents.append(incident)
                if rng.random() < 0.15:  # a second student in the same incident
                    peers = [x for x in normal[max(0, pos - 40): pos + 40]
                             if x.site_id == e.site_id and x.academic_year == e.academic_year
                             and x.student is not e.student
                             and x.active_on(incident.date)]
                    if peers:
                        peer = rng.choice(peers)
                        self.incidents.append(Incident(peer.student, e.site_id, incident.incident_id, incident.date,
                                                       incident.incident_type, action, incident.offenses,
                                                       incident.most_severe, incident.duration_days, incident.support,
                                                       incident.weapon, incident.modification))

    # -- assessments -----------------------------------------------------------------------------------------

    def _bands(self) -> list[Band]:
        return [Band(*b) for b in BAND_TEMPLATE]

    def _standards(self, subject: str, grade: int, n: int) -> list[Standard]:
        rng = self.rng
        prefix = {"English Language Arts": "ELA", "Mathematics": "MA", "Science": "SCI"}.get(subject, "HSS")
        out = []
        for i in range(n):
            guid = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
            out.append(Standard(guid, f"CA.{prefix}.{grade}.{i + 1}.{rng.randint(1, 9)}",
                                f"{subject} standard {grade}.{i + 1}: demonstrate understanding of concept "
                                f"{rng.randint(1, 40)}"))
        return out

    def _gen_assessments(self) -> None:
        rng = self.rng
        aid = 1001
        plan = ((9, 10), (10, 1), (10, 20), (11, 10), (12, 8), (1, 20), (2, 25), (3, 20), (4, 22), (5, 15))
        authors = [u for u in self.users.values() if u.job_title in ("Teacher", "Principal", "District Administrator")
                   and u.exit_date is None]
        for year in self.years:
            for k, (month, day) in enumerate(plan):
                cal_year = year - 1 if month >= 8 else year
                administered = dt.date(cal_year, month, day)
                while not cal.is_instructional(administered):
                    administered += dt.timedelta(days=1)
                if administered > self.today - dt.timedelta(days=3):
                    continue
                subject_id, subject = SUBJECTS[k % 4]
                scope_id, scope = SCOPES[k % 3 if k % 5 else 3]
                lo = [3, 6, 9, 0][k % 4] + (k // 4) % 3
                grades = [g for g in range(lo, min(lo + (2 if lo >= 9 else 3), 13))]
                nfields = rng.randint(8, 16)
                groups = {0: ["Reading Comprehension", "Vocabulary", "Writing Conventions"],
                          1: ["Number Sense", "Algebra and Functions", "Measurement"],
                          2: ["Physical Science", "Life Science"],
                          3: ["Historical Thinking", "Geography"]}[k % 4]
                standards = self._standards(subject, grades[0], rng.randint(2, 4))
                fields = []
                for i in range(nfields):
                    rubric = i >= nfields - 2 and rng.random() < 0.6
                    key = {} if rubric else {1: rng.choice("ABCD"), 2: rng.choice("ABCD")}
                    fields.append(AssessmentField(i, 3 if rubric else 1, rubric, key, groups[i % len(groups)],
                                                  standards[i % len(standards)].guid))
                created = dt.datetime.combine(administered - dt.timedelta(days=rng.randint(7, 30)),
                                              dt.time(rng.randint(7, 17), rng.randint(0, 59), rng.randint(0, 59)))
                author = rng.choice(authors)
                a = Assessment(
                    assessment_id=aid, local_assessment_id=f"LA-{year}-{k + 1:02d}",
                    title=(f"{subject} {scope} {k + 1} (Gr {', '.join(str(g) if g else 'K' for g in grades)}) "
                           f"{year - 1}-{str(year)[2:]}"),
                    description=f"{scope} for {subject}.", author=author, created_at=created,
                    updated_at=created + dt.timedelta(seconds=rng.randint(1, 86400)), scope_id=scope_id, scope=scope,
                    subject_id=subject_id, subject=subject, grade_level_ids=[g + 1 for g in grades],
                    academic_year=year, administered_at=administered,
                    guid=str(uuid.UUID(int=rng.getrandbits(128), version=4)), fields=fields, groups=groups,
                    standards=standards, bands=self._bands(),
                )
                self.assessments[aid] = a
                aid += 1
                self._results_for(a)

    def score(self, a: Assessment, student: Student, boost: float = 0.0) -> bytes:
        rng = self.rng
        ability = min(0.99, student.ability + boost)
        out = bytearray()
        for f in a.fields:
            if f.is_rubric:
                out.append(max(0, min(f.maximum, round(ability * f.maximum + rng.uniform(-1, 1)))))
            else:
                out.append(1 if rng.random() < ability else 0)
        return bytes(out)

    def now(self) -> dt.datetime:
        """The server's wall clock: the current time in its zone, without a zone, as the API writes timestamps."""
        return dt.datetime.now(self.zone).replace(tzinfo=None)

    def _modified(self, day: dt.date) -> dt.datetime:
        rng = self.rng
        stamp = dt.datetime.combine(day, dt.time(15, 0)) + dt.timedelta(minutes=rng.randint(0, 60 * 40))
        return min(stamp, self.now() - dt.timedelta(hours=3))

    def _results_for(self, a: Assessment) -> None:
        rng = self.rng
        year_days = [d for d in cal.instructional_days(a.academic_year) if a.administered_at <= d <= self.today]
        window = year_days[:6]
        if not window:
            return
        for e in self.enrollments:
            if e.academic_year != a.academic_year or e.grade_level_id not in a.grade_level_ids:
                continue
            if e.session_type_id != cal.NORMAL or rng.random() < 0.05:
                continue
            taken = [d for d in window if e.active_on(d)]
            if not taken:
                continue
            day = rng.choice(taken)
            version = rng.choice((1, 2))
            self.results.append(Result(a, e.student, day, version, self.score(a, e.student), e.site_id,
                                       e.grade_level_id, self._modified(day)))
            if rng.random() < 0.05:
                later = [d for d in year_days if d > day + dt.timedelta(days=10) and e.active_on(d)][:10]
                if later:
                    d2 = rng.choice(later)
                    self.results.append(Result(a, e.student, d2, version, self.score(a, e.student, 0.1), e.site_id,
                                               e.grade_level_id, self._modified(d2)))

    def _gen_pools(self) -> None:
        rng = self.rng
        pid = 501
        for year in self.years:
            for title, lo, hi, month in (("Reading Inventory", 3, 8, 10), ("Math Inventory", 3, 8, 11),
                                         ("Science Check", 9, 10, 2)):
                day = dt.date(year - 1 if month >= 8 else year, month, 3)
                while not cal.is_instructional(day):
                    day += dt.timedelta(days=1)
                if day > self.today - dt.timedelta(days=3):
                    continue
                subject = ("English Language Arts" if "Reading" in title
                           else ("Mathematics" if "Math" in title else "Science"))
                pool = PoolAssessment(pid, f"{title} {year - 1}-{str(year)[2:]}", self._standards(subject, lo, 3),
                                      30, self._bands(), year)
                self.pools[pid] = pool
                pid += 1
                for e in self.enrollments:
                    if e.academic_year != year or not (lo + 1 <= e.grade_level_id <= hi + 1) or not e.active_on(day):
                        continue
                    if e.session_type_id != cal.NORMAL or rng.random() < 0.1:
                        continue
                    ability = e.student.ability
                    pts = tuple(max(0, min(10, round(ability * 10 + rng.uniform(-2, 2)))) for _ in pool.standards)
                    start = dt.datetime.combine(day, dt.time(8, 0)) + dt.timedelta(minutes=rng.randint(0, 360))
                    self.pool_results.append(PoolResult(pool, e.student, day, pts, start, rng.randint(8, 55),
                                                        rng.choice((0, 0, 0, 1, 2)), e.site_id, e.grade_level_id))

    def _gen_repositories(self) -> None:
        rng = self.rng
        for i, title in enumerate(("State Test Scores", "Reading Fluency", "Vendor Diagnostic")):
            self.repositories[i + 1] = Repository(i + 1, _random_hex(rng, 6), title)

    # -- post-generation helpers used by mutations -------------------------------------------------------------

    def add_student(self, site_id: int | None, grade_level_id: int | None, entry: dt.date) -> Student:
        grade = (grade_level_id - 1) if grade_level_id else self.rng.randint(0, 12)
        student = self._new_student(grade)
        student.district_entry_date = entry
        site = self.sites[site_id] if site_id else self._site_for(student, grade)
        if not (site.start_grade_level_id <= grade + 1 <= site.end_grade_level_id):
            raise ValueError(f"site {site.site_id} does not teach grade level {grade + 1}")
        e = Enrollment(student, site.site_id, self.current_year, grade + 1, entry,
                       cal.normal_session(self.current_year).end, cal.NORMAL, "01")
        self.enrollments.append(e)
        self._roster_enrollment(e)
        self._make_contacts(student)
        self._counselor_for(e)
        self._programs_for(student)
        self.touch()
        return student

    def result_percent(self, r: Result, fields: list[int] | None = None) -> tuple[int, int]:
        idx = range(len(r.assessment.fields)) if fields is None else fields
        return sum(r.points[i] for i in idx), sum(r.assessment.fields[i].maximum for i in idx)


def band_for(bands: list[Band], percent: float) -> Band:
    for band in sorted(bands, key=lambda b: -b.minimum):
        if percent >= band.minimum:
            return band
    return bands[-1]
