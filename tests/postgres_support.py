"""A throwaway PostgreSQL cluster for the tests: a temporary directory, a free loopback port, stopped afterwards.

The machine image (and `.ci/run`) provide PostgreSQL 15's server binaries. `initdb` refuses to run as root, so as root
the cluster runs as the `postgres` system user, in a directory that user owns. `fsync=off`: the tests need no
durability across a crash of the machine, only across a killed client. The benchmark (`bench/postgres.py`) starts
the same cluster with the server's default settings instead (`settings={}`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER_BINARIES = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin"), Path("/usr/local/bin"))
SUPERUSER = "illuminate_test"
PASSWORD = "test-password-not-a-secret"
TEST_SETTINGS: dict[str, str] = {"fsync": "off"}
"""Server settings of the tests' clusters, beside what any throwaway cluster needs (address, port, socket dir)."""


def server_binary(name: str) -> str | None:
    for directory in SERVER_BINARIES:
        if (directory / name).is_file():
            return str(directory / name)
    return shutil.which(name)


def postgres_available() -> bool:
    return server_binary("initdb") is not None and server_binary("pg_ctl") is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class PostgresCluster:
    port: int
    directory: Path

    @property
    def postmaster_pid(self) -> int:
        """The server's main process (first line of `postmaster.pid` in the data directory)."""
        return int((self.directory / "data" / "postmaster.pid").read_text().splitlines()[0])

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[object, ...]]:
        import psycopg2

        connection = psycopg2.connect(self.url(database))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()

    def create_database(self, name: str) -> str:
        self.execute(f'create database "{name}"')
        return self.url(name)


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextlib.contextmanager
def postgres_cluster(settings: Mapping[str, str] | None = None) -> Iterator[PostgresCluster]:
    """A running cluster with a password-authenticated superuser; stopped and deleted afterwards. `settings`: server
    settings (`-c name=value`) beside address, port and socket directory; `TEST_SETTINGS` unless given."""
    directory = Path(tempfile.mkdtemp(prefix="illuminate-pg-"))
    data = directory / "data"
    password_file = directory / "password"
    password_file.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (directory, password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    initdb, pg_ctl = server_binary("initdb"), server_binary("pg_ctl")
    assert initdb and pg_ctl, "PostgreSQL's server binaries are not installed (Debian: apt-get install postgresql)"
    subprocess.run(
        _as_server_user(
            [
                initdb,
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={password_file}",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    chosen = TEST_SETTINGS if settings is None else settings
    options = " ".join(
        [
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={directory}",
            *(f"-c {name}={value}" for name, value in chosen.items()),
        ]
    )
    start = [pg_ctl, "-D", str(data), "-o", options, "-l", str(directory / "server.log"), "-w", "start"]
    subprocess.run(_as_server_user(start), check=True, capture_output=True)
    try:
        yield PostgresCluster(port, directory)
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]), capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


def copy_raw_tables(warehouse: Path, url: str, pipelines_dir: Path, schema: str = "illuminate") -> Any:
    """Every raw table of schema `schema` of the DuckDB warehouse (not dlt's own `_dlt_*` tables) loaded into schema
    `schema` of the PostgreSQL database at `url` with dlt, as Arrow tables through csv files. Naive timestamps keep
    `timezone: false`, the hint the sync gives its catalog columns (so they are `timestamp without time zone`, as a
    sync into PostgreSQL makes them)."""
    import dlt
    import duckdb
    import pyarrow as pa
    import pytest

    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE'",
                [schema],
            ).fetchall()
            if not name.startswith("_dlt_")
        ]
        tables = {name: con.sql(f'select * from {schema}."{name}"').to_arrow_table() for name in names}

    def hints(table: pa.Table) -> dict[str, Any]:
        return {
            f.name: {"data_type": "timestamp", "timezone": False}
            for f in table.schema
            if pa.types.is_timestamp(f.type) and f.type.tz is None
        }

    resources = [
        dlt.resource(table, name=name, table_name=name, write_disposition="replace", columns=hints(table))
        for name, table in tables.items()
    ]
    pipeline = dlt.pipeline(
        pipeline_name="illuminate_postgres_copy" if schema == "illuminate" else f"illuminate_postgres_copy_{schema}",
        destination=dlt.destinations.postgres(url),
        dataset_name=schema,
        pipelines_dir=str(pipelines_dir),
    )
    with pytest.MonkeyPatch.context() as patch:  # keep the sync's _dlt_load_id (the project's config adds its own)
        patch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "false")
        patch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID", "false")
        pipeline.run(resources, loader_file_format="csv")
    return pipeline
