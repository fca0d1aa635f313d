"""`illuminate-sync run --destination delta`: the raw tables as Delta tables in a local lake, table by table the same
rows as the DuckDB path on the same simulated district, after a full sync, after a nightly run with the changes that
could break a Delta delete-insert (a slice emptied upstream, records deleted upstream, changed records, a replaced
document with nested tables), after a persistent fault, and after a run killed between a Delta commit and dlt's
record of it; readable by a plain Delta reader with no duplicate key; the models built from the lake equal the
DuckDB path's; one line for each bad setting.

The scenario of one district runs once for the module (`night_by_night`): a full sync into both warehouses; a
night of changes; on the lake a run failing on a persistent fault, then a run refused by the shrink guard (a slice
emptied upstream), then the night's run into both warehouses. The tests check what each step left.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from destination_support import Rows, delta_tables, differences, duckdb_tables
from sync_support import RUN_HISTORY, TODAY, cli_env, fast_retries, illuminate_sync_command, simulator_env, sync

from illuminate_sync.pipelines.models import ModelSettings, build_models
from illuminate_sync.pipelines.sync import SyncSummary, run_sync
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.catalog import load_catalog
from illuminate_sync.sources.illuminate.errors import IlluminateError, ShrinkGuardError
from illuminate_sync.sources.illuminate.settings import SLICE_YEAR_COLUMN

deltalake = pytest.importorskip("deltalake", reason="deltalake is not installed (pip install 'illuminate-sync[lake]')")

OPTIONS = {"academic_years_back": 0, "gradebook_refresh_days": 1}
VARIABLE = "DESTINATION__FILESYSTEM__BUCKET_URL"
DISTRICT = {"students": 40, "seed": 21, "today": TODAY}


def new_simulator() -> Simulator:
    simulator = Simulator(SimulatorConfig(**DISTRICT))  # type: ignore[arg-type]
    simulator.start(port=0)
    return simulator


def sync_lake(sim: Simulator, lake: Path, **options: Any) -> SyncSummary:
    options = {**OPTIONS, "build_models_after": False, **options}
    previous = os.environ.get(VARIABLE)
    os.environ[VARIABLE] = str(lake)
    try:
        with simulator_env(sim):
            return run_sync(destination="delta", today=sim.today.isoformat(), out=io.StringIO(), **options)
    finally:
        if previous is None:
            os.environ.pop(VARIABLE, None)
        else:
            os.environ[VARIABLE] = previous


def delta_versions(dataset: Path) -> dict[str, int]:
    """The version of every data table (the run history gains a commit with every run, failed ones included)."""
    return {
        folder.name: deltalake.DeltaTable(str(folder)).version()
        for folder in dataset.iterdir()
        if (folder / "_delta_log").is_dir() and folder.name not in RUN_HISTORY
    }


def key_rows(dataset: Path, table: str) -> list[tuple[Any, ...]]:
    """Every row's catalog key as a Delta reader reads it (slices add their year, as `loaded_keys` does)."""
    endpoint = load_catalog()[table]
    columns = list(endpoint.primary_key)
    if endpoint.strategy == "academic_year_slice" and SLICE_YEAR_COLUMN not in columns:
        columns.append(SLICE_YEAR_COLUMN)
    data = deltalake.DeltaTable(str(dataset / table)).to_pyarrow_table(columns=columns)
    return list(zip(*(data.column(column).to_pylist() for column in columns)))


@dataclass
class Nights:
    """What each night of the scenario left in the lake and in the DuckDB file."""

    lake: Path
    db: Path
    after_full: tuple[dict[str, Rows], dict[str, Rows]] = field(default_factory=lambda: ({}, {}))
    full: SyncSummary | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    fault: str = ""
    fault_changed: bool = True
    refused: str = ""
    refused_changed: bool = True
    after_nightly: tuple[dict[str, Rows], dict[str, Rows]] = field(default_factory=lambda: ({}, {}))
    nightly: SyncSummary | None = None

    @property
    def dataset(self) -> Path:
        return self.lake / "illuminate"


def a_night_of_changes(sim: Simulator) -> dict[str, Any]:
    changes = {
        "added": sim.mutate("add_students", count=3, entry_date=sim.today.isoformat()),
        "changed": sim.mutate("change_assessment_result", count=4),
        "deleted_result": sim.mutate("delete_assessment_result"),
        "deleted_enrollment": sim.mutate("delete_enrollment", academic_year=2027),
        "emptied": sim.mutate("empty_slice", path="Behavior", academic_year=2027),
        "document": sim.mutate("update_assessment"),
    }
    sim.advance_today(1)
    return changes


@pytest.fixture(scope="module")
def night_by_night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    root = tmp_path_factory.mktemp("delta")
    nights = Nights(lake=root / "lake", db=root / "w.duckdb")
    sim = new_simulator()
    try:
        sync(sim, nights.db, **OPTIONS)
        nights.full = sync_lake(sim, nights.lake)
        nights.after_full = (delta_tables(nights.dataset), duckdb_tables(nights.db))

        nights.changes = a_night_of_changes(sim)
        before = delta_tables(nights.dataset), delta_versions(nights.dataset)
        sim.inject_fault("Enrollment", "503")  # every request of one endpoint fails, all night
        try:
            with fast_retries(), pytest.raises(IlluminateError) as failed:
                sync_lake(sim, nights.lake, reconcile=True, allow_shrink=True)
        finally:
            sim.clear_faults()
        nights.fault = str(failed.value)
        nights.fault_changed = (delta_tables(nights.dataset), delta_versions(nights.dataset)) != before

        with pytest.raises(ShrinkGuardError) as refused:  # Behavior 2027 emptied: the guard reads the lake
            sync_lake(sim, nights.lake, reconcile=True)
        nights.refused = str(refused.value)
        nights.refused_changed = delta_versions(nights.dataset) != before[1]

        sync(sim, nights.db, reconcile=True, allow_shrink=True, **OPTIONS)
        nights.nightly = sync_lake(sim, nights.lake, reconcile=True, allow_shrink=True)
        nights.after_nightly = (delta_tables(nights.dataset), duckdb_tables(nights.db))
    finally:
        sim.stop()
    yield nights


def assert_same(tables: tuple[dict[str, Rows], dict[str, Rows]]) -> None:
    lake, duck = tables
    assert duck, "the DuckDB side holds no tables"
    assert not differences(lake, duck), "\n".join(differences(lake, duck))


def test_a_full_sync_holds_the_same_rows_as_duckdb(night_by_night: Nights) -> None:
    assert_same(night_by_night.after_full)
    assert night_by_night.full is not None and night_by_night.full.tables["students"].rows_written == 40


def test_a_nightly_after_mutations_holds_the_same_rows_as_duckdb(night_by_night: Nights) -> None:
    assert_same(night_by_night.after_nightly)
    summary = night_by_night.nightly
    assert summary is not None and summary.tables["students"].rows_after == 40 + 3 - 1  # added, one unenrolled


def test_an_emptied_slice_is_refused_by_the_shrink_guard_then_emptied(night_by_night: Nights) -> None:
    assert "behavior academic year 2027" in night_by_night.refused
    assert not night_by_night.refused_changed, "a refused run committed to the lake"
    assert [key for key in key_rows(night_by_night.dataset, "behavior") if key[-1] == 2027] == []


def test_records_deleted_upstream_are_gone_and_changed_ones_replaced(night_by_night: Nights) -> None:
    changes, dataset = night_by_night.changes, night_by_night.dataset
    results = key_rows(dataset, "assessment_aggregate_student_responses")
    deleted = changes["deleted_result"]["key"]  # [assessment_id, local_student_id, date_taken]
    assert not [key for key in results if [key[0], key[1], key[2].isoformat()] == deleted]
    for changed in changes["changed"]["keys"]:
        assert len([key for key in results if [key[0], key[1], key[2].isoformat()] == changed]) == 1
    gone = {student for student, *_ in changes["deleted_enrollment"]["removed"]}
    assert not [key for key in key_rows(dataset, "enrollment") if key[0] in gone and key[-1] == 2027]
    titles = deltalake.DeltaTable(str(dataset / "assessments")).to_pyarrow_table(columns=["title"]).column(0)
    assert changes["document"]["title"] in titles.to_pylist()


def test_a_persistent_fault_changes_nothing_and_the_next_run_completes(night_by_night: Nights) -> None:
    assert "Enrollment" in night_by_night.fault and "\n" not in night_by_night.fault
    assert not night_by_night.fault_changed, "a failed nightly run changed the lake"
    assert_same(night_by_night.after_nightly)  # the night's next runs: refused by the shrink guard, then allowed


def test_the_lakes_tables_are_plain_delta_tables_without_duplicate_keys(night_by_night: Nights) -> None:
    dataset = night_by_night.dataset
    tables = {folder.name for folder in dataset.iterdir() if (folder / "_delta_log").is_dir()}
    for table, endpoint in load_catalog().items():
        if not endpoint.enabled:
            continue
        assert table in tables, f"{table} is not a Delta table"
        keys = key_rows(dataset, table)
        assert len(keys) == len(set(keys)), f"{table} has duplicate keys"
        data = deltalake.DeltaTable(str(dataset / table)).to_pyarrow_table()
        if "_deleted" in data.column_names:
            assert not any(data.column("_deleted").to_pylist()), f"{table} holds a tombstone"
    assert not any(path.stat().st_mode & 0o077 for path in night_by_night.lake.rglob("*")), "owner-only lake"


def json_sorted(tables: dict[str, Rows]) -> dict[str, Rows]:
    """JSON objects as text with their keys sorted: `json_group_object` (rpt_assessment_proficiency.band_counts)
    orders the keys as the rows came, which differs between two copies of the same rows."""

    def value(item: Any) -> Any:
        if isinstance(item, str) and item.startswith("{"):
            try:
                return json.dumps(json.loads(item), sort_keys=True)
            except ValueError:
                return item
        return item

    return {
        table: Counter({tuple(value(item) for item in row): count for row, count in rows.items()})
        for table, rows in tables.items()
    }


def test_the_models_built_from_the_lake_equal_the_duckdb_marts(night_by_night: Nights) -> None:
    from illuminate_sync.pipelines.cli import main

    settings = ModelSettings(today=TODAY)
    build_models(night_by_night.db, out=io.StringIO(), settings=settings)
    env = {VARIABLE: str(night_by_night.lake), "MODELS__TODAY": TODAY.isoformat()}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        assert main(["models", "--destination", "delta", "--test"]) == 0
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    ignore = frozenset({"built_at"})
    duck = json_sorted(duckdb_tables(night_by_night.db, "analytics", ignore))
    built = json_sorted(duckdb_tables(night_by_night.lake / ".illuminate.dlt" / "models.duckdb", "analytics", ignore))
    assert not differences(built, duck), "\n".join(differences(built, duck))
    in_lake = json_sorted(delta_tables(night_by_night.lake / "analytics", ignore))
    assert {"fct_enrollments", "dim_students", "rpt_chronic_absenteeism"} <= set(in_lake)
    assert not differences(in_lake, {table: duck[table] for table in in_lake})


# ------------------------------------------------------------------------------------------ a killed run
KILL_AFTER_DELTA_COMMIT = """
import os, signal, sys
import pyarrow.parquet as pq
from illuminate_sync.pipelines import lake_writes
from illuminate_sync.sources.illuminate.catalog import load_catalog

run = lake_writes.LakeDeltaLoadJob.run

def run_then_kill(self):
    run(self)
    endpoint = load_catalog().get(self._load_table["name"])
    rows = sum(pq.ParquetFile(path).metadata.num_rows for path in self.file_paths)
    if endpoint is not None and endpoint.strategy == "modified_after" and rows:
        os.kill(os.getpid(), signal.SIGKILL)  # appended to Delta, not yet recorded by dlt

lake_writes.LakeDeltaLoadJob.run = run_then_kill
from illuminate_sync.pipelines.cli import main
sys.exit(main(sys.argv[1:]))
"""
"""`illuminate-sync` that dies by SIGKILL right after its first append to a Delta table merged on a key (on a
first sync it appends; the next run merges it by key, which would keep both copies of a row appended twice)."""


def repair_commits(dataset: Path) -> list[str]:
    """The commits of `Warehouse.keep_one_copy` (an overwrite whose predicate names `_dlt_id`), per table."""
    found = []
    for folder in sorted(dataset.iterdir()):
        if (folder / "_delta_log").is_dir():
            for commit in deltalake.DeltaTable(str(folder)).history():
                if "_dlt_id" in str((commit.get("operationParameters") or {}).get("predicate") or ""):
                    found.append(folder.name)
    return found


def run_cli(sim: Simulator, arguments: list[str], script: str | None = None, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", script] if script else illuminate_sync_command()
    settings = {f"SOURCES__ILLUMINATE__{name.upper()}": str(value) for name, value in OPTIONS.items()}
    return subprocess.run(
        [*command, *arguments], env=cli_env(sim, **settings, **env), capture_output=True, text=True, timeout=300
    )


def test_a_run_killed_after_a_delta_commit_is_completed_once_by_the_next_run(
    night_by_night: Nights, tmp_path: Path
) -> None:
    sim = new_simulator()  # the scenario's district on its first night
    try:
        lake = tmp_path / "lake"
        arguments = ["run", "--destination", "delta", "--skip-models"]
        killed = run_cli(sim, arguments, KILL_AFTER_DELTA_COMMIT, **{VARIABLE: str(lake)})
        assert killed.returncode == -9, killed.stderr[-2000:]
        rerun = run_cli(sim, arguments, **{VARIABLE: str(lake)})
        assert rerun.returncode == 0, rerun.stderr[-2000:]
    finally:
        sim.stop()
    got, want = delta_tables(lake / "illuminate"), night_by_night.after_full[1]
    assert not differences(got, want), "\n".join(differences(got, want))
    # the rerun job skipped the table it had appended to (its commit names the package): no copy to repair
    assert repair_commits(lake / "illuminate") == []


def test_the_copied_twice_repair_keeps_one_copy_of_each_row_in_one_commit(tmp_path: Path) -> None:
    import pyarrow as pa

    from illuminate_sync.pipelines.lake_warehouse import DeltaLakeWarehouse

    rows = pa.table({"student_id": [1, 2, 3], "_dlt_id": ["a", "b", "c"], "_dlt_load_id": ["1.5", "1.5", "0.5"]})
    table = tmp_path / "lake" / "illuminate" / "students"
    deltalake.write_deltalake(str(table), rows)
    deltalake.write_deltalake(str(table), rows, mode="append")  # a load job copied twice
    os.environ[VARIABLE] = str(tmp_path / "lake")
    try:
        warehouse = DeltaLakeWarehouse("illuminate")
        assert warehouse.copied_row_ids("students", ["1.5"]) and warehouse.count("students") == 6
        warehouse.keep_one_copy("students", ["a", "b"], ["1.5"])
        warehouse.close()
    finally:
        os.environ.pop(VARIABLE, None)
    kept = deltalake.DeltaTable(str(table))
    assert sorted(kept.to_pyarrow_table().column("_dlt_id").to_pylist()) == ["a", "b", "c", "c"]  # not its load
    assert kept.version() == 2


# ------------------------------------------------------------------------------------------ settings
WITHOUT_DELTALAKE = """
import sys
sys.modules["deltalake"] = None  # as if not installed: importing it raises ImportError
from illuminate_sync.pipelines.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "case",
    ["no bucket_url", "missing parent directory", "deltalake not installed"],
)
def test_a_bad_setting_gives_one_line_naming_it_and_writes_nothing(case: str, tmp_path: Path) -> None:
    sim = new_simulator()
    data_dir = tmp_path / "dlt"
    env = {VARIABLE: str(tmp_path / "no-such-dir" / "lake")}
    script, expected = None, f"{VARIABLE}={tmp_path / 'no-such-dir' / 'lake'}: the directory"
    if case == "no bucket_url":
        env, expected = {}, f"no lake location: set {VARIABLE}"
    elif case == "deltalake not installed":
        env = {VARIABLE: str(tmp_path / "lake")}
        script = WITHOUT_DELTALAKE
        expected = "pip install 'illuminate-sync[lake]'"
    try:
        result = run_cli(sim, ["run", "--destination", "delta", "--data-dir", str(data_dir)], script, **env)
        requests = sum(sim.request_counts().values())
    finally:
        sim.stop()
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == [], "a run with a bad setting wrote something"
    assert requests == 0, "a run with a bad setting asked the API"


def test_two_runs_into_one_local_lake_never_both_load(tmp_path: Path) -> None:
    from illuminate_sync.pipelines.lake_warehouse import DeltaLakeWarehouse

    lake = tmp_path / "lake"
    os.environ[VARIABLE] = str(lake)
    try:
        holder = DeltaLakeWarehouse("illuminate", tmp_path / "first")
        with holder.lock():
            sim = new_simulator()
            try:
                with pytest.raises(IlluminateError, match="another illuminate-sync run is using Delta lake"):
                    sync_lake(sim, lake, data_dir=tmp_path / "second")
            finally:
                sim.stop()
    finally:
        os.environ.pop(VARIABLE, None)
    assert not (tmp_path / "second").exists()
