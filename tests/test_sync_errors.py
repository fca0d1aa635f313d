"""User errors end with one line naming the problem and the fix, a non-zero exit, and no traceback or secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from sync_support import TODAY, simulator_env

from illuminate_sync.pipelines.cli import main
from illuminate_sync.pipelines.duckdb_settings import DUCKDB_LOAD_CONFIG
from illuminate_sync.simulator import Simulator, SimulatorConfig


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    sim = Simulator(SimulatorConfig(students=60, seed=2, today=TODAY))
    sim.start(port=0)
    yield sim
    sim.stop()


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _assert_one_clean_line(output: str, *needles: str) -> None:
    error_lines = [line for line in output.splitlines() if line.startswith("illuminate-sync: error:")]
    assert len(error_lines) == 1, output
    assert "Traceback" not in output
    for needle in needles:
        assert needle in error_lines[0], error_lines[0]


def test_a_missing_base_url_names_its_environment_variable(
    simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator_env(simulator):
        monkeypatch.delenv("SOURCES__ILLUMINATE__BASE_URL")
        code, output = _run(["run", "--duckdb", str(tmp_path / "w.duckdb")], capsys)
    assert code != 0
    _assert_one_clean_line(output, "SOURCES__ILLUMINATE__BASE_URL")


def test_an_invalid_base_url_is_rejected(
    simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with simulator_env(simulator, SOURCES__ILLUMINATE__BASE_URL="ftp:/nowhere"):
        code, output = _run(["run", "--duckdb", str(tmp_path / "w.duckdb")], capsys)
    assert code != 0
    _assert_one_clean_line(output, "SOURCES__ILLUMINATE__BASE_URL")


def test_rejected_credentials_are_reported_without_the_secret(
    simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong_secret = "wrong-secret-3f9a7c"
    with simulator_env(simulator, SOURCES__ILLUMINATE__CREDENTIALS__CONSUMER_SECRET=wrong_secret):
        code, output = _run(["run", "--duckdb", str(tmp_path / "w.duckdb"), "--resources", "sites"], capsys)
    assert code != 0
    _assert_one_clean_line(output, "refused", "CONSUMER_SECRET")
    assert wrong_secret not in output
    for secret in (simulator.oauth1[1], simulator.oauth1[3]):
        assert secret not in output


def test_a_login_page_with_status_200_is_an_authentication_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = Simulator(SimulatorConfig(students=30, seed=2, today=TODAY, html_auth_failures=True))
    sim.start(port=0)
    try:
        with simulator_env(sim, SOURCES__ILLUMINATE__CREDENTIALS__TOKEN_SECRET="not-the-token-secret"):
            code, output = _run(["run", "--duckdb", str(tmp_path / "w.duckdb"), "--resources", "sites"], capsys)
    finally:
        sim.stop()
    assert code != 0
    _assert_one_clean_line(output, "login page")


def test_a_malformed_academic_year_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--duckdb", str(tmp_path / "w.duckdb"), "--academic-year", "20x7"])
    assert exit_info.value.code == 2
    _assert_one_clean_line(capsys.readouterr().err, "20x7", "YYYY")


def test_an_out_of_range_academic_year_names_the_valid_range(
    simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with simulator_env(simulator):
        code, output = _run(["run", "--duckdb", str(tmp_path / "w.duckdb"), "--academic-year", "1850"], capsys)
    assert code != 0
    _assert_one_clean_line(output, "1850", "2000")


def test_an_unknown_resource_lists_the_valid_names(
    simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with simulator_env(simulator):
        code, output = _run(["run", "--duckdb", str(tmp_path / "w.duckdb"), "--resources", "studnets"], capsys)
    assert code != 0
    _assert_one_clean_line(output, "studnets", "students", "attendance_daily")


def test_missing_credentials_name_both_ways_to_authenticate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in __import__("os").environ if name.startswith("SOURCES__ILLUMINATE__")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SOURCES__ILLUMINATE__BASE_URL", "https://demo.illuminateed.com/live")
    code, output = _run(["run", "--duckdb", str(tmp_path / "w.duckdb")], capsys)
    assert code != 0
    _assert_one_clean_line(output, "CONSUMER_KEY", "CLIENT_ID")


def test_a_half_filled_oauth1_key_names_the_missing_secret(
    simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator_env(simulator):
        monkeypatch.delenv("SOURCES__ILLUMINATE__CREDENTIALS__CONSUMER_SECRET")
        code, output = _run(["run", "--duckdb", str(tmp_path / "w.duckdb")], capsys)
    assert code != 0
    _assert_one_clean_line(output, "CONSUMER_SECRET")


def test_duckdb_running_out_of_memory_names_the_memory_setting(
    simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(DUCKDB_LOAD_CONFIG, "memory_limit", "4MB")  # what DUCKDB__MEMORY_LIMIT sets
    with simulator_env(simulator):
        code, output = _run(
            ["run", "--duckdb", str(tmp_path / "w.duckdb"), "--resources", "terms,attendance_daily"], capsys
        )
    assert code != 0
    _assert_one_clean_line(output, "ran out of memory", "DUCKDB__MEMORY_LIMIT", "4MB")
