"""Shared pytest fixtures. Each block belongs to one area; keep blocks separate."""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------------------------------
# HTTP client fixtures (tests/test_client_*.py): one simulator per test module over real HTTP, cleaned between tests.
# ---------------------------------------------------------------------------------------------------------------------
import datetime
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from illuminate_sync.sources.illuminate.auth import IlluminateCredentials, OAuth1Credentials, OAuth2Credentials
from illuminate_sync.sources.illuminate.client import IlluminateClient, RetryPolicy

CLIENT_WINDOW = {"start_date": "2026-08-01", "end_date": "2026-11-27"}
"""A Students window of the simulated district (the current school year up to `today`)."""
if TYPE_CHECKING:
    from illuminate_sync.simulator import Simulator

FAST_RETRY = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05, timeout=5.0)
"""Retries that keep the client tests fast."""


@pytest.fixture(scope="module")
def http_sim_server() -> Iterator[Simulator]:
    """A small simulated district served over HTTP on a free loopback port, for one test module."""
    from illuminate_sync.simulator import Simulator, SimulatorConfig  # imported here so that other tests run without it

    sim = Simulator(
        SimulatorConfig(
            students=200, seed=1, today=datetime.date(2026, 11, 27), token_lifetime=3600, html_auth_failures=False
        )
    )
    sim.start(port=0)
    yield sim
    sim.stop()


@pytest.fixture
def http_sim(http_sim_server: Simulator) -> Iterator[Simulator]:
    """The module's simulator with no faults and zeroed request counts."""
    http_sim_server.clear_faults()
    http_sim_server.reset_request_counts()
    yield http_sim_server
    http_sim_server.clear_faults()


def oauth1_credentials(sim: Simulator) -> IlluminateCredentials:
    consumer_key, consumer_secret, token, token_secret = sim.oauth1
    return OAuth1Credentials(
        consumer_key=consumer_key, consumer_secret=consumer_secret, token=token, token_secret=token_secret
    )


def oauth2_credentials(sim: Simulator) -> IlluminateCredentials:
    client_id, client_secret = sim.oauth2
    return OAuth2Credentials(client_id=client_id, client_secret=client_secret)


def canonical_rows(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as sorted JSON strings, to compare what the client received with the simulator's truth."""
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in json.loads(json.dumps(rows, default=str)))


@pytest.fixture
def make_client(http_sim: Simulator) -> Iterator[Callable[..., IlluminateClient]]:
    """Builds clients of the simulator (OAuth1 and fast retries unless given) and closes them after the test."""
    clients: list[IlluminateClient] = []

    def make(credentials: IlluminateCredentials | None = None, **kwargs: Any) -> IlluminateClient:
        kwargs.setdefault("retry", FAST_RETRY)
        client = IlluminateClient(http_sim.base_url, credentials or oauth1_credentials(http_sim), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# --------------------------------------------------- end of HTTP client fixtures -------------------------------------


# ---------------------------------------------------------------------------------------------------------------------
# SQL model fixtures (tests/test_models_*.py): a simulated district synced into DuckDB and the models built on it,
# once per test session and attendance recording style. Tests compare the marts with the simulator's own district.
# ---------------------------------------------------------------------------------------------------------------------
MODELS_TODAY = datetime.date(2026, 11, 27)
"""The simulated today of the model tests (also the models' `today` setting)."""


class ModelWarehouse:
    """A synced and modelled DuckDB file and the simulator whose district it copies (server already stopped)."""

    def __init__(self, sim: Simulator, path: Path) -> None:
        self.sim = sim
        self.path = path

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        import duckdb

        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()


def _model_warehouse(tmp_path_factory: pytest.TempPathFactory, attendance_mode: str) -> ModelWarehouse:
    import io

    from sync_support import sync

    from illuminate_sync.pipelines.models import ModelSettings, build_models
    from illuminate_sync.simulator import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(students=300, seed=1, today=MODELS_TODAY, attendance_mode=attendance_mode))
    path = tmp_path_factory.mktemp(f"models_{attendance_mode}") / "warehouse.duckdb"
    sim.start(port=0)
    try:
        sync(sim, path)
    finally:
        sim.stop()
    build_models(path, out=io.StringIO(), settings=ModelSettings(today=MODELS_TODAY))
    return ModelWarehouse(sim, path)


@pytest.fixture(scope="session")
def models_warehouse(tmp_path_factory: pytest.TempPathFactory) -> ModelWarehouse:
    """300 simulated students (seed 1) whose sites record every attendance mark, synced and modelled."""
    return _model_warehouse(tmp_path_factory, "all")


@pytest.fixture(scope="session")
def models_warehouse_exceptions(tmp_path_factory: pytest.TempPathFactory) -> ModelWarehouse:
    """The same district, but its sites record only attendance exceptions (absences, tardies)."""
    return _model_warehouse(tmp_path_factory, "exceptions")


# --------------------------------------------------- end of SQL model fixtures ---------------------------------------
