"""Helpers of the SQL model tests (tests/test_models_*.py and the tests that read the marts); their fixtures
(`models_warehouse`, `models_warehouse_exceptions`) are in conftest.py."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from illuminate_sync.simulator import Simulator

MODELS_TODAY = datetime.date(2026, 11, 27)
"""The simulated today of the model tests (also the models' `today` setting)."""


class ModelWarehouse:
    """A synced and modelled DuckDB file and the simulator whose district it copies (server already stopped)."""

    def __init__(self, sim: Simulator, path: Path) -> None:
        self.sim = sim
        self.path = path

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        import duckdb

        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()


def build_model_warehouse(directory: Path, attendance_mode: str) -> ModelWarehouse:
    """300 simulated students (seed 1) synced into `directory`/warehouse.duckdb and modelled."""
    # imported here so that importing this module (conftest.py does, for every test) costs nothing
    import io

    from sync_support import sync

    from illuminate_sync.pipelines.models import ModelSettings, build_models
    from illuminate_sync.simulator import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(students=300, seed=1, today=MODELS_TODAY, attendance_mode=attendance_mode))
    path = directory / "warehouse.duckdb"
    sim.start(port=0)
    try:
        sync(sim, path)
    finally:
        sim.stop()
    build_models(path, out=io.StringIO(), settings=ModelSettings(today=MODELS_TODAY))
    return ModelWarehouse(sim, path)
