"""A first sync loads its largest tables while the rest of the district still downloads.

dlt runs extract, normalize and load one after the other, so a full sync downloaded everything and then loaded
everything: at 20,000 students the load of 32 M rows came after the last answer and took ~65 s, with the network idle.
A first sync (a warehouse whose tables hold no rows) extracts its resources in stages (`load_stages`), cut after each
endpoint that `endpoints.toml` marks `ends_load_stage` (the two largest, Attendance/Daily and Attendance/Section, with
their measurements there): each stage is its own load package, loaded in a background thread (`BackgroundLoad`)
while the next stage downloads; the last stage loads in the foreground as before. If a later stage fails, what the
earlier stages loaded stays, with their cursors, and the next run goes on from there.

Later runs stay in one package: a warehouse that dashboards read keeps exactly what it held when a run fails, rather
than newer roster tables beside older attendance.

Why not `Pipeline.load` in that thread: it saves the pipeline's state file when it ends, a copy read when it started,
which would overwrite the cursors the foreground extract saved meanwhile. The background thread runs dlt's load step
(`dlt.load.Load`) itself, which reads only the package (its files, its schema, its state row) and the destination.

The warehouse gives the destination the background load uses (`Warehouse.background_destination`): on a DuckDB file
one connection, whose cursor the foreground's reads use meanwhile (DuckDB refuses a second connection with another
configuration), on one DuckDB thread at a smaller memory limit (`duckdb_settings.BACKGROUND_LOAD_CONFIG`): it shares
the machine with the download, and its memory adds to the download's. A server takes the background load's
connections beside the reads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import dlt
from dlt.common.destination import Destination
from dlt.common.pipeline import LoadInfo
from dlt.common.runners import pool_runner
from dlt.common.storages import LoadStorageConfiguration
from dlt.dataset.utils import get_destination_clients
from dlt.load import Load
from dlt.load.configuration import LoaderConfiguration

from illuminate_sync.sources.illuminate.catalog import load_catalog


def stage_ends() -> list[str]:
    """The resources after which a stage ends, in catalog order: the endpoints declaring `ends_load_stage` (the two
    largest; `endpoints.toml` gives their measurements)."""
    return [table for table, endpoint in load_catalog().items() if endpoint.ends_load_stage]


def load_stages(resources: Sequence[str]) -> list[list[str]]:
    """The resources (in extraction order) cut into stages after each of `stage_ends()`; no empty stage."""
    ends = set(stage_ends())
    stages: list[list[str]] = [[]]
    for name in resources:
        stages[-1].append(name)
        if name in ends:
            stages.append([])
    return [stage for stage in stages if stage]


def load_step(pipeline: dlt.Pipeline, destination: Destination[Any, Any]) -> Load:
    """dlt's load step for the pipeline's normalized packages into `destination`, prepared in the calling thread
    (it reads the pipeline's schema, which the foreground changes while it extracts)."""
    client, _ = get_destination_clients(
        pipeline.default_schema.clone(), destination=destination, destination_dataset_name=pipeline.dataset_name
    )
    config = LoaderConfiguration(
        workers=1,
        _load_storage_config=LoadStorageConfiguration(load_volume_path=os.path.join(pipeline.working_dir, "load")),
    )
    return Load(destination, config=config, initial_client_config=client.config, initial_staging_client_config=None)


class BackgroundLoad:
    """Loads the normalized packages of a pipeline in a thread, into the warehouse's background destination;
    `wait` returns dlt's load info or raises what the load raised."""

    def __init__(self, pipeline: dlt.Pipeline, destination: Destination[Any, Any]) -> None:
        self.pipeline = pipeline
        self.step = load_step(pipeline, destination)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="illuminate-background-load", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            pool_runner.run_pool(self.step.config, self.step)
        except BaseException as error:  # re-raised in the foreground by `wait`
            self.error = error

    def wait(self) -> LoadInfo:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.step.get_step_info(self.pipeline)
