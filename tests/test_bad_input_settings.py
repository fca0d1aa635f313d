"""Every input a user gives is checked before the run touches the disk: a wrong value ends in ONE line on stderr
naming the setting or file, a non-zero exit, no traceback, and nothing created or changed on disk.

`BAD_VALUES` holds one wrong value per setting; it is checked against the README's settings table, so a setting
documented there cannot go without a case here. The CLI runs as a subprocess (an installed user's view: dlt's
settings files are read from its working directory).
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sync_support import TODAY, cli_env, run_cli, tree

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.sources.illuminate import illuminate_source
from illuminate_sync.sources.illuminate.setting_rules import SETTING_RULES, setting_variable

README = Path(__file__).resolve().parent.parent / "README.md"
SOURCE = "SOURCES__ILLUMINATE__"
CREDENTIALS = f"{SOURCE}CREDENTIALS__"
OAUTH1 = ("CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN", "TOKEN_SECRET")
WITHOUT_OAUTH1 = {f"{CREDENTIALS}{name}": "" for name in OAUTH1}
"""Blank OAuth1 settings, for the OAuth2 cases (OAuth2 wins only when its client id is set)."""


@dataclass(frozen=True)
class BadValue:
    variable: str
    value: str
    context: dict[str, str] = field(default_factory=dict)
    """Other settings the case needs (a PII key matters only with `PII=hash`)."""


BAD_VALUES: list[BadValue] = [
    BadValue(f"{SOURCE}BASE_URL", "ftp:/nowhere"),
    BadValue(f"{CREDENTIALS}CONSUMER_KEY", ""),
    BadValue(f"{CREDENTIALS}CONSUMER_SECRET", ""),
    BadValue(f"{CREDENTIALS}TOKEN", ""),
    BadValue(f"{CREDENTIALS}TOKEN_SECRET", ""),
    BadValue(f"{CREDENTIALS}CLIENT_ID", "", {**WITHOUT_OAUTH1, f"{CREDENTIALS}CLIENT_SECRET": "s3cret-client"}),
    BadValue(f"{CREDENTIALS}CLIENT_SECRET", "", {**WITHOUT_OAUTH1, f"{CREDENTIALS}CLIENT_ID": "client-7"}),
    BadValue(f"{SOURCE}MAX_CONCURRENCY", "eight"),
    BadValue(f"{SOURCE}MAX_CONCURRENCY_CEILING", "sixteen"),
    BadValue(f"{SOURCE}ATTENDANCE_LOOKBACK_DAYS", "two"),
    BadValue(f"{SOURCE}ATTENDANCE_INCLUDE_WEEKENDS", "perhaps"),
    BadValue(f"{SOURCE}POOL_LOOKBACK_DAYS", "thirty"),
    BadValue(f"{SOURCE}RECONCILE_EVERY_N_RUNS", "weekly"),
    BadValue(f"{SOURCE}GRADEBOOK_REFRESH_DAYS", "7d"),
    BadValue(f"{SOURCE}ACADEMIC_YEARS_BACK", "one"),
    BadValue(f"{SOURCE}PII", "scramble"),
    BadValue(f"{SOURCE}PII_HASH_KEY", "", {f"{SOURCE}PII": "hash"}),
    BadValue(f"{SOURCE}SHRINK_GUARD_RATIO", "half"),
    BadValue(f"{SOURCE}TODAY", "27/11/2026"),
    BadValue(f"{SOURCE}API_TIMEZONE", "Pacific Time"),
    BadValue("DUCKDB__MEMORY_LIMIT", "lots"),
    BadValue("MODELS__TODAY", "yesterday"),
    BadValue("MODELS__CHRONIC_ABSENCE_THRESHOLD", "high"),
    BadValue("MODELS__CHRONIC_ABSENCE_MIN_DAYS", "ten"),
]

OUT_OF_RANGE: list[BadValue] = [
    BadValue(f"{SOURCE}SHRINK_GUARD_RATIO", "2"),
    BadValue(f"{SOURCE}SHRINK_GUARD_RATIO", "-0.1"),
    BadValue(f"{SOURCE}SHRINK_GUARD_RATIO", "nan"),
    BadValue(f"{SOURCE}MAX_CONCURRENCY", "0"),
    BadValue(f"{SOURCE}MAX_CONCURRENCY", "lots"),
    BadValue(f"{SOURCE}MAX_CONCURRENCY", "-4"),
    BadValue(f"{SOURCE}MAX_CONCURRENCY_CEILING", "0"),
    BadValue(f"{SOURCE}ATTENDANCE_LOOKBACK_DAYS", "-1"),
    BadValue(f"{SOURCE}POOL_LOOKBACK_DAYS", "-30"),
    BadValue(f"{SOURCE}RECONCILE_EVERY_N_RUNS", "-1"),
    BadValue(f"{SOURCE}GRADEBOOK_REFRESH_DAYS", "0"),
    BadValue(f"{SOURCE}ACADEMIC_YEARS_BACK", "-1"),
    BadValue("MODELS__CHRONIC_ABSENCE_THRESHOLD", "0"),
    BadValue("MODELS__CHRONIC_ABSENCE_THRESHOLD", "1.5"),
    BadValue("MODELS__CHRONIC_ABSENCE_MIN_DAYS", "0"),
]

SECRETS = {f"{CREDENTIALS}{name}" for name in ("CONSUMER_SECRET", "TOKEN_SECRET", "CLIENT_SECRET")} | {
    f"{SOURCE}PII_HASH_KEY"
}


def readme_setting_variables() -> set[str]:
    """The environment variables of README's settings table (`..._X` abbreviates the row's first variable)."""
    text = README.read_text()
    table = text[text.index("| setting | environment variable | meaning |") :].split("\n\n")[0]
    variables: set[str] = set()
    for row in table.splitlines()[2:]:
        first, *others = re.findall(r"`([A-Z_.]+)`", row.split("|")[2])
        variables.add(first)
        for name in others:
            variables.add(first[: first.rindex("__") + 2] + name[4:] if name.startswith("..._") else name)
    return variables


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=20, seed=19, today=TODAY))
    simulator.start(port=0)
    yield simulator
    simulator.stop()


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("illuminate-sync: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_every_setting_of_the_readme_has_a_bad_value_case() -> None:
    assert readme_setting_variables() == {case.variable for case in BAD_VALUES}


def test_every_setting_of_the_source_has_a_rule_or_its_own_check() -> None:
    """An argument of the source that the pipeline does not pass is a setting the user gives: it needs a rule (or
    is one of the settings the source checks itself), or a wrong value would reach the run unchecked."""
    passed_by_the_pipeline = {
        "academic_years",
        "full_refresh",
        "reconcile",
        "warehouse",
        "allow_shrink",
        "report",
        "resources",
        "request_budget",
    }
    checked_by_the_source = {"base_url", "credentials", "pii_hash_key"}
    settings = set(inspect.signature(illuminate_source).parameters) - passed_by_the_pipeline - checked_by_the_source
    assert settings == set(SETTING_RULES)
    assert {setting_variable(name) for name in settings} <= {case.variable for case in BAD_VALUES}


@pytest.mark.parametrize("case", [*BAD_VALUES, *OUT_OF_RANGE], ids=lambda case: f"{case.variable}={case.value}")
def test_a_wrong_setting_is_named_on_one_line_and_nothing_is_written(
    sim: Simulator, tmp_path: Path, case: BadValue
) -> None:
    before = tree(tmp_path)
    env = cli_env(sim, **case.context, **{case.variable: case.value})
    result = run_cli(tmp_path, env, "run", "--duckdb", "w.duckdb", "--resources", "sites")
    line = assert_one_line_error(result, case.variable)
    if case.value and case.variable not in SECRETS:
        assert repr(case.value) in line or case.value in line, line
    for secret in (sim.oauth1[1], sim.oauth1[3], "s3cret-client"):
        assert secret not in result.stdout + result.stderr
    assert tree(tmp_path) == before


@pytest.mark.parametrize("file_name", ["secrets.toml", "config.toml"])
def test_a_malformed_settings_file_is_named_with_its_position(sim: Simulator, tmp_path: Path, file_name: str) -> None:
    settings = tmp_path / ".dlt"
    settings.mkdir()
    (settings / file_name).write_text('[sources.illuminate\nconsumer_secret = "do-not-show-me"\n')
    before = tree(tmp_path)
    result = run_cli(tmp_path, cli_env(sim), "run", "--duckdb", "w.duckdb", "--resources", "sites")
    line = assert_one_line_error(result, file_name, "line 1")
    assert "do-not-show-me" not in line
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "content"),
    [("notes.txt", b"not a database\n"), ("students.csv", b"student_id,name\n1,Ada\n"), ("empty.duckdb", b"")],
)
@pytest.mark.parametrize("command", ["run", "models"])
def test_a_file_that_is_not_a_duckdb_database_is_left_as_it_was(
    sim: Simulator, tmp_path: Path, name: str, content: bytes, command: str
) -> None:
    (tmp_path / name).write_bytes(content)
    before = tree(tmp_path)
    result = run_cli(tmp_path, cli_env(sim), command, "--duckdb", name)
    assert_one_line_error(result, name, "not a DuckDB database")
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--duckdb", "missing/w.duckdb"], "missing"),
        (["--duckdb", "."], "is a directory"),
        (["--duckdb", "w.duckdb", "--data-dir", "notes.txt"], "--data-dir"),
        (["--duckdb", "w.duckdb", "--data-dir", "missing/dlt"], "--data-dir"),
    ],
    ids=["duckdb-in-a-missing-directory", "duckdb-is-a-directory", "data-dir-is-a-file", "data-dir-in-a-missing-one"],
)
def test_a_path_the_run_cannot_write_is_named(sim: Simulator, tmp_path: Path, argv: list[str], needle: str) -> None:
    (tmp_path / "notes.txt").write_text("notes\n")
    before = tree(tmp_path)
    result = run_cli(tmp_path, cli_env(sim), "run", *argv, "--resources", "sites")
    assert_one_line_error(result, needle)
    assert tree(tmp_path) == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_duckdb_in_an_unwritable_directory_is_named(sim: Simulator, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        result = run_cli(tmp_path, cli_env(sim), "run", "--duckdb", "locked/w.duckdb", "--resources", "sites")
    finally:
        locked.chmod(0o700)
    assert_one_line_error(result, "locked", "not writable")
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "help_hint"),
    [([], "(see illuminate-sync --help)"), (["run"], "(see illuminate-sync run --help)")],
)
def test_a_usage_error_names_the_program_once(tmp_path: Path, argv: list[str], help_hint: str) -> None:
    result = run_cli(tmp_path, cli_env_without_simulator(), *argv)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.strip().endswith(help_hint), result.stderr
    assert "illuminate-sync illuminate-sync" not in result.stderr


def cli_env_without_simulator() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith(SOURCE)}
