"""FERPA: `--pii exclude` keeps direct identifiers off disk; `--pii hash` replaces them with keyed hashes that still
join across tables and never show the clear value; the key is a secret that is never written either."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from sync_support import TODAY, column_types, simulator_env

from illuminate_sync.pipelines.duckdb_warehouse import default_data_dir
from illuminate_sync.pipelines.sync import run_sync
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate.catalog import load_catalog

TABLES = ["sites", "users", "students", "student_contacts", "enrollment", "roster", "attendance_daily"]
HASH_KEY = "pii-hash-key-6d2f81c0a9"
CATALOG = load_catalog()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=40, seed=19, today=TODAY))
    simulator.start(port=0)
    student = simulator.query("Students", {"start_date": "2026-08-01", "end_date": "2027-06-30"})[0]
    simulator.mutate("corrupt_record", path="Students", field="student_id", value=f"{student['student_id']}O",
                     match={"student_id": student["student_id"]})  # fmt: skip
    yield simulator
    simulator.stop()


def run(sim: Simulator, db: Path, pii: str) -> None:
    """`illuminate-sync run --pii <pii>` with the hash key set as a setting."""
    with simulator_env(sim, SOURCES__ILLUMINATE__PII_HASH_KEY=HASH_KEY):
        run_sync(
            db,
            resources=TABLES,
            today=sim.today.isoformat(),
            out=io.StringIO(),
            build_models_after=False,
            academic_years_back=0,
            max_concurrency=4,
            pii=pii,
        )


@pytest.fixture(scope="module")
def clear(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("keep") / "w.duckdb"
    run(sim, db, "keep")
    return db


def identifiers(db: Path) -> set[str]:
    """Distinctive identifier values of the clear warehouse: emails, full names, street addresses, phone numbers
    (not a city name alone: a school's city is in `sites`, which is not student data)."""
    values: set[str] = set()
    with duckdb.connect(str(db), read_only=True) as con:
        for table in TABLES:
            columns = [column for column in CATALOG[table].pii_columns if column in column_types(db, table)]
            for column in columns:
                query = f'select distinct "{column}"::varchar from illuminate."{table}" where "{column}" is not null'
                for (value,) in con.execute(query).fetchall():
                    distinctive = "@" in value or (any(c.isdigit() for c in value) and any(c.isalpha() for c in value))
                    if len(value) >= 8 and (distinctive or "phone" in column):
                        values.add(value)
        for first, last in con.execute("select first_name, last_name from illuminate.students").fetchall():
            values.add(f"{first} {last}")
    return values


def everything_written(db: Path) -> str:
    """Every value of every table of the DuckDB file, and every file of the dlt data dir (Parquet read)."""
    parts: list[str] = []
    with duckdb.connect(str(db), read_only=True) as con:
        for schema, table in con.execute("select table_schema, table_name from information_schema.tables").fetchall():
            parts.append(repr(con.execute(f'select * from "{schema}"."{table}"').fetchall()))
    for path in default_data_dir(db).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            parts.append(
                str(pq.read_table(path).to_pylist()) if data[:4] == b"PAR1" else data.decode("utf-8", "replace")
            )
    parts.append(db.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def test_exclude_keeps_every_identifier_off_disk(sim: Simulator, clear: Path, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    run(sim, db, "exclude")
    for table in TABLES:
        present = set(column_types(db, table)) & set(CATALOG[table].pii_columns)
        assert not present, f"{table} still has identifier columns {sorted(present)}"
        assert set(column_types(db, table)) - set(CATALOG[table].pii_columns) == set(column_types(clear, table)) - set(
            CATALOG[table].pii_columns
        ), f"{table} lost columns that are not identifiers"
    written = everything_written(db)
    secrets = identifiers(clear)
    assert len(secrets) > 50
    leaked = sorted(value for value in secrets if value in written)
    assert not leaked, f"identifiers found on disk: {leaked[:10]}"
    assert HASH_KEY not in written


def test_hash_replaces_identifiers_with_keyed_hashes_that_still_join(
    sim: Simulator, clear: Path, tmp_path: Path
) -> None:
    db = tmp_path / "w.duckdb"
    run(sim, db, "hash")
    with duckdb.connect(str(clear), read_only=True) as con:
        names = dict(con.execute("select student_id, last_name from illuminate.students").fetchall())
    with duckdb.connect(str(db), read_only=True) as con:
        hashed = dict(con.execute("select student_id, last_name from illuminate.students").fetchall())
        # the same student's hashed name is the same in another table: the warehouse still joins
        pairs = con.execute(
            "select s.last_name, e.last_name from illuminate.students s join illuminate.enrollment e using (student_id)"
        ).fetchall()
        emails = [row[0] for row in con.execute("select email from illuminate.students").fetchall()]
        quarantined = [json.loads(row[0]) for row in con.execute("select record from illuminate.quarantine").fetchall()]
    assert set(hashed) == set(names)
    assert pairs and all(student == enrolled for student, enrolled in pairs)
    for student_id, value in hashed.items():
        clear_value = names[student_id]
        assert value != clear_value
        assert value is None or (len(value) >= 16 and all(c in "0123456789abcdef" for c in value)), value
        assert value not in (hashlib.sha256(clear_value.encode()).hexdigest()[: len(value)], None), "not keyed"
    same_name = [sid for sid in names if sum(1 for other in names.values() if other == names[sid]) > 1]
    for student_id in same_name:  # equal values hash equal (the hash is deterministic)
        twins = {hashed[other] for other in names if names[other] == names[student_id]}
        assert len(twins) == 1
    assert len(set(emails)) > 1
    # the quarantined record's identifiers are hashed too
    assert quarantined and quarantined[0].get("last_name") not in set(names.values())
    written = everything_written(db)
    leaked = sorted(value for value in identifiers(clear) if value in written)
    assert not leaked, f"identifiers found on disk: {leaked[:10]}"
    assert HASH_KEY not in written, "the hash key was written to disk"
