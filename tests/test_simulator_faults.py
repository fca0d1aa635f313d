"""Injected faults reproduce what goes wrong on the wire, for a count of requests or at a seeded rate."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest
import requests

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator.testing import all_pages, get

TODAY = dt.date(2026, 11, 27)


@pytest.fixture(scope="module")
def server() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(students=200, seed=6, today=TODAY)) as s:
        yield s


@pytest.fixture
def sim(server: Simulator) -> Iterator[Simulator]:
    server.clear_faults()
    yield server
    server.clear_faults()


@pytest.mark.parametrize("kind", ["500", "503"])
def test_server_errors_for_the_next_n_requests(sim: Simulator, kind: str) -> None:
    sim.inject_fault("Students", kind, count=2)
    assert [get(sim, "Students", {"page": 1}).status_code for _ in range(3)] == [int(kind), int(kind), 200]
    assert get(sim, "Sites").status_code == 200


def test_429_carries_retry_after(sim: Simulator) -> None:
    sim.inject_fault("Sites", "429", count=1, retry_after=7)
    response = get(sim, "Sites")
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert get(sim, "Sites").status_code == 200


def test_html_200_is_a_login_page(sim: Simulator) -> None:
    sim.inject_fault("Users", "html_200", count=1)
    response = get(sim, "Users", {"page": 1})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_truncated_json_is_a_200_with_half_a_body(sim: Simulator) -> None:
    sim.inject_fault("Students", "truncated_json", count=1)
    response = get(sim, "Students", {"page": 1})
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert get(sim, "Students", {"page": 1}).json()["page"] == 1


def test_dropped_connection_fails_mid_body(sim: Simulator) -> None:
    sim.inject_fault("Students", "drop_connection", count=1)
    with pytest.raises(requests.exceptions.RequestException):
        get(sim, "Students", {"page": 1}).json()
    assert get(sim, "Students", {"page": 1}).status_code == 200


def test_latency_delays_the_answer(sim: Simulator) -> None:
    sim.inject_fault("Sites", "latency", count=1, seconds=0.3)
    start = time.perf_counter()
    assert get(sim, "Sites").status_code == 200
    assert time.perf_counter() - start >= 0.3


def test_star_matches_every_api_path(sim: Simulator) -> None:
    sim.inject_fault("*", "503", count=2)
    assert get(sim, "Sites").status_code == 503 and get(sim, "GradeLevels").status_code == 503
    assert get(sim, "Sites").status_code == 200


def test_rate_is_seeded_and_deterministic() -> None:
    outcomes = []
    for _ in range(2):
        with Simulator(students=13, seed=4, today=TODAY) as s:
            s.inject_fault("Sites", "500", rate=0.5)
            outcomes.append([get(s, "Sites").status_code for _ in range(20)])
    assert outcomes[0] == outcomes[1] and {500, 200} == set(outcomes[0])


def test_oauth2_token_endpoint_faults(sim: Simulator) -> None:
    sim.inject_fault("OAuth2_AccessToken", "503", count=1)
    data = {"grant_type": "client_credentials", "client_id": sim.oauth2[0], "client_secret": sim.oauth2[1]}
    assert requests.post(f"{sim.base_url}/?OAuth2_AccessToken", data=data, timeout=10).status_code == 503
    assert requests.post(f"{sim.base_url}/?OAuth2_AccessToken", data=data, timeout=10).status_code == 200


def test_shift_pages_inserts_records_so_later_pages_repeat_earlier_ones(sim: Simulator) -> None:
    params = {"page": 1, "limit": 40}
    first = get(sim, "Students", params).json()
    sim.inject_fault("Students", "shift_pages", count=1, records=10)
    second = get(sim, "Students", {**params, "page": 2}).json()
    assert second["num_results"] == first["num_results"] + 10
    first_ids = {r["student_id"] for r in first["results"]}
    assert first_ids & {r["student_id"] for r in second["results"]}  # shifted: page 1's tail reappears
    records, _ = all_pages(sim, "Students", {}, 40)
    assert records == sim.query("Students", {})


def test_shift_pages_also_shifts_assessment_results(sim: Simulator) -> None:
    path, params = "AssessmentAggregateStudentResponses", {"date_taken_start": "2026-08-01"}
    before = len(sim.query(path, params))
    sim.inject_fault(path, "shift_pages", count=1, records=20)
    body = get(sim, path, {**params, "page": 2, "limit": 50}).json()
    assert body["num_results"] > before


def test_unknown_fault_kind_is_rejected(sim: Simulator) -> None:
    with pytest.raises(ValueError):
        sim.inject_fault("Sites", "gremlins")
