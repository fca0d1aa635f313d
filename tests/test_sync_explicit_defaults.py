"""Every request the sync sends names a value for each parameter the documentation gives a default.

A documented default filters rows: `date` "Defaults to today (or nearest in session date) if not provided", so a
request without it (or without the `start_date`/`end_date` range that replaces it) answers only for the students
enrolled today. The simulator's route table (`simulator/routes.py`) is its own reading of the documentation; the
sync's requests are checked against it, not against the source's catalog.
"""

from __future__ import annotations

import pytest
from model_support import ModelWarehouse

from illuminate_sync.simulator.routes import ROUTES, Route

ALTERNATIVES: dict[str, tuple[frozenset[str], ...]] = {
    "date": (frozenset({"date"}), frozenset({"start_date", "end_date"})),
}
"""A parameter whose default another set of parameters replaces: a date range instead of a single date."""


def default_left_unsaid(route: Route, sent: set[str]) -> list[str]:
    """The parameters of `route` with a documented default that a request sending `sent` left to that default."""
    missing = []
    for parameter in route.defaults:
        ways = ALTERNATIVES.get(parameter, (frozenset({parameter}),))
        if not any(way <= sent for way in ways):
            missing.append(parameter)
    return missing


def test_the_check_sees_a_request_that_relies_on_a_default() -> None:
    pool = next(route for route in ROUTES if route.path == "PoolAssessmentAggregateStudentResponses")
    assert default_left_unsaid(pool, {"page", "limit", "date_taken_start", "date_taken_end"}) == ["date"]
    assert default_left_unsaid(pool, {"page", "limit", "start_date", "end_date", "date_taken_start"}) == []


@pytest.mark.parametrize("route", [route for route in ROUTES if route.defaults], ids=lambda route: route.path)
def test_no_request_of_a_two_year_sync_relies_on_a_documented_default(
    models_warehouse: ModelWarehouse, route: Route
) -> None:
    asked = {
        names: count for (path, names), count in models_warehouse.sim.parameter_sets().items() if path == route.path
    }
    if route.path.startswith("SchoolFocus"):
        pytest.skip("per-user endpoints are off unless requested")
    assert asked, f"the sync never asked {route.path}: the check would prove nothing"
    relying = {names: default_left_unsaid(route, set(names)) for names in asked}
    assert not any(relying.values()), f"{route.path}: requests leave {relying} to the documented defaults"
