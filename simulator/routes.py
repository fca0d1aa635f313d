"""The simulator's own reading of the API reference: every GET endpoint, its parameters and documented defaults.

Written from the documentation, independently of the source's catalog (`sources/illuminate/endpoints.toml`): a
wrong path, parameter name, limit or default in the catalog is then not served back to the source by the simulator,
so the tests catch it. Each route names its handler, the `q_<handler>` method of `endpoints.Api`.

What the documentation says and the simulator does beyond the letter of a field list is written next to it:
- `page` is listed as required on most paged endpoints, but the documentation's own example code calls
  `/Api/Students?limit=2` without it and clients written against real instances never send it on their first
  request: a paged endpoint without `page` answers page 1 (`tolerated_missing`).
- Gradebook and attendance endpoints document no `page`/`limit` but answer in the page envelope; they accept both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Shape = Literal["paged", "list", "document"]
DefaultRule = Literal["nearest_in_session", "session_start", "session_end", "page_one", "currently_enrolled"]


@dataclass(frozen=True)
class DocumentedDefault:
    """The value a parameter takes when it is not sent, with the documentation's sentence saying so."""

    rule: DefaultRule
    sentence: str


@dataclass(frozen=True)
class Route:
    """One GET endpoint as the documentation describes it."""

    handler: str
    path: str  # below `rest_server.php/Api/`, no slashes around; the View as `Assessment/{assessment_id}/View`
    shape: Shape
    max_limit: int | None = None  # the documented "Max:" of `limit`; None where none is documented
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    defaults: dict[str, DocumentedDefault] = field(default_factory=dict)
    tolerated_missing: tuple[str, ...] = ()  # documented as required, evidently tolerated by the real API
    # (parameter, the parameter it needs), e.g. StudentSpecialEd's "start_date ... (end date required)"
    needs: tuple[tuple[str, str], ...] = ()

    @property
    def is_paged(self) -> bool:
        return self.shape == "paged"

    @property
    def enforced_required(self) -> tuple[str, ...]:
        """The required parameters whose absence is a 400."""
        return tuple(name for name in self.required if name not in self.tolerated_missing)

    def default(self, param: str) -> DefaultRule | None:
        documented = self.defaults.get(param)
        return documented.rule if documented is not None else None

    def matches(self, path: str) -> bool:
        """Whether a request path (no slashes around, e.g. `Assessment/7/View`) is this route's."""
        pattern, parts = self.path.split("/"), path.split("/")
        return len(pattern) == len(parts) and all(
            want == got or (want.startswith("{") and got.isdigit()) for want, got in zip(pattern, parts)
        )


PAGE_TOLERATED = ("page",)  # see the module docstring: the doc's example code omits `page`

TODAY_OR_NEAREST = DocumentedDefault(
    "nearest_in_session",
    "Filter results for a single date. Format 'YYYY-MM-DD'. Defaults to today (or nearest in session date) if not "
    "provided.",
)
STUDENT_SET_TODAY_OR_NEAREST = DocumentedDefault(
    "nearest_in_session",
    "Filter student set for a single date. Format 'YYYY-MM-DD'. Defaults to today (or nearest in session date) if "
    "not provided.",
)
CURRENTLY_ENROLLED = DocumentedDefault(
    "currently_enrolled",
    "Retrieve data for students enrolled as of a particular date. If no date is specified, data for currently "
    "enrolled students will be returned.",
)
PAGE_ONE = DocumentedDefault(
    "page_one", "Which page number to return results for. It will default to page 1 if not provided."
)

STUDENT_FILTERS = ("user_id", "student_id", "district_student_id", "site_id", "grade_level_id")
DATE_RANGE = ("date", "start_date", "end_date")
SECTION_FILTERS = ("user_id", "student_id", "site_id", "section_id", "local_section_id", "course_id", "grade_level_id")
AGGREGATE_FILTERS = (
    "date_taken_start",
    "date_taken_end",
    "modified_after",
    "user_id",
    "student_id",
    "local_student_id",
    "site_id",
    "section_id",
    "local_section_id",
    "course_id",
    "grade_level_id",
)
POOL_FILTERS = (
    "date_taken_start",
    "date_taken_end",
    "user_id",
    "student_id",
    "local_student_id",
    "site_id",
    "section_id",
    "local_section_id",
    "course_id",
    "grade_level_id",
)
GRADEBOOK_PARAMS = ("date", "local_student_id", "session_type")
# Not documented on the gradebook and attendance endpoints, but their answers are page envelopes.
ENVELOPE_PAGING = ("page", "limit")


def _paged(
    handler: str,
    path: str,
    optional: tuple[str, ...],
    *,
    max_limit: int = 1000,
    defaults: dict[str, DocumentedDefault] | None = None,
    needs: tuple[tuple[str, str], ...] = (),
) -> Route:
    """A paged endpoint whose field list says `page (required)` and `limit (optional) ... Max: <max_limit>`."""
    return Route(
        handler,
        path,
        "paged",
        max_limit,
        required=("page",),
        optional=("limit", *optional),
        defaults=defaults or {},
        tolerated_missing=PAGE_TOLERATED,
        needs=needs,
    )


def _gradebook(handler: str, path: str, with_section: bool) -> Route:
    names = (*GRADEBOOK_PARAMS, "section_name") if with_section else GRADEBOOK_PARAMS
    return Route(handler, path, "paged", optional=(*names, *ENVELOPE_PAGING), defaults={"date": CURRENTLY_ENROLLED})


ROUTES: tuple[Route, ...] = (
    Route("sites", "Sites", "list"),
    Route("grade_levels", "GradeLevels", "list"),
    _paged("students", "Students", (*STUDENT_FILTERS, *DATE_RANGE), defaults={"date": TODAY_OR_NEAREST}),
    # "limit ... Max: 30,000"
    _paged(
        "students2",
        "Students2",
        (*STUDENT_FILTERS, *DATE_RANGE, "include_programs"),
        max_limit=30000,
        defaults={"date": TODAY_OR_NEAREST},
    ),
    _paged("student_contacts", "StudentContacts", ("site_id", "legal_guardian", "emergency_contact", "resides_with")),
    # ProgramCode lists `page` as optional and documents no default for it: page 1 like everywhere else.
    Route(
        "program_code",
        "ProgramCode",
        "paged",
        1000,
        required=("site_id", "enrollment_start_date", "enrollment_end_date"),
        optional=("page", "limit", "district_student_id", "student_id", "program_start_date", "program_end_date"),
    ),
    _paged(
        "student_counselors",
        "StudentCounselors",
        ("student_id", "district_student_id", "counselor_id", "district_counselor_id", *DATE_RANGE),
        defaults={"date": STUDENT_SET_TODAY_OR_NEAREST},
    ),
    _paged(
        "student_special_ed",
        "StudentSpecialEd",
        (
            "is_specialed",
            "user_id",
            "student_id",
            "local_student_id",
            "district_student_id",
            "site_id",
            "grade_level_id",
            *DATE_RANGE,
        ),
        defaults={
            "date": DocumentedDefault(
                "nearest_in_session",
                "Filter student set for a single date based on enrollment data. Format 'YYYY-MM-DD'. Defaults to "
                "today (or nearest in session date) if not provided.",
            )
        },
        # "start_date ... (end date required)", "end_date ... (start date required)"
        needs=(("start_date", "end_date"), ("end_date", "start_date")),
    ),
    _paged("users", "Users", ("user_id", "district_user_id")),
    _paged(
        "user_roles", "UserRoles", ("user_id", "district_user_id", "academic_year", "site_id", "term_id", "role_id")
    ),
    # Documented as "a paginated list" but the example answer is a bare document of permission flags.
    Route("school_focus_permissions", "SchoolFocusPermissions", "document", required=("user_id",)),
    Route("school_focus_sites", "SchoolFocusSites", "document", required=("user_id",)),
    _paged(
        "terms",
        "Terms",
        (*SECTION_FILTERS, *DATE_RANGE),
        defaults={
            "start_date": DocumentedDefault(
                "session_start",
                "Filter results for a date range. Format 'YYYY-MM-DD'. "
                "Defaults to the session start date if not provided.",
            ),
            "end_date": DocumentedDefault(
                "session_end",
                "Filter results for a date range. Format 'YYYY-MM-DD'. "
                "Defaults to the session end date if not provided.",
            ),
        },
    ),
    _paged("courses", "Courses", (*SECTION_FILTERS, *DATE_RANGE), defaults={"date": TODAY_OR_NEAREST}),
    _paged(
        "enrollment",
        "Enrollment",
        ("user_id", "student_id", "site_id", "grade_level_id", *DATE_RANGE),
        defaults={"date": TODAY_OR_NEAREST},
    ),
    _paged(
        "master_schedule",
        "MasterSchedule",
        (*SECTION_FILTERS, "section_name", *DATE_RANGE),
        defaults={"date": TODAY_OR_NEAREST},
    ),
    _paged(
        "roster", "Roster", (*SECTION_FILTERS, "district_student_id", *DATE_RANGE), defaults={"date": TODAY_OR_NEAREST}
    ),
    _paged(
        "assessments",
        "Assessments",
        ("assessment_id", "local_assessment_id", "author_id", "district_author_id", "subject_id", "scope_id"),
    ),
    # The overall aggregate's `date` reads "Filter results for a single date." with no default: without a date
    # parameter every student's results are returned.
    _paged(
        "assessment_aggregate_student_responses",
        "AssessmentAggregateStudentResponses",
        ("assessment_id", *AGGREGATE_FILTERS, *DATE_RANGE),
    ),
    _paged(
        "assessment_aggregate_student_responses_group",
        "AssessmentAggregateStudentResponsesGroup",
        ("assessment_id", *AGGREGATE_FILTERS, *DATE_RANGE),
        defaults={"date": TODAY_OR_NEAREST},
    ),
    _paged(
        "assessment_aggregate_student_responses_standard",
        "AssessmentAggregateStudentResponsesStandard",
        ("assessment_id", *AGGREGATE_FILTERS, *DATE_RANGE),
        defaults={"date": TODAY_OR_NEAREST},
    ),
    _paged(
        "pool_assessment_aggregate_student_responses",
        "PoolAssessmentAggregateStudentResponses",
        ("pool_assessment_id", *POOL_FILTERS, *DATE_RANGE),
        defaults={"date": TODAY_OR_NEAREST},
    ),
    # The documented URL reads "Api/ PoolAssessmentAggregateStudentResponsesStandard/": the space is a typo.
    _paged(
        "pool_assessment_aggregate_student_responses_standard",
        "PoolAssessmentAggregateStudentResponsesStandard",
        ("pool_assessment_id", *POOL_FILTERS, *DATE_RANGE),
        defaults={"date": TODAY_OR_NEAREST},
    ),
    Route("assessment_view", "Assessment/{assessment_id}/View", "document"),
    # `flag_code` is listed without "(optional)" but described as a filter; the example sends it, we accept both.
    Route(
        "attendance_daily",
        "Attendance/Daily",
        "paged",
        required=("date",),
        optional=(
            "flag_code",
            "user_id",
            "student_id",
            "site_id",
            "section_id",
            "local_section_id",
            "course_id",
            "grade_level_id",
            *ENVELOPE_PAGING,
        ),
    ),
    Route(
        "attendance_section",
        "Attendance/Section",
        "paged",
        required=("date", "site_id"),
        optional=(
            "flag_code",
            "user_id",
            "student_id",
            "section_id",
            "local_section_id",
            "course_id",
            "grade_level_id",
            *ENVELOPE_PAGING,
        ),
    ),
    Route("attendance_flags", "Attendance/Flags", "list"),
    Route(
        "course_requirement_checks",
        "CourseRequirementChecks",
        "list",
        optional=("site_id", "as_of_date"),
        defaults={"as_of_date": CURRENTLY_ENROLLED},
    ),
    Route(
        "graduation_eligibility",
        "GraduationEligibility",
        "paged",
        1000,
        required=("site_id", "start_date", "end_date"),
        optional=("page", "limit", "student_id", "district_student_id", "course_requirement_name"),
        defaults={"page": PAGE_ONE},
    ),
    Route(
        "behavior",
        "Behavior",
        "paged",
        1000,
        required=("site_id", "enrollment_start_date", "enrollment_end_date"),
        optional=("page", "limit", "student_id", "district_student_id"),
        defaults={"page": PAGE_ONE},
    ),
    _gradebook("gradebook_scores", "GradebookScores", False),
    _gradebook("gradebook_overall_scores", "GradebookOverallScores", False),
    _gradebook("gradebook_category_scores", "GradebookCategoryScores", False),
    _gradebook("gradebook_standards_scores", "GradebookStandardsScores", False),
    _gradebook("gradebook_scores_with_section", "GradebookScoresWithSection", True),
    _gradebook("gradebook_overall_scores_with_section", "GradebookOverallScoresWithSection", True),
    _gradebook("gradebook_category_scores_with_section", "GradebookCategoryScoresWithSection", True),
    _gradebook("gradebook_standards_scores_with_section", "GradebookStandardsScoresWithSection", True),
)


def route_for(path: str) -> Route | None:
    """The route serving a request path (no slashes around; the View as `Assessment/7/View`), if any."""
    return next((route for route in ROUTES if route.matches(path)), None)
