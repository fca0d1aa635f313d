"""`push-scores` and `push-repository` against the simulator: round trip through a sync, per-row rejections, the refusal
to push a payload twice, dry runs, a failing batch and its resumption, and one-line usage errors."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sync_support import simulator_env

from illuminate_sync.pipelines.cli import build_parser
from illuminate_sync.pipelines.sync import run_sync
from illuminate_sync.pipelines.writeback import LOG_TABLE, run_writeback_command
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator.district import Assessment, Student
from illuminate_sync.sources.illuminate.client import IlluminateClient

TODAY = dt.date(2026, 11, 27)
SCORES_PATH = "Assessment/{assessment_id}/Scores"


@pytest.fixture(scope="module")
def sim_server() -> Iterator[Simulator]:
    sim = Simulator(SimulatorConfig(students=200, seed=1, today=TODAY))
    sim.start(port=0)
    yield sim
    sim.stop()


@pytest.fixture
def sim(sim_server: Simulator) -> Iterator[Simulator]:
    """The module's simulator, its settings in the environment (OAuth1), no faults, zeroed request counts."""
    sim_server.clear_faults()
    sim_server.reset_request_counts()
    with simulator_env(sim_server):
        yield sim_server
    sim_server.clear_faults()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Runs one write-back command as `illuminate-sync` would: (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = run_writeback_command(build_parser().parse_args(list(argv)))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    assert code is not None
    return code, captured.out, captured.err


def current_assessment(sim: Simulator, index: int = 0) -> Assessment:
    found = sorted(
        (a for a in sim.district.assessments.values() if a.academic_year == 2027), key=lambda a: a.assessment_id
    )
    return found[index]


def enrolled(sim: Simulator, count: int, skip: int = 0) -> list[Student]:
    students = sorted(
        {e.student.student_id: e.student for e in sim.district.enrollments if e.active_on(TODAY)}.values(),
        key=lambda s: s.student_id,
    )
    return students[skip : skip + count]


def answer_key(assessment: Assessment, version: int = 1) -> list[str]:
    """Full-marks responses in the version's question order."""
    per_field = [str(f.maximum) if f.is_rubric else f.key[version] for f in assessment.fields]
    return [per_field[i] for i in assessment.version_order(version)]


def make_db(path: Path, table: str, columns: str, rows: list[tuple[Any, ...]]) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute(f"create table {table} ({columns})")
        if rows:
            con.executemany(f"insert into {table} values ({', '.join('?' * len(rows[0]))})", rows)
    return path


def log_rows(db: Path) -> list[dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        try:
            result = con.execute(f"select * from {LOG_TABLE} order by pushed_at, batch_number")
        except duckdb.CatalogException:
            return []
        names = [column[0] for column in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]


def post_count(sim: Simulator) -> int:
    return sum(count for key, count in sim.request_counts().items() if key.endswith(("Scores", "Data")))


def test_round_trip_pushed_scores_arrive_in_the_synced_aggregates(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assessment = current_assessment(sim)
    students = enrolled(sim, 6)
    taken = "2026-11-20"
    for student in students:
        assert not sim.query(
            "AssessmentAggregateStudentResponses",
            {
                "assessment_id": assessment.assessment_id,
                "local_student_id": student.local_id,
                "date_taken_start": taken,
                "date_taken_end": taken,
            },
        )
    rows = [
        (s.local_id, answer_key(assessment, 1 + i % 2), 1 + i % 2, dt.date.fromisoformat(taken))
        for i, s in enumerate(students)
    ]
    db = make_db(
        tmp_path / "warehouse.duckdb",
        "my_scores",
        "student varchar, answers varchar[], version integer, taken date",
        rows,
    )
    query = (
        "select student as local_student_id, answers as responses, version, taken as date_taken from my_scores"
        " order by student"
    )
    code, out, err = cli(
        capsys,
        "push-scores",
        "--local-assessment-id",
        assessment.local_assessment_id,
        "--query",
        query,
        "--duckdb",
        str(db),
        "--batch-size",
        "4",
    )
    assert (code, err) == (0, ""), out
    assert "batch 1/2" in out and "batch 2/2" in out
    assert sim.request_counts()["Assessment/local_assessment_id/{local_assessment_id}/Scores"] == 2
    logged = log_rows(db)
    assert [(r["batch_number"], r["rows_sent"], r["students_saved"], r["status"]) for r in logged] == [
        (1, 4, 4, "ok"),
        (2, 2, 2, "ok"),
    ]
    assert {r["target_kind"] for r in logged} == {"local_assessment_id"}
    assert {r["target_id"] for r in logged} == {assessment.local_assessment_id}
    assert len({r["payload_digest"] for r in logged}) == 1 and len({r["push_id"] for r in logged}) == 1

    run_sync(
        db,
        resources=["assessment_aggregate_student_responses"],
        today=sim.today.isoformat(),
        build_models_after=False,
        out=io.StringIO(),
    )
    with duckdb.connect(str(db), read_only=True) as con:
        synced = con.execute(
            "select local_student_id, version, percent_correct from illuminate.assessment_aggregate_student_responses"
            " where assessment_id = ? and date_taken = ? order by local_student_id",
            [assessment.assessment_id, dt.date.fromisoformat(taken)],
        ).fetchall()
    expected = sorted((s.local_id, 1 + i % 2, 100.0) for i, s in enumerate(students))
    assert [(str(r[0]), int(r[1]), float(r[2])) for r in synced] == expected


def test_rejections_are_reported_per_row_and_logged(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assessment = current_assessment(sim, 1)
    good, short = enrolled(sim, 2, skip=10)
    key = answer_key(assessment)
    db = make_db(
        tmp_path / "w.duckdb",
        "s",
        "n integer, local_student_id varchar, responses varchar[]",
        [(1, good.local_id, key), (2, "99999999", key), (3, short.local_id, key[:2]), (4, None, key)],
    )
    code, out, err = cli(
        capsys,
        "push-scores",
        "--assessment-id",
        str(assessment.assessment_id),
        "--query",
        "select local_student_id, responses from s order by n",
        "--duckdb",
        str(db),
    )
    assert code == 1, out
    assert "row 4: missing student id" in out
    assert "row 2 (local_student_id 99999999): rejected by the API" in out
    assert f"row 3 (local_student_id {short.local_id}): rejected by the API" in out
    assert f"row 1 (local_student_id {good.local_id})" not in out
    [entry] = log_rows(db)
    assert (entry["rows_sent"], entry["students_saved"], entry["rejected_count"], entry["status"]) == (
        3,
        1,
        2,
        "partial",
    )
    assert "99999999" in entry["rejected_details"]
    assert err == ""


def test_the_same_payload_is_refused_unless_forced(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assessment = current_assessment(sim, 2)
    students = enrolled(sim, 3, skip=20)
    db = make_db(
        tmp_path / "w.duckdb",
        "s",
        "local_student_id varchar, responses varchar[]",
        [(s.local_id, answer_key(assessment)) for s in students],
    )
    argv = [
        "push-scores",
        "--assessment-id",
        str(assessment.assessment_id),
        "--query",
        "select * from s order by 1",
        "--duckdb",
        str(db),
    ]
    assert cli(capsys, *argv)[0] == 0
    assert post_count(sim) == 1

    code, _out, err = cli(capsys, *argv)
    assert code == 1
    assert err.count("\n") == 1 and "already pushed" in err and "--force" in err
    assert post_count(sim) == 1

    # the same rows in another order are another payload; the same rows with --force are sent again
    assert cli(capsys, *argv[:-3], "select * from s order by 1 desc", "--duckdb", str(db))[0] == 0
    assert post_count(sim) == 2
    assert cli(capsys, *argv, "--force")[0] == 0
    assert post_count(sim) == 3
    assert len(log_rows(db)) == 3


def test_dry_run_sends_nothing_and_needs_no_credentials(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in os.environ if name.startswith("SOURCES__ILLUMINATE__")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    assessment = current_assessment(sim)
    students = enrolled(sim, 3, skip=30)
    db = make_db(
        tmp_path / "w.duckdb",
        "s",
        "local_student_id varchar, responses varchar[]",
        [(s.local_id, answer_key(assessment)) for s in students],
    )
    code, out, err = cli(
        capsys,
        "push-scores",
        "--assessment-id",
        str(assessment.assessment_id),
        "--query",
        "select * from s",
        "--duckdb",
        str(db),
        "--batch-size",
        "2",
        "--dry-run",
    )
    assert (code, err) == (0, "")
    assert "dry run, nothing sent" in out and f"Assessment/{assessment.assessment_id}/Scores/" in out
    assert "batch 1 of 2" in out and "batch 2 of 2" in out
    assert all(s.local_id in out for s in students)
    assert post_count(sim) == 0 and sim.request_counts() == {}
    assert log_rows(db) == []


def test_a_failing_batch_stops_the_push_and_a_rerun_sends_the_rest(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assessment = current_assessment(sim, 3)
    students = enrolled(sim, 5, skip=40)
    db = make_db(
        tmp_path / "w.duckdb",
        "s",
        "local_student_id varchar, responses varchar[]",
        [(s.local_id, answer_key(assessment)) for s in students],
    )
    argv = [
        "push-scores",
        "--assessment-id",
        str(assessment.assessment_id),
        "--query",
        "select * from s order by 1",
        "--duckdb",
        str(db),
        "--batch-size",
        "2",
    ]
    original = IlluminateClient.post_json
    calls: list[str] = []

    def post_json(self: IlluminateClient, path: str, payload: Any = None, form: Any = None) -> Any:
        calls.append(path)
        if len(calls) == 2:  # the second batch meets an HTTP 500 (a POST is not retried on 500)
            sim.inject_fault(SCORES_PATH, "500", count=1)
        return original(self, path, payload, form)

    monkeypatch.setattr(IlluminateClient, "post_json", post_json)
    code, out, err = cli(capsys, *argv)
    assert code == 1
    assert err.count("\n") == 1 and "batch 2 of 3 (rows 3-4) failed" in err and "HTTP 500" in err
    assert "Traceback" not in err
    assert [(r["batch_number"], r["status"]) for r in log_rows(db)] == [(1, "ok"), (2, "failed")]

    code, out, err = cli(capsys, *argv)
    assert (code, err) == (0, ""), out
    assert "3 rows delivered" in out and "resuming" in out and "2 rows it delivered are skipped" in out
    assert len(calls) == 4  # 2 of the failed push + 2 batches (rows 3-4, row 5) of the rerun
    logged = log_rows(db)
    assert [(r["first_item"], r["last_item"], r["status"]) for r in logged] == [
        (1, 2, "ok"),
        (3, 4, "failed"),
        (3, 4, "ok"),
        (5, 5, "ok"),
    ]
    assert cli(capsys, *argv)[0] == 1  # now complete: refused
    assert len(calls) == 4


def test_push_repository(sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = sim.district.repositories[2]
    before = len(repo.rows)
    students = enrolled(sim, 3, skip=50)
    db = make_db(
        tmp_path / "w.duckdb",
        "fluency",
        "student_id integer, wpm integer, note varchar",
        [(s.student_id, 100 + i, f"note {i}") for i, s in enumerate(students)] + [(None, 1000, "x")],
    )
    query = "select student_id, wpm as field_wpm, note as field_note from fluency order by wpm"
    argv = ["push-repository", "--local-repository-id", repo.local_repository_id, "--query", query, "--duckdb", str(db)]
    code, out, err = cli(capsys, *argv)
    assert code == 1 and err == ""  # one row not sent (listed); the others saved
    assert "row 4: missing student id" in out
    assert repo.rows[before:] == [
        {"student_id": s.student_id, "field_wpm": 100 + i, "field_note": f"note {i}"} for i, s in enumerate(students)
    ]
    [entry] = log_rows(db)
    assert (entry["command"], entry["target_kind"], entry["rows_sent"], entry["status"]) == (
        "push-repository",
        "local_repository_id",
        3,
        "ok",
    )
    code, _, err = cli(capsys, *argv)
    assert code == 1 and "already pushed" in err
    assert len(repo.rows) == before + 3


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["push-scores", "--query", "select 1"], "one of the arguments --assessment-id --local-assessment-id"),
        (
            ["push-scores", "--assessment-id", "1", "--local-assessment-id", "x", "--query", "select 1"],
            "not allowed with",
        ),
        (["push-repository", "--query", "select 1"], "--repository-id --local-repository-id"),
        (["push-scores", "--assessment-id", "0", "--query", "select 1"], "at least 1"),
        (["push-scores", "--assessment-id", "1", "--query", "select 1", "--batch-size", "0"], "at least 1"),
        (["push-scores", "--assessment-id", "1", "--query", "select * from missing_table"], "the query failed"),
        (["push-scores", "--assessment-id", "1", "--query", "select 1 as local_student_id"], "'responses'"),
        (["push-scores", "--assessment-id", "1", "--query", "select 1 as x, ['A'] as responses"], "'x'"),
        (["push-scores", "--assessment-id", "1", "--query", "create table t2 as select 1; select 1"], "read-only"),
        (["push-repository", "--repository-id", "1", "--query", "select 1 as student_id"], "field_"),
    ],
)
def test_bad_input_is_one_line_with_exit_status_2(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    db = make_db(tmp_path / "w.duckdb", "t", "a integer", [(1,)])
    code, _out, err = cli(capsys, *argv, "--duckdb", str(db))
    assert code == 2
    assert err.startswith("illuminate-sync: error: ") and err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err
    assert post_count(sim) == 0
    with duckdb.connect(str(db), read_only=True) as con:  # the query ran read-only: nothing was created
        tables = {row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()}
    assert tables == {"t"}


def test_a_missing_duckdb_file_and_missing_settings(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = cli(
        capsys, "push-scores", "--assessment-id", "1", "--query", "select 1", "--duckdb", str(tmp_path / "no.duckdb")
    )
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    assert not (tmp_path / "no.duckdb").exists()

    assessment = current_assessment(sim)
    db = make_db(
        tmp_path / "w.duckdb",
        "s",
        "local_student_id varchar, responses varchar[]",
        [(enrolled(sim, 1)[0].local_id, answer_key(assessment))],
    )
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("SOURCES__ILLUMINATE__")]:
        monkeypatch.delenv(name)
    argv = [
        "push-scores",
        "--assessment-id",
        str(assessment.assessment_id),
        "--query",
        "select * from s",
        "--duckdb",
        str(db),
    ]
    code, _, err = cli(capsys, *argv)
    assert code == 1 and "SOURCES__ILLUMINATE__CREDENTIALS__CONSUMER_KEY" in err and err.count("\n") == 1
    monkeypatch.setenv("SOURCES__ILLUMINATE__CREDENTIALS__CONSUMER_KEY", "k")
    monkeypatch.setenv("SOURCES__ILLUMINATE__CREDENTIALS__CONSUMER_SECRET", "s")
    monkeypatch.setenv("SOURCES__ILLUMINATE__CREDENTIALS__TOKEN", "t")
    monkeypatch.setenv("SOURCES__ILLUMINATE__CREDENTIALS__TOKEN_SECRET", "ts")
    code, _, err = cli(capsys, *argv)
    assert code == 1 and "SOURCES__ILLUMINATE__BASE_URL is not set" in err and err.count("\n") == 1
    assert post_count(sim) == 0 and log_rows(db) == []


def test_run_writeback_command_ignores_other_commands() -> None:
    assert run_writeback_command(argparse.Namespace(command="run")) is None
    assert run_writeback_command(argparse.Namespace()) is None


def test_the_write_back_commands_run_through_the_main_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`illuminate-sync`'s own parser and exit codes: the usage error of an option and of the command's input."""
    from illuminate_sync.pipelines.cli import main
    from illuminate_sync.pipelines.cli_base import EXIT_USAGE

    with pytest.raises(SystemExit) as usage:
        main(["push-scores", "--assessment-id", "0", "--query", "select 1", "--duckdb", str(tmp_path / "w.duckdb")])
    err = capsys.readouterr().err
    assert usage.value.code == EXIT_USAGE and err.count("\n") == 1
    assert err.startswith("illuminate-sync: error: ") and "(see illuminate-sync push-scores --help)" in err

    code = main(["push-scores", "--assessment-id", "1", "--query", "select 1", "--duckdb", str(tmp_path / "no.duckdb")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "does not exist" in err and err.count("\n") == 1
