"""The gradebook endpoints (no change filter: the current year comes whole) are refetched every
`gradebook_refresh_days`, not every night; in between their tables keep the last fetch."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
from sync_support import TODAY, expected_keys, loaded_keys, sync

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate import illuminate_source
from illuminate_sync.sources.illuminate.catalog import load_catalog
from illuminate_sync.sources.illuminate.context import SyncContext
from illuminate_sync.sources.illuminate.errors import ConfigurationError

GRADEBOOK = {table: endpoint.path for table, endpoint in load_catalog().items() if endpoint.refresh_setting}
ONE_YEAR = {"academic_years_back": 0, "resources": [*GRADEBOOK, "terms"]}


@pytest.fixture
def simulator() -> Simulator:
    sim = Simulator(SimulatorConfig(students=30, seed=17, today=TODAY))
    sim.start(port=0)
    yield sim
    sim.stop()


def gradebook_requests(sim: Simulator) -> int:
    counts = sim.request_counts()
    sim.reset_request_counts()
    return sum(count for key, count in counts.items() if key.strip("/") in GRADEBOOK.values())


def test_every_gradebook_endpoint_is_refreshed_on_an_interval_the_source_can_set() -> None:
    assert len(GRADEBOOK) == 8
    assert all(path.startswith("Gradebook") for path in GRADEBOOK.values())
    settings = {endpoint.refresh_setting for endpoint in load_catalog().values() if endpoint.refresh_setting}
    source_options = inspect.signature(illuminate_source).parameters
    assert settings == {"gradebook_refresh_days"} and settings <= set(source_options)
    assert all(field in {f.name for f in dataclasses.fields(SyncContext)} for field in settings)


def test_the_gradebook_is_refetched_only_once_its_interval_has_passed(simulator: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    sync(simulator, db, **ONE_YEAR)
    assert gradebook_requests(simulator) >= len(GRADEBOOK)
    held = {table: loaded_keys(db, table) for table in GRADEBOOK}
    assert all(held.values()), "the district should have gradebook scores"

    simulator.mutate("add_students", count=4)  # new students get gradebook scores upstream
    simulator.advance_today(1)
    sync(simulator, db, **ONE_YEAR)
    assert gradebook_requests(simulator) == 0, "not due the next night"
    assert {table: loaded_keys(db, table) for table in GRADEBOOK} == held, "kept as last fetched"
    assert expected_keys(simulator, "gradebook_scores", (2027,)) != set(held["gradebook_scores"])

    simulator.advance_today(6)
    sync(simulator, db, **ONE_YEAR)
    assert gradebook_requests(simulator) >= len(GRADEBOOK), "due seven days after the last fetch"
    for table in GRADEBOOK:
        assert set(loaded_keys(db, table)) == expected_keys(simulator, table, (2027,)), table


def test_a_refresh_interval_of_one_day_refetches_the_gradebook_every_run(simulator: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    sync(simulator, db, gradebook_refresh_days=1, **ONE_YEAR)
    gradebook_requests(simulator)
    simulator.mutate("add_students", count=2)
    simulator.advance_today(1)
    sync(simulator, db, gradebook_refresh_days=1, **ONE_YEAR)
    assert gradebook_requests(simulator) >= len(GRADEBOOK)
    assert set(loaded_keys(db, "gradebook_scores")) == expected_keys(simulator, "gradebook_scores", (2027,))


@pytest.mark.parametrize("option", [{"full_refresh": True}, {"reconcile": True}])
def test_full_refresh_and_reconcile_refetch_the_gradebook_before_it_is_due(
    simulator: Simulator, tmp_path: Path, option: dict[str, bool]
) -> None:
    db = tmp_path / "w.duckdb"
    sync(simulator, db, **ONE_YEAR)
    gradebook_requests(simulator)
    simulator.advance_today(1)
    sync(simulator, db, **ONE_YEAR, **option)
    assert gradebook_requests(simulator) >= len(GRADEBOOK)


def test_a_refresh_interval_below_one_day_is_refused_with_the_setting_named(
    simulator: Simulator, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="SOURCES__ILLUMINATE__GRADEBOOK_REFRESH_DAYS"):
        sync(simulator, tmp_path / "w.duckdb", gradebook_refresh_days=0, **ONE_YEAR)
