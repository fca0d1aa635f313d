"""`create-user-keys`, and no write-back command ever shows a consumer/token/client secret or a user's password: not on
stdout or stderr, not in the log output, not in the push log table."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sync_support import simulator_env

from illuminate_sync.pipelines.cli import build_parser
from illuminate_sync.pipelines.writeback import LOG_TABLE, PASSWORD_ENV, run_writeback_command
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator.district import User

TODAY = dt.date(2026, 11, 27)
WRONG_PASSWORD = "Wr0ng-pass-7f3a9c"


@pytest.fixture(scope="module")
def sim_server() -> Iterator[Simulator]:
    sim = Simulator(SimulatorConfig(students=120, seed=3, today=TODAY))
    sim.start(port=0)
    yield sim
    sim.stop()


@pytest.fixture
def sim(sim_server: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    sim_server.clear_faults()
    sim_server.reset_request_counts()
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with simulator_env(sim_server):
        yield sim_server
    sim_server.clear_faults()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = run_writeback_command(build_parser().parse_args(list(argv)))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    assert code is not None
    return code, captured.out, captured.err


def a_user(sim: Simulator) -> User:
    return sorted(sim.district.users.values(), key=lambda u: u.user_id)[0]


def test_create_user_keys_prints_the_key_and_secret_once(
    sim: Simulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = a_user(sim)
    monkeypatch.setenv(PASSWORD_ENV, user.password)
    code, out, err = cli(capsys, "create-user-keys", "--username", user.username)
    assert code == 0
    keys = sim.create_user_api_keys(user.username, user.password)
    assert keys is not None
    assert out.splitlines() == [
        f"user_id: {user.user_id}",
        f"user_api_key: {keys['user_api_key']}",
        f"user_api_secret: {keys['user_api_secret']}",
    ]
    assert out.count(keys["user_api_secret"]) == 1 and keys["user_api_secret"] not in err
    assert user.password not in out + err


def test_the_password_comes_from_a_prompt_when_the_variable_is_not_set(
    sim: Simulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = a_user(sim)
    prompts: list[str] = []

    def fake_getpass(prompt: str = "Password: ", stream: Any = None) -> str:
        prompts.append(prompt)
        return user.password

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    code, out, err = cli(capsys, "create-user-keys", "--username", user.username)
    assert code == 0 and len(prompts) == 1 and "user_api_key: " in out
    assert user.password not in out + err + prompts[0]

    monkeypatch.setattr("getpass.getpass", lambda prompt="", stream=None: "")
    code, _, err = cli(capsys, "create-user-keys", "--username", user.username)
    assert code == 2 and PASSWORD_ENV in err and err.count("\n") == 1


def test_the_password_is_never_an_option(sim: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "create-user-keys", "--username", "bob", "--password", "x")
    assert code == 2 and "unrecognized arguments" in err


def test_refused_credentials_print_the_api_error(
    sim: Simulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = a_user(sim)
    monkeypatch.setenv(PASSWORD_ENV, WRONG_PASSWORD)
    code, out, err = cli(capsys, "create-user-keys", "--username", user.username)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Invalid User Credentials" in err and user.username in err
    assert WRONG_PASSWORD not in err


def test_no_secret_or_password_is_ever_shown_or_stored(
    sim: Simulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    user = a_user(sim)
    d = sim.district
    assessment = min((a for a in d.assessments.values() if a.academic_year == 2027), key=lambda a: a.assessment_id)
    key = [str(f.maximum) if f.is_rubric else f.key[1] for f in assessment.fields]
    students = sorted({e.student.local_id for e in d.enrollments if e.active_on(TODAY)})[:4]
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create table s (local_student_id varchar, responses varchar[])")
        con.executemany("insert into s values (?, ?)", [(s, key) for s in [*students, "424242"]])
    outputs: list[str] = []

    def run(*argv: str) -> int:
        code, out, err = cli(capsys, *argv, *(["--verbose"] if argv[0].startswith("push") else []))
        outputs.extend([out, err])
        return code

    scores = ["push-scores", "--assessment-id", str(assessment.assessment_id), "--duckdb", str(db)]
    assert run(*scores, "--query", "select * from s", "--dry-run") == 0
    assert run(*scores, "--query", "select * from s", "--batch-size", "2") == 1  # one row rejected
    assert run(*scores, "--query", "select * from s") == 1  # refused
    sim.inject_fault("Assessment/{assessment_id}/Scores", "500", count=1)
    assert run(*scores, "--query", "select * from s order by 1 desc") == 1  # a failing batch
    sim.inject_fault("Repository/{repository_id}/Data", "503", count=1)  # retried
    assert (
        run(
            "push-repository",
            "--repository-id",
            "1",
            "--duckdb",
            str(db),
            "--query",
            "select 1 as student_id, 'x' as field_a",
        )
        == 0
    )
    monkeypatch.setenv(PASSWORD_ENV, user.password)
    assert run("create-user-keys", "--username", user.username) == 0
    monkeypatch.setenv(PASSWORD_ENV, WRONG_PASSWORD)
    assert run("create-user-keys", "--username", user.username) == 1
    # OAuth2 as well (a token is fetched with the client secret)
    client_id, client_secret = sim.oauth2
    with simulator_env(
        sim,
        SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_ID=client_id,
        SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_SECRET=client_secret,
    ):
        assert run(*scores, "--query", "select * from s order by 1 desc", "--force") == 1  # 424242 is rejected
        monkeypatch.setenv(PASSWORD_ENV, WRONG_PASSWORD)
        assert run("create-user-keys", "--username", user.username) == 1
    tokens = list(sim.tokens._tokens)
    assert tokens  # the OAuth2 runs fetched tokens

    with duckdb.connect(str(db), read_only=True) as con:
        logged = con.execute(f"select * from {LOG_TABLE}").fetchall()
    assert len(logged) >= 5
    haystacks = {
        "output": "\n".join(outputs),
        "log records": caplog.text,
        "push log": "\n".join(repr(row) for row in logged),
        "DuckDB file": (db.read_bytes()).decode("latin-1"),
    }
    _consumer_key, consumer_secret, _token, token_secret = sim.oauth1
    secrets = {
        "consumer secret": consumer_secret,
        "token secret": token_secret,
        "client secret": client_secret,
        "password": user.password,
        "wrong password": WRONG_PASSWORD,
        **{f"access token {i}": str(t) for i, t in enumerate(tokens)},
    }
    for where, text in haystacks.items():
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} appears in the {where}"
    assert "Invalid User Credentials" in haystacks["output"]  # the failures were reported, without the secrets
    assert "HTTP 503" in caplog.text and "HTTP 500" in haystacks["output"]  # the log output was captured too


def test_help_documents_exit_status_and_password_source(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("push-scores", "push-repository", "create-user-keys"):
        code, out, _ = cli(capsys, command, "--help")
        assert code == 0
        if command == "create-user-keys":
            assert PASSWORD_ENV in out and "never" in out
        else:
            assert "exit status" in out and "rejected by the API" in out and "--force" in out


def test_run_writeback_command_leaves_other_namespaces_alone() -> None:
    assert run_writeback_command(argparse.Namespace(command="models")) is None
