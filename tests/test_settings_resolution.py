"""Settings in one place: defaults declared once in `settings.py`, and the settings outside the source resolved by dlt
from `.dlt/config.toml` and the environment (the user's value wins over the sync's own defaults).

The `.dlt/config.toml` cases run in-process in a temporary project directory (`dlt_project`); the CLI cases for
wrong values are in test_bad_input_settings.py.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import dlt
import pytest
from dlt.common import logger as dlt_logger
from dlt.common.configuration.container import Container
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

from illuminate_sync.pipelines import duckdb_settings
from illuminate_sync.pipelines.dashboard import DashboardSettings
from illuminate_sync.pipelines.duckdb_settings import (
    DUCKDB_LOAD_CONFIG,
    DUCKDB_WRITE_CONFIG,
    check_memory_limit,
    out_of_memory_message,
    with_memory_limit,
)
from illuminate_sync.pipelines.models import ModelSettings
from illuminate_sync.pipelines.sync import QUIET_LOG_LEVEL, prepare_pipeline_settings, quiet_dlt_logging
from illuminate_sync.sources.illuminate import illuminate_source, settings
from illuminate_sync.sources.illuminate.client import IlluminateClient
from illuminate_sync.sources.illuminate.concurrency import parse_concurrency
from illuminate_sync.sources.illuminate.context import SyncContext
from illuminate_sync.sources.illuminate.errors import ConfigurationError

REPOSITORY = Path(__file__).resolve().parent.parent
OLD_MEMORY_VARIABLE = "ILLUMINATE_SYNC_DUCKDB_MEMORY_LIMIT"
SETTING_VARIABLES = (
    "RUNTIME__LOG_LEVEL",
    "MODELS__TODAY",
    "MODELS__CHRONIC_ABSENCE_THRESHOLD",
    "MODELS__CHRONIC_ABSENCE_MIN_DAYS",
    "DASHBOARD__MIN_CELL_SIZE",
    "DUCKDB__MEMORY_LIMIT",
    OLD_MEMORY_VARIABLE,
    "LOAD__WORKERS",
    "LOAD__DELETE_COMPLETED_JOBS",
    "EXTRACT__NEXT_ITEM_MODE",
    "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID",
)


@pytest.fixture
def dlt_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Writes `.dlt/config.toml` of a fresh project directory and makes dlt read it (none of the settings above set
    in the environment, and the environment restored after the test, since the sync writes its quiet log level
    there)."""
    for name in SETTING_VARIABLES:
        monkeypatch.setenv(name, "")  # recorded by monkeypatch, so a value the code sets is undone too
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dlt").mkdir()

    def write(config_toml: str) -> None:
        (tmp_path / ".dlt" / "config.toml").write_text(config_toml)
        start_dlt_afresh()

    write("")
    yield write
    monkeypatch.undo()
    start_dlt_afresh()


def start_dlt_afresh() -> None:
    """dlt's settings read again, and its logger made again, as when a process starts."""
    run_context = Container()[PluggableRunContext]
    run_context.reload_providers()
    run_context.initialize_runtime()


def dlt_log_level() -> int:
    """The level of dlt's logger once dlt resolved its runtime settings again (as when a pipeline is made)."""
    Container()[PluggableRunContext].initialize_runtime()
    return int(dlt_logger.LOGGER.level)


# ------------------------------------------------------------------------------------------------------- log level
def test_a_log_level_in_config_toml_takes_effect(dlt_project: Callable[[str], None]) -> None:
    dlt_project('[runtime]\nlog_level = "INFO"\n')
    quiet_dlt_logging()
    assert dlt_log_level() == logging.INFO


def test_the_log_level_variable_wins_over_config_toml(
    dlt_project: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "ERROR")
    dlt_project('[runtime]\nlog_level = "INFO"\n')
    quiet_dlt_logging()
    assert dlt_log_level() == logging.ERROR


def test_dlt_is_quiet_when_no_log_level_is_set(dlt_project: Callable[[str], None]) -> None:
    dlt_project("[sources.illuminate]\nmax_concurrency = 4\n")
    assert dlt_log_level() == logging.WARNING  # dlt's own default, before the sync's
    quiet_dlt_logging()
    assert dlt_log_level() == getattr(logging, QUIET_LOG_LEVEL)


# --------------------------------------------------------------------------------------------- dlt's pipeline settings
def test_the_syncs_dlt_settings_give_way_to_config_toml(dlt_project: Callable[[str], None]) -> None:
    dlt_project('[load]\nworkers = 3\n\n[extract]\nnext_item_mode = "round_robin"\n')
    prepare_pipeline_settings()
    assert "LOAD__WORKERS" not in os.environ and "EXTRACT__NEXT_ITEM_MODE" not in os.environ
    assert dlt.config.get("load.workers") == 3
    assert dlt.config.get("extract.next_item_mode") == "round_robin"
    assert os.environ["LOAD__DELETE_COMPLETED_JOBS"] == "true"  # not set by the user: the sync's default


# -------------------------------------------------------------------------------------------- models and dashboard
def test_model_settings_resolve_from_config_toml(dlt_project: Callable[[str], None]) -> None:
    dlt_project('[models]\ntoday = 2026-11-27\nchronic_absence_threshold = "15%"\nchronic_absence_min_days = 20.0\n')
    assert ModelSettings.resolve() == ModelSettings(date(2026, 11, 27), 0.15, 20)
    dlt_project("[models]\nchronic_absence_threshold = 0.2\nchronic_absence_min_days = 12\n")
    assert ModelSettings.resolve() == ModelSettings(None, 0.2, 12)


def test_model_settings_are_looked_up_under_models_only(
    dlt_project: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """dlt falls back from a section to the top level unless the spec names its section: a `TODAY` variable of the
    environment, or a `today` at the top of config.toml, is not the models' date."""
    dlt_project('today = "2020-01-01"\n')
    monkeypatch.setenv("TODAY", "2021-01-01")
    monkeypatch.setenv("CHRONIC_ABSENCE_THRESHOLD", "0.5")
    assert ModelSettings.resolve() == ModelSettings()


def test_a_wrong_model_setting_in_config_toml_names_its_variable(dlt_project: Callable[[str], None]) -> None:
    dlt_project('[models]\nchronic_absence_min_days = "ten"\n')
    with pytest.raises(ConfigurationError, match=r"^MODELS__CHRONIC_ABSENCE_MIN_DAYS: 'ten' is not a whole number"):
        ModelSettings.resolve()


def test_the_dashboard_cell_size_resolves_from_config_toml(dlt_project: Callable[[str], None]) -> None:
    dlt_project("[dashboard]\nmin_cell_size = 25\n")
    assert DashboardSettings.resolve() == DashboardSettings(25)
    assert DashboardSettings.resolve(5) == DashboardSettings(5)
    dlt_project('[dashboard]\nmin_cell_size = "ten"\n')
    with pytest.raises(ConfigurationError, match=r"^DASHBOARD__MIN_CELL_SIZE: 'ten' is not a whole number"):
        DashboardSettings.resolve()


# ------------------------------------------------------------------------------------------------- DuckDB memory
@pytest.fixture
def fresh_deprecation_note() -> Iterator[None]:
    duckdb_settings._note_deprecated_variable.cache_clear()
    yield
    duckdb_settings._note_deprecated_variable.cache_clear()


def test_the_duckdb_memory_limit_resolves_when_used(
    dlt_project: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read when a connection is made, not when the module is imported: a change of the setting is seen at once."""
    assert with_memory_limit(DUCKDB_LOAD_CONFIG)["memory_limit"] == DUCKDB_LOAD_CONFIG["memory_limit"]
    dlt_project('[duckdb]\nmemory_limit = "300MB"\n')
    assert with_memory_limit(DUCKDB_LOAD_CONFIG)["memory_limit"] == "300MB"
    assert with_memory_limit(DUCKDB_WRITE_CONFIG) == {**DUCKDB_WRITE_CONFIG, "memory_limit": "300MB"}
    monkeypatch.setenv("DUCKDB__MEMORY_LIMIT", "1GB")
    assert with_memory_limit(DUCKDB_WRITE_CONFIG)["memory_limit"] == "1GB"
    message = out_of_memory_message("loading")
    assert "limit 1GB" in message and "set DUCKDB__MEMORY_LIMIT higher" in message


def test_the_old_memory_variable_still_works_with_a_note(
    dlt_project: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_deprecation_note: None,
) -> None:
    monkeypatch.setenv(OLD_MEMORY_VARIABLE, "200MB")
    assert with_memory_limit(DUCKDB_WRITE_CONFIG)["memory_limit"] == "200MB"
    assert with_memory_limit(DUCKDB_LOAD_CONFIG)["memory_limit"] == "200MB"
    note = capsys.readouterr().err.splitlines()
    assert len(note) == 1, note  # once per process, however often the limit is read
    assert note[0].startswith(f"illuminate-sync: note: {OLD_MEMORY_VARIABLE} is deprecated")
    assert "DUCKDB__MEMORY_LIMIT" in note[0]
    monkeypatch.setenv("DUCKDB__MEMORY_LIMIT", "400MB")  # the new name wins
    assert with_memory_limit(DUCKDB_WRITE_CONFIG)["memory_limit"] == "400MB"


def test_a_wrong_memory_limit_names_the_variable_the_user_set(
    dlt_project: Callable[[str], None], monkeypatch: pytest.MonkeyPatch, fresh_deprecation_note: None
) -> None:
    monkeypatch.setenv(OLD_MEMORY_VARIABLE, "lots")
    with pytest.raises(ConfigurationError, match=rf"^{OLD_MEMORY_VARIABLE}: 'lots' is not a DuckDB memory size"):
        check_memory_limit()
    dlt_project('[duckdb]\nmemory_limit = "plenty"\n')
    with pytest.raises(ConfigurationError, match=r"^DUCKDB__MEMORY_LIMIT: 'plenty' is not a DuckDB memory size"):
        check_memory_limit()


# ---------------------------------------------------------------------------------------------- defaults, declared once
SOURCE_DEFAULTS = {
    "max_concurrency": settings.DEFAULT_MAX_CONCURRENCY,
    "max_concurrency_ceiling": settings.DEFAULT_MAX_CONCURRENCY_CEILING,
    "attendance_lookback_days": settings.DEFAULT_ATTENDANCE_LOOKBACK_DAYS,
    "pool_lookback_days": settings.DEFAULT_POOL_LOOKBACK_DAYS,
    "reconcile_every_n_runs": settings.DEFAULT_RECONCILE_EVERY_N_RUNS,
    "gradebook_refresh_days": settings.DEFAULT_GRADEBOOK_REFRESH_DAYS,
    "academic_years_back": settings.DEFAULT_ACADEMIC_YEARS_BACK,
    "shrink_guard_ratio": settings.DEFAULT_SHRINK_GUARD_RATIO,
}
CONTEXT_FIELDS = {"shrink_guard_ratio": "shrink_ratio"}
"""The source's argument names that `SyncContext` names otherwise."""


def test_the_source_the_context_and_the_client_take_their_defaults_from_settings() -> None:
    source = inspect.signature(illuminate_source).parameters
    context = {item.name: item.default for item in dataclasses.fields(SyncContext)}
    client = inspect.signature(IlluminateClient.__init__).parameters
    for name, default in SOURCE_DEFAULTS.items():
        declared = source[name].default
        assert (parse_concurrency(declared) if name == "max_concurrency" else declared) == default, name
        if name not in ("max_concurrency", "max_concurrency_ceiling", "academic_years_back"):
            assert context[CONTEXT_FIELDS.get(name, name)] == default, name
    assert client["max_concurrency"].default == settings.DEFAULT_MAX_CONCURRENCY
    assert client["max_concurrency_ceiling"].default == settings.DEFAULT_MAX_CONCURRENCY_CEILING


def test_the_documented_defaults_are_the_declared_ones() -> None:
    """README's settings table and the commented lines of `.dlt/config.toml` say the defaults of `settings.py`."""
    readme = (REPOSITORY / "README.md").read_text()
    config_toml = (REPOSITORY / ".dlt" / "config.toml").read_text()
    for name, default in SOURCE_DEFAULTS.items():
        row = re.search(rf"^\|[^|]*\| `SOURCES__ILLUMINATE__{name.upper()}`[^|]*\|(?P<meaning>[^|]*)\|$", readme, re.M)
        assert row, name
        assert re.search(rf"\(default {default:g}\b", row["meaning"]), (name, row["meaning"])
        commented = re.search(rf"^# {name} = (?P<value>\S+)$", config_toml, re.M)
        if commented:
            assert float(commented["value"]) == default, name
