"""Bad configuration gets a one-line error naming the setting, a non-zero exit, no traceback and no secret.

(Missing base URL, `ftp:/nowhere`, a consumer key without its secret, a malformed or too-early academic year and
missing credentials are in test_sync_errors.py; a wrong type or range for every setting, settings files and paths in
test_bad_input_settings.py.)"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_support import TODAY, simulator_env

from illuminate_sync.pipelines.cli import main
from illuminate_sync.simulator import Simulator, SimulatorConfig

CREDENTIALS = "SOURCES__ILLUMINATE__CREDENTIALS__"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=20, seed=18, today=TODAY))
    simulator.start(port=0)
    yield simulator
    simulator.stop()


def run(sim: Simulator, db: Path, capsys: pytest.CaptureFixture[str], *argv: str, **env: str | None) -> tuple[int, str]:
    with simulator_env(sim, **{name: value for name, value in env.items() if value is not None}):
        for name in [name for name, value in env.items() if value is None]:
            os.environ.pop(name, None)
        try:
            code = main(["run", "--duckdb", str(db), "--resources", "sites", "--skip-models", *argv])
        except SystemExit as usage:
            code = int(usage.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("illuminate-sync: error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        ({"SOURCES__ILLUMINATE__BASE_URL": "https://"}, ["SOURCES__ILLUMINATE__BASE_URL"]),
        ({"SOURCES__ILLUMINATE__BASE_URL": "district.illuminateed.com/live"}, ["SOURCES__ILLUMINATE__BASE_URL"]),
        ({"SOURCES__ILLUMINATE__BASE_URL": "http://district.illuminateed.com/live"}, ["BASE_URL", "https"]),
        ({"SOURCES__ILLUMINATE__BASE_URL": "https://user:pw@district.illuminateed.com/live"}, ["BASE_URL"]),
        ({f"{CREDENTIALS}TOKEN_SECRET": None}, ["TOKEN_SECRET"]),
        ({f"{CREDENTIALS}TOKEN": None}, ["TOKEN"]),
        ({"SOURCES__ILLUMINATE__MAX_CONCURRENCY": "0"}, ["MAX_CONCURRENCY"]),
        ({"SOURCES__ILLUMINATE__MAX_CONCURRENCY": "-4"}, ["MAX_CONCURRENCY"]),
        ({"SOURCES__ILLUMINATE__TODAY": "27/11/2026"}, ["SOURCES__ILLUMINATE__TODAY"]),
    ],
    ids=[
        "url-without-host",
        "url-without-scheme",
        "http-not-loopback",
        "url-with-password",
        "token-without-secret",
        "token-secret-without-token",
        "concurrency-zero",
        "concurrency-negative",
        "today-malformed",
    ],
)
def test_a_bad_setting_is_named_on_one_line(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], env: dict[str, str | None], needles: list[str]
) -> None:
    code, output = run(sim, tmp_path / "w.duckdb", capsys, **env)
    assert code == 1
    line = error_line(output)
    for needle in needles:
        assert needle in line, line
    assert sim.oauth1[1] not in output and sim.oauth1[3] not in output


def test_a_client_id_without_its_secret_names_the_missing_secret(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    oauth2_half = {
        f"{CREDENTIALS}{name}": None for name in ("CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN", "TOKEN_SECRET")
    }
    code, output = run(sim, tmp_path / "w.duckdb", capsys, **oauth2_half, **{f"{CREDENTIALS}CLIENT_ID": sim.oauth2[0]})
    assert code == 1
    assert "CLIENT_SECRET" in error_line(output)


def test_an_academic_year_after_the_range_names_the_range(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(sim, tmp_path / "w.duckdb", capsys, "--academic-year", "2101")
    assert code == 1
    line = error_line(output)
    assert "2101" in line and "2100" in line, line


def test_pii_hash_without_a_key_names_the_key_setting(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(sim, tmp_path / "w.duckdb", capsys, "--pii", "hash", SOURCES__ILLUMINATE__PII_HASH_KEY=None)
    assert code == 1
    assert "SOURCES__ILLUMINATE__PII_HASH_KEY" in error_line(output)
