"""The wire format reproduces the documentation's examples, quirks included, and every catalog column is sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator.testing import get
from illuminate_sync.sources.illuminate.catalog import Endpoint, load_catalog

TODAY = dt.date(2026, 11, 27)
YEAR = {"start_date": "2026-08-01", "end_date": "2027-07-31"}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(students=300, seed=1, today=TODAY)) as s:
        yield s


def high_school(sim: Simulator) -> str:
    return str(next(s.site_id for s in sim.district.sites.values() if s.level == "high"))


def params_for(sim: Simulator, endpoint: Endpoint) -> list[dict[str, str]]:
    """Parameter sets that make an endpoint answer records (every site for per-site endpoints)."""
    d = sim.district
    schools = [str(s.site_id) for s in d.sites.values() if s.level != "district"]
    if endpoint.path.startswith("Assessment/"):
        return [{"__path__": f"Assessment/{a}/View"} for a in list(d.assessments)[:3]]
    if endpoint.path in ("SchoolFocusPermissions", "SchoolFocusSites"):
        return [{"user_id": str(u)} for u in list(d.users)[:3]]
    if endpoint.path == "Attendance/Section":
        return [{"date": "2026-11-20", "site_id": s} for s in schools]
    if endpoint.path == "Attendance/Daily":
        return [{"date": "2026-11-20"}]
    if endpoint.window == "enrollment_range":
        return [
            {"site_id": s, "enrollment_start_date": "2025-08-01", "enrollment_end_date": "2027-07-31"} for s in schools
        ]
    if endpoint.path == "GraduationEligibility":
        return [{"site_id": s, **YEAR} for s in schools]
    base = dict(endpoint.fixed_params)
    if endpoint.window == "date_range":
        base.update({"start_date": "2025-08-01", "end_date": "2027-07-31"})
    if endpoint.window == "date_taken_range":
        base.update({"date_taken_start": "2025-08-01"})
    return [base]


def served(sim: Simulator, endpoint: Endpoint) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for params in params_for(sim, endpoint):
        path = params.pop("__path__", endpoint.path)
        out.extend(sim.query(path, params))
    return out


@pytest.mark.parametrize("table", list(load_catalog()))
def test_every_catalog_column_is_sent(sim: Simulator, table: str) -> None:
    endpoint = load_catalog()[table]
    records = served(sim, endpoint)
    assert records, f"{endpoint.path} answered nothing"
    if endpoint.shape == "site_map":
        assert all(isinstance(k, str) and k.isdigit() for r in records for k in r)
        return
    # The View's assessment_id is not in the document (the documentation's example has none): the sync adds it.
    columns = [c for c in endpoint.columns if not (endpoint.shape == "document" and c == "assessment_id")]
    wire_for = {column: [column, *(w for w, c in endpoint.aliases.items() if c == column)] for column in columns}
    if endpoint.shape == "permissions":
        columns = [c for c in columns if c != "user_id"]
    for record in records:
        missing = [c for c in columns if not any(w in record for w in wire_for[c])]
        assert not missing, f"{endpoint.path} record lacks {missing}"


def test_students_send_ints_t_f_and_literal_null_strings(sim: Simulator) -> None:
    record = sim.query("Students", {})[0]
    assert isinstance(record["student_id"], int) and isinstance(record["academic_year"], int)
    assert record["is_hispanic"] in ("t", "f")
    assert record["aka_middle_name"] == "NULL" and record["name_suffix"] == "NULL"
    typo = [r for r in sim.query("Students", {}) if "primary_disibility" in r]
    assert typo and all("primary_disability" not in r for r in typo)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("UserRoles", {}),
        ("AssessmentAggregateStudentResponses", {}),
        (
            "ProgramCode",
            {"site_id": "HIGH", "enrollment_start_date": "2026-08-01", "enrollment_end_date": "2027-07-31"},
        ),
        ("Attendance/Daily", {"date": "2026-11-20"}),
        ("StudentContacts", {}),
        ("GraduationEligibility", {"site_id": "HIGH", **YEAR}),
    ],
)
def test_string_valued_endpoints_send_only_strings_or_null(sim: Simulator, path: str, params: dict) -> None:
    records = sim.query(path, {k: high_school(sim) if v == "HIGH" else v for k, v in params.items()})
    assert records
    skip = {"user_id", "district_user_id"} if path == "UserRoles" else set()
    for record in records[:50]:
        assert all(v is None or isinstance(v, str) for k, v in record.items() if k not in skip), record


def test_num_results_is_a_string_for_assessments_and_attendance(sim: Simulator) -> None:
    assert isinstance(get(sim, "Assessments", {"page": 1}).json()["num_results"], str)
    assert isinstance(get(sim, "Attendance/Daily", {"date": "2026-11-20"}).json()["num_results"], str)
    assert isinstance(get(sim, "Students", {"page": 1}).json()["num_results"], int)


def test_renamed_and_extra_fields(sim: Simulator) -> None:
    program = sim.query(
        "ProgramCode",
        {"site_id": high_school(sim), "enrollment_start_date": "2026-08-01", "enrollment_end_date": "2027-07-31"},
    )[0]
    assert "enrollment_entry_date" in program and "enrollment_leave_date" in program
    assert "enrollment_start_date" not in program
    term = sim.query("Terms", {})[0]
    assert "start_date" in term and "state_date" not in term
    assert "illuminate_student_id" in sim.query("Attendance/Daily", {"date": "2026-11-20"})[0]
    assert sim.query("MasterSchedule", {})[0]["hqtcc"] in ("Y", "N")
    assert "cte_funding_provider" in sim.query("Courses", {})[0]


def test_gradebook_results_are_a_single_object_when_exactly_one_record_matches(sim: Simulator) -> None:
    elementary = next(r for r in sim.query("Enrollment", {}) if r["grade_level_id"] <= 6)
    local = str(elementary["district_student_id"])
    body = get(sim, "GradebookOverallScores", {"local_student_id": local}).json()
    assert body["num_results"] == 1 and isinstance(body["results"], dict)
    assert body["results"]["local_student_id"] == local
    several = get(sim, "GradebookScores", {"local_student_id": local}).json()
    assert several["num_results"] > 1 and isinstance(several["results"], list)


def test_json_escapes_slashes_like_php(sim: Simulator) -> None:
    raw = get(sim, "GraduationEligibility", {"site_id": high_school(sim), **YEAR, "page": 1}).content
    assert b"UC\\/CSU" in raw


def test_view_matches_the_documented_structure_and_the_aggregates_bands(sim: Simulator) -> None:
    view = sim.query("Assessment/1001/View", {})[0]
    bands = view["performance_band_sets"][0]["performance_bands"]
    assert [b["label"] for b in bands] == ["Advanced", "Proficient", "Basic", "Below Basic", "Far Below Basic"]
    assert [b["is_mastery"] for b in bands] == [True, True, False, False, False]
    assert all(isinstance(b["minimum_value"], str) for b in bands)
    rows = sim.query("AssessmentAggregateStudentResponses", {"assessment_id": "1001"})
    assert rows and {r["performance_band_label"] for r in rows} <= {b["label"] for b in bands}
    for row in rows:
        band = next(b for b in bands if b["label"] == row["performance_band_label"])
        assert float(row["percent_correct"]) >= float(band["minimum_value"])
        assert row["mastered"] == ("t" if band["is_mastery"] else "f")
        assert int(row["points_possible"]) == sum(int(f["maximum"]) for f in view["assessment"]["fields"])
    groups = {g["label"] for g in view["assessment"]["groups"]}
    group_rows = sim.query(
        "AssessmentAggregateStudentResponsesGroup", {"assessment_id": "1001", "date_taken_start": "2025-08-01"}
    )
    assert {r["reporting_group"] for r in group_rows} == groups


def test_attendance_flags_list_has_the_documented_booleans(sim: Simulator) -> None:
    flags = {f["flag_code"]: f for f in sim.query("Attendance/Flags", {})}
    assert {"+", "A", "E", "T", "S"} <= set(flags)
    assert flags["+"]["is_present"] is True and flags["A"]["is_present"] is False
    assert flags["T"]["is_tardy"] is True and flags["S"]["is_suspension"] is True


def test_grade_levels_and_sites_match_the_examples(sim: Simulator) -> None:
    levels = sim.query("GradeLevels", {})
    assert [g["grade_level_id"] for g in levels] == list(range(1, 14))
    assert levels[0]["short_name"] == "K" and levels[1]["short_name"] == 1
    sites = sim.query("Sites", {})
    assert sites[0]["site_id"] == 1 and all(s["parent_site_id"] == 1 for s in sites)
    assert {s["site_type_name"] for s in sites} >= {"Elementary", "Middle Schools", "High Schools"}
