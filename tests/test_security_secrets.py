"""Secrets never reach stdout, stderr, logs, exception messages, the dlt data dir or the DuckDB file.

One simulator with distinctive credentials serves runs through success (OAuth1 and OAuth2, with faults and retries),
a 401, a persistent failure and a SIGKILL in the middle of the load, all with `--verbose` and every logger at DEBUG.
The simulator records every signature, Authorization header and access token it saw; then every output and every file
is scanned for them: data files decoded (Parquet read, dlt's compressed state inflated), the DuckDB file read
column by column as well as byte by byte.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import traceback
import urllib.parse
import zlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from sync_support import CRASH_DURING_LOAD, TODAY, cli_env, fast_retries, simulator_env

from illuminate_sync.pipelines.cli import main
from illuminate_sync.pipelines.duckdb_warehouse import default_data_dir
from illuminate_sync.pipelines.sync import run_sync
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator.oauth import parse_authorization
from illuminate_sync.sources.illuminate.errors import IlluminateError

CREDENTIALS = {
    "consumer_key": "ck-4d1f0c2b9e8a7d6c5b4a3f2e1d0c9b8a",
    "consumer_secret": "CONSUMERSECRET-7f3e9a1c",
    "token": "9876543210123456-a1b2c3d4e5f60718",
    "token_secret": "TOKENSECRET-5b2d8e0f",
    "client_id": "client-id-0a9b8c7d6e5f",
    "client_secret": "CLIENTSECRET-3c6f9b2e",
}
SECRET_FIELDS = ("consumer_secret", "token_secret", "client_secret")
WRONG_SECRET = "WRONGSECRET-8e1a4c7b"
TABLES = "sites,students,enrollment,attendance_daily,assessment_view"
SETTINGS = {"SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK": "0", "SOURCES__ILLUMINATE__MAX_CONCURRENCY": "4"}
SIGNATURE = re.compile(rb"(?=([A-Za-z0-9+/]{27}=))")
"""An HMAC-SHA1 signature in base64, at any position (overlapping matches)."""
TOKEN = re.compile(rb"(?=([0-9a-f]{40}))")


class SeenOnTheWire:
    """What the simulator received: OAuth1 signatures and Authorization headers, OAuth2 tokens it issued."""

    def __init__(self, sim: Simulator) -> None:
        self.signatures: set[str] = set()
        self.headers: set[str] = set()
        self.tokens: set[str] = set()
        verify, issue = sim.verifier.verify, sim.tokens.issue

        def recording_verify(method, url, query, form, header, now=None):  # type: ignore[no-untyped-def]
            if header:
                self.headers.add(header)
                signature = (parse_authorization(header) or {}).get("oauth_signature")
                if signature:
                    self.signatures.add(signature)
            return verify(method, url, query, form, header, now)

        def recording_issue(client_id: str, client_secret: str) -> str | None:
            token = issue(client_id, client_secret)
            if token:
                self.tokens.add(token)
            return token

        sim.verifier.verify = recording_verify  # type: ignore[method-assign]
        sim.tokens.issue = recording_issue  # type: ignore[method-assign]

    def fixed_needles(self) -> list[bytes]:
        basic = base64.b64encode(f"{CREDENTIALS['client_id']}:{CREDENTIALS['client_secret']}".encode())
        values = [CREDENTIALS[name] for name in SECRET_FIELDS] + [WRONG_SECRET, basic.decode()]
        return [value.encode() for value in values]

    def leaks(self, data: bytes) -> list[str]:
        """The secrets, signatures, headers and tokens found in `data`."""
        found = [needle.decode() for needle in self.fixed_needles() if needle in data]
        for match in SIGNATURE.findall(data):
            if match.decode() in self.signatures:
                found.append(f"OAuth signature {match.decode()}")
        encoded = [urllib.parse.quote(signature, safe="").encode() for signature in self.signatures]
        for position in [m.start() for m in re.finditer(rb"%3D", data)]:  # percent-encoded, as in a header
            window = data[max(0, position - 60) : position + 3]
            found += [f"OAuth signature {value.decode()}" for value in encoded if window.endswith(value)]
        for match in TOKEN.findall(data):
            if match.decode() in self.tokens:
                found.append(f"access token {match.decode()}")
        return found


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(students=40, seed=17, today=TODAY, token_lifetime=2, credentials=CREDENTIALS))
    simulator.start(port=0)
    yield simulator
    simulator.stop()


def oauth2_only(sim: Simulator) -> dict[str, str]:
    env = {name: "" for name in ("CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN", "TOKEN_SECRET")}
    env = {f"SOURCES__ILLUMINATE__CREDENTIALS__{name}": value for name, value in env.items()}
    env["SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_ID"] = sim.oauth2[0]
    env["SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_SECRET"] = sim.oauth2[1]
    return env


def file_texts(root: Path) -> Iterator[tuple[Path, bytes]]:
    """Every file under `root`, as bytes, plus its decoded content when it is Parquet or compressed."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        yield path, data
        if data[:4] == b"PAR1":
            yield path, str(pq.read_table(path).to_pylist()).encode()
        for decode in (zlib.decompress, lambda raw: zlib.decompress(raw, 16 + zlib.MAX_WBITS)):
            with contextlib.suppress(zlib.error):
                yield path, decode(data)


def duckdb_texts(db: Path) -> Iterator[tuple[str, bytes]]:
    """Every table of every schema of the DuckDB file as text; dlt's stored state inflated."""
    from dlt.common.versioned_state import decompress_state

    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        for schema, table in tables:
            rows = con.execute(f'select * from "{schema}"."{table}"').fetchall()
            yield f"{schema}.{table}", repr(rows).encode()
            if table == "_dlt_pipeline_state":
                for (state,) in con.execute(f'select state from "{schema}"."{table}"').fetchall():
                    yield f"{schema}.{table} (inflated)", json.dumps(decompress_state(state)).encode()


def test_no_secret_reaches_any_output_log_exception_or_file(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wire = SeenOnTheWire(sim)
    outputs: list[tuple[str, str]] = []
    db = tmp_path / "w.duckdb"

    def cli(name: str, *argv: str, **env: str) -> int:
        with simulator_env(sim, **SETTINGS, **env), fast_retries():
            for key in [key for key, value in os.environ.items() if key.startswith("SOURCES__") and value == ""]:
                del os.environ[key]  # an empty setting means "not set" here
            code = main(["run", *argv, "--resources", TABLES, "--skip-models", "--verbose"])
        captured = capsys.readouterr()
        outputs.append((f"{name} stdout", captured.out))
        outputs.append((f"{name} stderr", captured.err))
        return code

    # success with OAuth1 through faults and retries
    sim.inject_fault("*", "503", rate=0.05)
    sim.inject_fault("*", "truncated_json", rate=0.03)
    sim.inject_fault("Students", "429", count=1, retry_after=0)
    assert cli("oauth1", "--duckdb", str(db)) == 0
    # success with OAuth2: tokens expire during the run, the token endpoint fails once
    sim.inject_fault("OAuth2", "503", count=1)
    sim.inject_fault("*", "latency", rate=0.1, seconds=0.3)
    assert cli("oauth2", "--duckdb", str(tmp_path / "oauth2.duckdb"), **oauth2_only(sim)) == 0
    sim.clear_faults()
    # 401: a wrong secret, OAuth1 and OAuth2
    assert cli("401", "--duckdb", str(db), SOURCES__ILLUMINATE__CREDENTIALS__TOKEN_SECRET=WRONG_SECRET) == 1
    wrong_client = {**oauth2_only(sim), "SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_SECRET": WRONG_SECRET}
    assert cli("401 oauth2", "--duckdb", str(db), **wrong_client) == 1
    # a persistent failure
    sim.inject_fault("Enrollment", "500")
    assert cli("persistent", "--duckdb", str(db)) == 1
    sim.clear_faults()
    # the exception itself, with its traceback, as a caller of run_sync sees it
    wrong = {"SOURCES__ILLUMINATE__CREDENTIALS__CONSUMER_SECRET": WRONG_SECRET}
    with simulator_env(sim, **wrong), pytest.raises(IlluminateError) as refused:
        run_sync(db, resources=["sites"], today=sim.today.isoformat(), out=io.StringIO(), build_models_after=False)
    outputs.append(("exception", "".join(traceback.format_exception(refused.value))))
    # a crash in the middle of the load, then the repairing run
    sim.mutate("add_students", count=2)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_DURING_LOAD, "run", "--duckdb", str(db), "--resources", TABLES, "--verbose"],
        env=cli_env(sim, CRASH_AFTER_COPY_JOBS="3", **SETTINGS),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    outputs += [("crash stdout", crashed.stdout), ("crash stderr", crashed.stderr)]
    assert cli("after the crash", "--duckdb", str(db)) == 0

    assert wire.signatures and wire.tokens and wire.headers, "the runs should have signed requests and used tokens"
    # the scanner finds what it looks for: a header as sent, a bare signature, a token, a secret
    header, signature, token = next(iter(wire.headers)), next(iter(wire.signatures)), next(iter(wire.tokens))
    assert wire.leaks(f"x{header}y".encode()) and wire.leaks(f"a{signature}b".encode())
    assert wire.leaks(f"Bearer {token}".encode()) and wire.leaks(b"..." + CREDENTIALS["token_secret"].encode())
    outputs.append(("logs", "\n".join(record.getMessage() for record in caplog.records)))
    outputs.append(("log text", caplog.text))
    leaks: list[str] = []
    for name, text in outputs:
        leaks += [f"{name}: {leak}" for leak in wire.leaks(text.encode())]
    scanned = 0
    for path, data in (*file_texts(tmp_path), *duckdb_texts(db), *duckdb_texts(tmp_path / "oauth2.duckdb")):
        scanned += 1
        leaks += [f"{path}: {leak}" for leak in wire.leaks(data)]
    assert default_data_dir(db).is_dir() and scanned > 20
    assert not leaks, "secrets found:\n" + "\n".join(sorted(set(leaks))[:30])
