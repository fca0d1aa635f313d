"""Records that break their declared type (a letter in an id) do not sink the run: they go to
`illuminate.quarantine` with the endpoint, the reason and the raw record, the summary counts them, and every other
record loads."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from sync_support import TODAY, expected_keys, loaded_keys, sync

from illuminate_sync.simulator import Simulator, SimulatorConfig

TABLES = ["sites", "students", "enrollment"]


def test_records_with_a_letter_in_an_id_are_quarantined_and_the_rest_loads(tmp_path: Path) -> None:
    sim = Simulator(SimulatorConfig(students=40, seed=16, today=TODAY))
    sim.start(port=0)
    try:
        want = {table: expected_keys(sim, table, (2027,)) for table in TABLES}
        students = sorted(want["students"])
        bad_student, bad_enrollee = students[3][0], students[7][0]
        sim.mutate("corrupt_record", path="Students", field="student_id", value=f"{bad_student}O",
                   match={"student_id": bad_student})  # fmt: skip
        sim.mutate("corrupt_record", path="Enrollment", field="site_id", value="1O",
                   match={"student_id": bad_enrollee})  # fmt: skip

        summary = sync(sim, tmp_path / "w.duckdb", resources=TABLES, academic_years_back=0)
    finally:
        sim.stop()

    db = tmp_path / "w.duckdb"
    assert summary.quarantined.get("students", 0) >= 1, summary.quarantined
    assert summary.quarantined.get("enrollment", 0) >= 1, summary.quarantined
    assert "quarantine" in summary.render()
    # every other record loaded, the broken ones did not (not even with a NULL in place of the bad value)
    assert set(loaded_keys(db, "students")) == {key for key in want["students"] if key[0] != bad_student}
    assert set(loaded_keys(db, "enrollment")) == {key for key in want["enrollment"] if key[0] != bad_enrollee}
    assert set(loaded_keys(db, "sites")) == want["sites"]

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select table_name, endpoint, reason, record from illuminate.quarantine order by table_name"
        ).fetchall()
    by_table = {table: (endpoint, reason, json.loads(record)) for table, endpoint, reason, record in rows}
    endpoint, reason, record = by_table["students"]
    assert endpoint == "Students"
    assert "student_id" in reason and f"{bad_student}O" in reason, reason
    assert record["student_id"] == f"{bad_student}O" and record.get("last_name"), record  # the raw record
    endpoint, reason, record = by_table["enrollment"]
    assert endpoint == "Enrollment"
    assert "site_id" in reason and "1O" in reason, reason
    assert record["site_id"] == "1O" and str(record["student_id"]) == str(bad_enrollee), record
