"""Shared pytest fixtures. Each block belongs to one area; keep blocks separate. Helpers that tests import live in
modules of their own (client_support.py, model_support.py, sync_support.py, ...): conftest.py holds fixtures only."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from client_support import FAST_RETRY, oauth1_credentials
from model_support import ModelWarehouse, build_model_warehouse

from illuminate_sync.sources.illuminate.auth import IlluminateCredentials
from illuminate_sync.sources.illuminate.client import IlluminateClient

if TYPE_CHECKING:
    from illuminate_sync.simulator import Simulator


# ---------------------------------------------------------------------------------------------------------------------
# HTTP client fixtures (tests/test_client_*.py): one simulator per test module over real HTTP, cleaned between tests.
# ---------------------------------------------------------------------------------------------------------------------
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
@pytest.fixture(scope="session")
def models_warehouse(tmp_path_factory: pytest.TempPathFactory) -> ModelWarehouse:
    """300 simulated students (seed 1) whose sites record every attendance mark, synced and modelled."""
    return build_model_warehouse(tmp_path_factory.mktemp("models_all"), "all")


@pytest.fixture(scope="session")
def models_warehouse_exceptions(tmp_path_factory: pytest.TempPathFactory) -> ModelWarehouse:
    """The same district, but its sites record only attendance exceptions (absences, tardies)."""
    return build_model_warehouse(tmp_path_factory.mktemp("models_exceptions"), "exceptions")


# --------------------------------------------------- end of SQL model fixtures ---------------------------------------
