"""Paging, limits, required parameters and routing behave like the Illuminate API."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
import requests

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator.routes import ROUTES, Route, route_for
from illuminate_sync.simulator.testing import all_pages, api_url, get, oauth1

TODAY = dt.date(2026, 11, 27)
YEAR = {"start_date": "2026-08-01", "end_date": "2027-07-31"}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(students=300, seed=1, today=TODAY)) as s:
        yield s


@pytest.mark.parametrize(
    ("path", "params", "limit"),
    [
        ("Students", {}, 37),
        ("Roster", YEAR, 250),
        ("Attendance/Daily", {"date": "2026-11-20"}, 50),
        ("AssessmentAggregateStudentResponsesGroup", {"date_taken_start": "2025-08-01"}, 333),
        ("GradebookScores", {}, 999),
    ],
)
def test_union_of_all_pages_is_the_full_answer_without_duplicates(
    sim: Simulator, path: str, params: dict[str, str], limit: int
) -> None:
    records, envelopes = all_pages(sim, path, params, limit)
    expected = sim.query(path, params)
    assert records == expected
    assert len({json.dumps(r, sort_keys=True) for r in records}) == len(records)
    total = len(expected)
    for number, envelope in enumerate(envelopes, start=1):
        assert envelope["page"] == number
        assert int(envelope["num_results"]) == total
        assert envelope["num_pages"] == -(-total // limit)


def test_page_past_the_end_is_empty_with_correct_counts(sim: Simulator) -> None:
    total = len(sim.query("Students", {}))
    body = get(sim, "Students", {"page": 99, "limit": 100}).json()
    assert body == {"page": 99, "num_pages": -(-total // 100), "num_results": total, "results": []}


def test_empty_result_has_zero_pages(sim: Simulator) -> None:
    body = get(sim, "Students", {"page": 1, "student_id": 1}).json()
    assert body == {"page": 1, "num_pages": 0, "num_results": 0, "results": []}
    body = get(sim, "Attendance/Daily", {"date": "2026-11-28"}).json()  # a Saturday
    assert body == {"page": 1, "num_pages": 0, "num_results": "0", "results": []}


def test_limit_above_the_maximum_is_clamped(sim: Simulator) -> None:
    total = len(sim.query("Roster", YEAR))
    assert total > 1000
    body = get(sim, "Roster", {**YEAR, "page": 1, "limit": 5000}).json()
    assert len(body["results"]) == 1000 and body["num_pages"] == -(-total // 1000)


def test_default_limit_is_1000(sim: Simulator) -> None:
    body = get(sim, "Roster", {**YEAR, "page": 1}).json()
    assert len(body["results"]) == 1000
    body2 = get(sim, "Students2", {**YEAR, "page": 1}).json()
    assert len(body2["results"]) == min(1000, body2["num_results"])


def test_students2_accepts_limits_up_to_30000(sim: Simulator) -> None:
    total = len(sim.query("Students2", YEAR))
    body = get(sim, "Students2", {**YEAR, "page": 1, "limit": 100000}).json()
    assert body["num_pages"] == 1 and len(body["results"]) == total


def _required_cases() -> list[tuple[str, str]]:
    return [(route.path, name) for route in ROUTES for name in route.enforced_required]


def test_page_is_the_only_documented_requirement_the_simulator_tolerates() -> None:
    tolerated = {name for route in ROUTES for name in route.tolerated_missing}
    assert tolerated == {"page"}
    section = route_for("Attendance/Section")
    assert section is not None and section.enforced_required == ("date", "site_id")


@pytest.mark.parametrize(("path", "missing"), _required_cases())
def test_each_missing_required_parameter_is_a_400_naming_it(sim: Simulator, path: str, missing: str) -> None:
    values = {
        "page": "1",
        "date": "2026-11-20",
        "site_id": "4",
        "user_id": "1001",
        "start_date": "2026-08-01",
        "end_date": "2027-07-31",
        "enrollment_start_date": "2026-08-01",
        "enrollment_end_date": "2027-07-31",
    }
    route = route_for(path)
    assert route is not None
    params = {name: values[name] for name in route.enforced_required if name != missing}
    response = get(sim, path, params)
    assert response.status_code == 400
    assert missing in response.json()["error"]["message"]
    params[missing] = values[missing]
    assert get(sim, path, params).status_code == 200


@pytest.mark.parametrize("route", [r for r in ROUTES if "page" in r.tolerated_missing], ids=lambda r: r.path)
def test_a_paged_endpoint_without_page_answers_page_one(sim: Simulator, route: Route) -> None:
    # The documentation's example code calls `/Api/Students?limit=2` with no `page` although the field list calls it
    # required, and clients written against real instances send no `page` on their first request: page 1 it is.
    path = route.path
    without = get(sim, path, {"limit": 2})
    assert without.status_code == 200
    assert without.json() == get(sim, path, {"page": 1, "limit": 2}).json()
    assert without.json()["page"] == 1


def test_unknown_path_is_404_with_blank_body(sim: Simulator) -> None:
    response = get(sim, "NoSuchThing")
    assert response.status_code == 404 and response.content == b""
    assert get(sim, "Assessment/999999/View").status_code == 404
    assert requests.get(f"http://127.0.0.1:{sim.port}/other/rest_server.php/Api/Sites/", timeout=10).status_code == 404


def test_wrong_method_on_a_known_path_is_405(sim: Simulator) -> None:
    assert requests.post(api_url(sim, "Students"), auth=oauth1(sim), timeout=10).status_code == 405
    assert get(sim, "Assessment/1001/Scores").status_code == 405
    assert requests.delete(api_url(sim, "Sites"), auth=oauth1(sim), timeout=10).status_code == 405


def test_trailing_slash_is_optional(sim: Simulator) -> None:
    url = f"{sim.base_url}/rest_server.php/Api/Sites"
    assert requests.get(url, auth=oauth1(sim), timeout=10).json() == get(sim, "Sites").json()


def test_shapes_bare_lists_document_permissions_and_site_map(sim: Simulator) -> None:
    for path in ("Sites", "GradeLevels", "Attendance/Flags", "CourseRequirementChecks"):
        assert isinstance(get(sim, path).json(), list), path
    view = get(sim, "Assessment/1001/View").json()
    assert set(view) == {"exported_at", "version", "performance_band_sets", "assessment"}
    user = next(u for u in sim.district.users.values() if u.roles)
    perms = get(sim, "SchoolFocusPermissions", {"user_id": user.user_id}).json()
    assert isinstance(perms, dict) and all(isinstance(v, bool) for v in perms.values())
    sites = get(sim, "SchoolFocusSites", {"user_id": user.user_id}).json()
    assert sites == {str(r[0]): sim.district.sites[r[0]].name for r in user.roles}


def test_bad_parameter_values_are_400(sim: Simulator) -> None:
    assert get(sim, "Students", {"page": "x"}).status_code == 400
    assert get(sim, "Students", {"page": 1, "date": "27/11/2026"}).status_code == 400
    assert get(sim, "Students", {"page": 1, "start_date": "2026-12-01", "end_date": "2026-11-01"}).status_code == 400


def test_request_counts_are_per_catalog_path(sim: Simulator) -> None:
    sim.reset_request_counts()
    get(sim, "Students", {"page": 1})
    get(sim, "Students", {"page": 2})
    get(sim, "Assessment/1001/View")
    get(sim, "Assessment/1002/View")
    assert sim.request_counts() == {"Students": 2, "Assessment/{assessment_id}/View": 2}
    sim.reset_request_counts()
    assert sim.request_counts() == {}
