"""The documentation's examples, sent to the simulator over HTTP: its answers have the documented shapes.

(a) The PHP and Python snippets of the Authentication section, made for real with requests-oauthlib (OAuth1,
`signature_type='auth_header'`), including `/Api/Students?limit=2` with no `page`.
(b) Every GET endpoint's documented example parameters (the "Example" under Parameters), sent to the simulator; the
answer's shape is checked against the documented example response: the page envelope, a bare list or a document,
each record's field names those of a documented example record, plus fields the Response field list documents but
the example omits. The examples are in tests/data/api_examples.json, transcribed from the API reference.

The examples name ids and dates of the documentation's demo district (site 999, user 12345, 2012-05-05, flag "Abs"):
where the simulator's district must satisfy them to answer any record, they are replaced by the simulator's own
(`district_values`), and the test says which.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from requests_oauthlib import OAuth1

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator import calendar as cal
from illuminate_sync.simulator.routes import ROUTES, Route

TODAY = dt.date(2026, 11, 27)
EXAMPLES: list[dict[str, Any]] = json.loads((Path(__file__).parent / "data" / "api_examples.json").read_text("utf-8"))[
    "endpoints"
]
ENVELOPE = {"page", "num_pages", "num_results", "results"}
# Students2's example record shows the program fields, which its parameter list says come only "If the value is sent as
# true" (`include_programs`); the example request does not send it. Expected exactly when it is sent.
CONDITIONAL_FIELDS: dict[str, tuple[str, frozenset[str]]] = {
    "Students2": (
        "include_programs",
        frozenset({"gifted_slash_talented", "mobility", "lunch_status", "plan", "service_code"}),
    ),
}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(students=300, seed=1, today=TODAY)) as simulator:
        yield simulator


def oauth(sim: Simulator) -> OAuth1:
    consumer_key, consumer_secret, user_key, user_secret = sim.oauth1
    return OAuth1(
        client_key=consumer_key,
        client_secret=consumer_secret,
        resource_owner_key=user_key,
        resource_owner_secret=user_secret,
        signature_type="auth_header",
    )


# -- (a) the Authentication section's code samples ------------------------------------------------------------------


def test_the_python_snippet_lists_sites_and_two_students_without_a_page(sim: Simulator) -> None:
    base_url = f"{sim.base_url}/rest_server.php"
    client = requests.session()
    response = client.get(base_url + "/Api/Sites", auth=oauth(sim), timeout=30)
    assert response.status_code == 200
    sites = json.loads(response.content)
    assert isinstance(sites, list) and sites and all("site_id" in site for site in sites)

    query = "{}?{}".format(base_url + "/Api/Students", urllib.parse.urlencode({"limit": 2}))
    response = client.get(query, auth=oauth(sim), timeout=30)
    assert response.status_code == 200
    students = json.loads(response.content)
    assert set(students) == ENVELOPE and students["page"] == 1 and len(students["results"]) == 2
    assert students["num_pages"] == math.ceil(students["num_results"] / 2)


def test_the_php_snippet_fetches_the_same_urls_signed_in_the_authorization_header(sim: Simulator) -> None:
    # PHP's OAuth::fetch($base_url . '/Api/Students?limit=2') with OAUTH_AUTH_TYPE_AUTHORIZATION: the query string is
    # part of the URL and the signature travels in the Authorization header only.
    base_url = f"{sim.base_url}/rest_server.php"
    for url_endpoint in ("/Api/Sites", "/Api/Students?limit=2"):
        request = requests.Request("GET", base_url + url_endpoint, auth=oauth(sim)).prepare()
        header = request.headers.get("Authorization") or b""
        assert (header.decode() if isinstance(header, bytes) else header).startswith("OAuth ")
        assert "oauth_signature" not in (request.url or "")
        response = requests.Session().send(request, timeout=30)
        assert response.status_code == 200, url_endpoint
    body = response.json()
    assert body["page"] == 1 and len(body["results"]) == 2


# -- (b) every GET endpoint's documented example --------------------------------------------------------------------


def district_values(sim: Simulator) -> dict[str, Any]:
    """The simulator's stand-ins for the demo district's ids and dates named by the examples."""
    d = sim.district
    high_schools = sorted(s.site_id for s in d.sites.values() if s.level == "high")
    year_start, year_end = cal.academic_year_bounds(cal.academic_year(TODAY))
    last_school_day = max(day for day in cal.instructional_days(cal.academic_year(TODAY)) if day <= TODAY)
    user = min((u for u in d.users.values() if u.roles), key=lambda u: u.user_id)
    absent = next(f["flag_code"] for f in sim.query("Attendance/Flags") if f["flag_title"] == "Absent")
    return {
        "site_id": high_schools[0],  # Graduation and Behavior records exist at high schools
        "user_id": user.user_id,
        "enrollment_start_date": year_start.isoformat(),
        "enrollment_end_date": year_end.isoformat(),
        "start_date": year_start.isoformat(),
        "end_date": year_end.isoformat(),
        "date": last_school_day.isoformat(),
        "flag_code": absent,
        "assessment_id": min(d.assessments),
    }


def example_request(sim: Simulator, example: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The path and parameters of an example, the demo district's ids and dates replaced by the simulator's."""
    values = district_values(sim)
    path = example["path"].replace("{assessment_id}", str(values["assessment_id"]))
    params = dict(example["example_params"] or {})
    for name in params:
        if name in values:
            params[name] = values[name]
    if "local_student_id" in params:  # GraduationEligibility and Behavior: a student with records there
        rows = sim.query(path, {k: v for k, v in params.items() if k not in ("local_student_id", "page")})
        assert rows, path
        params["local_student_id"] = rows[0]["district_student_id"]
    return path, params


def keys_match_an_example_record(record: dict[str, Any], example: dict[str, Any], params: dict[str, Any]) -> bool:
    """The record has every field of one documented example record, and beyond it only documented fields."""
    param, conditional = CONDITIONAL_FIELDS.get(example["path"], ("", frozenset()))
    if param and str(params.get(param, "")).lower() != "true":
        if conditional & set(record):
            return False
        example = {**example, "documented_fields": [f for f in example["documented_fields"] if f not in conditional]}
        records = [{k: v for k, v in r.items() if k not in conditional} for r in example["example_response"]["results"]]
        example = {**example, "example_response": {**example["example_response"], "results": records}}
    records = example["example_response"]
    if example["response_kind"] == "paged":
        records = records["results"]
    if isinstance(records, dict):  # the gradebook examples show `results` as one object
        records = [records]
    documented = set(example["documented_fields"])
    return any(
        set(documented_record) <= set(record) <= set(documented_record) | documented for documented_record in records
    )


def skeleton(value: Any) -> Any:
    """A document's field names, nested: dicts by their keys, lists by their first element."""
    if isinstance(value, dict):
        return {key: skeleton(item) for key, item in value.items()}
    if isinstance(value, list):
        return [skeleton(value[0])] if value else []
    return None


def _same_skeleton(ours: Any, documented: Any) -> bool:
    if isinstance(documented, dict):
        return (
            isinstance(ours, dict)
            and set(ours) == set(documented)
            and all(_same_skeleton(ours[key], documented[key]) for key in documented)
        )
    if isinstance(documented, list) and documented:
        return isinstance(ours, list) and (not ours or _same_skeleton(ours[0], documented[0]))
    return True


CASES = [(example, {}) for example in EXAMPLES] + [
    (example, {CONDITIONAL_FIELDS[example["path"]][0]: "true"})
    for example in EXAMPLES
    if example["path"] in CONDITIONAL_FIELDS
]


@pytest.mark.parametrize(
    ("example", "extra_params"), CASES, ids=lambda case: case["path"] if "path" in case else "+".join(case) or "-"
)
def test_the_documented_example_request_is_answered_in_the_documented_shape(
    sim: Simulator, example: dict[str, Any], extra_params: dict[str, str]
) -> None:
    path, params = example_request(sim, example)
    params.update(extra_params)
    url = f"{sim.base_url}/rest_server.php/Api/{path}/"
    response = requests.get(url, params=params, auth=oauth(sim), timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    documented = example["example_response"]
    kind = example["response_kind"]
    if kind == "list":
        assert isinstance(body, list) and body
        records = body
    elif kind == "document":
        if example["path"] == "SchoolFocusSites":  # site id -> site name, the ids being the keys
            assert body and all(key.isdigit() and isinstance(name, str) for key, name in body.items())
        else:
            assert _same_skeleton(skeleton(body), skeleton(documented)), (skeleton(body), skeleton(documented))
        return
    else:
        assert set(body) == ENVELOPE
        assert body["page"] == int(params.get("page", 1))
        # the documented type of the count: a string on Assessments and attendance, a number elsewhere
        assert type(body["num_results"]) is type(documented["num_results"])
        assert body["num_pages"] == math.ceil(int(body["num_results"]) / int(params.get("limit", 1000)))
        records = body["results"] if isinstance(body["results"], list) else [body["results"]]
        if not records:  # the example's page 2 lies past the end of the simulated district's answer: read page 1
            page_one = requests.get(url, params={**params, "page": 1}, auth=oauth(sim), timeout=60).json()
            records = page_one["results"]
        assert records, f"{path} {params} answers no record"
    for record in records:
        assert keys_match_an_example_record(record, example, params), sorted(record)


def test_every_documented_get_endpoint_has_an_example_and_a_route() -> None:
    assert sorted(example["path"] for example in EXAMPLES) == sorted(route.path for route in ROUTES)


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.path)
def test_each_route_accepts_exactly_the_documented_parameters(route: Route) -> None:
    # The gradebook and attendance answers are page envelopes, so their routes also take the undocumented page/limit.
    example = next(example for example in EXAMPLES if example["path"] == route.path)
    accepted = set(route.required) | set(route.optional)
    envelope_only = {"page", "limit"} - set(example["documented_params"]) if route.is_paged else set()
    assert accepted - envelope_only == set(example["documented_params"])
