"""How the sync's load packages are written into Delta tables: dlt's `filesystem` destination with its Delta load job
replaced by one that also knows `delete-insert` (see `pipelines.lake_warehouse` for why and for the whole design).

One job per table chain and load package (`LakeFilesystemClient.get_reference_followup_job_requests`): the root
table first, then its nested tables, each written in one Delta commit that also records the package
(`Transaction(COMMIT_APP_ID, load_version(load_id))`). A job that runs again for a package, because the run died after
a commit but before dlt marked the job done, skips the tables whose newest recorded package is this one or a later
one: every write is applied exactly once, appends included.

Per write disposition (dlt's table schema says which):

- `append` (and a first sync's merges, which the source turns into appends): the package's rows appended;
- `replace`: the table overwritten with the package's rows;
- `merge` with `delete-insert` and a `merge_key` (the slices: a year, a date): `write_deltalake(mode="overwrite",
  predicate=<merge key in the package's values>)`, the package's rows without its tombstones. Delta checks that every
  row written matches the predicate and replaces the matching rows in the same commit, so a slice is never seen half
  replaced; a slice whose only row is its tombstone is emptied;
- `merge` with `delete-insert` on the `primary_key` (no merge key): a Delta MERGE on the key: a matched key whose
  package row is a tombstone (`hard_delete` column true) is deleted, another matched key is overwritten (all columns:
  the rows are first given the table's columns), an unmatched one inserted unless it is a tombstone;
- nested tables of a merged root (dlt's `_dlt_root_id`): after the root's commit, the rows whose root row is no longer
  in the root table (a document replaced or deleted) are removed and the package's rows added, in one commit
  (`overwrite` with a predicate on `_dlt_root_id`: the removed roots and the package's new ones);
- dlt's other merge strategies (`upsert`, `insert-only`, `cdc`) go to dlt's own Delta merge (the source uses none).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from dlt.common.destination import DestinationCapabilitiesContext
from dlt.common.destination.client import HasFollowupJobs, LoadJob, PreparedTableSchema, RunnableLoadJob
from dlt.common.schema.utils import get_columns_names_with_prop, get_first_column_name_with_prop
from dlt.common.storages.load_package import ParsedLoadJobFileName
from dlt.destinations.exceptions import DestinationUndefinedEntity
from dlt.destinations.impl.filesystem.factory import filesystem
from dlt.destinations.impl.filesystem.filesystem import DeltaLoadFilesystemJob, FilesystemClient
from dlt.destinations.job_impl import FinalizedLoadJob, FinalizedLoadJobWithFollowupJobs, ReferenceFollowupJobRequest

from illuminate_sync.pipelines.warehouse import sql_literal

COMMIT_APP_ID = "illuminate-sync"
"""The application id of the Delta transaction marker each load commit carries (`txn` action of the Delta protocol)."""
ROOT_ID = "_dlt_root_id"
ROW_ID = "_dlt_id"


def load_version(load_id: str) -> int:
    """A load package's id (dlt: the Unix time of its creation, `1733212345.123456`) as the version of its commits'
    transaction marker. dlt loads packages in the order of their ids, so the markers of a table only grow."""
    return int(Decimal(load_id) * 1_000_000)


# ----------------------------------------------------------------------------------------------- predicates
def delta_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def delta_literal(value: Any) -> str:
    """A value as a literal of delta-rs' (DataFusion's) SQL: `sql_literal`'s, but DataFusion spells a typed
    timestamp or date literal as a CAST."""
    if isinstance(value, datetime):
        return f"CAST('{value.isoformat(sep=' ')}' AS TIMESTAMP)"
    if isinstance(value, date):
        return f"CAST('{value.isoformat()}' AS DATE)"
    return sql_literal(value)


def values_predicate(columns: Sequence[str], values: Iterable[tuple[Any, ...]]) -> str | None:
    """The rows whose `columns` hold one of `values` (None: no values). One column: `IN (...)`."""
    distinct = sorted(set(values), key=repr)
    if not distinct:
        return None
    if len(columns) == 1:
        column = delta_identifier(columns[0])
        present = [value[0] for value in distinct if value[0] is not None]
        terms = [f"{column} IN ({', '.join(delta_literal(value) for value in present)})"] if present else []
        if len(present) < len(distinct):
            terms.append(f"{column} IS NULL")
        return " OR ".join(terms)
    terms = []
    for value in distinct:
        parts = [
            f"{delta_identifier(column)} IS NULL"
            if part is None
            else f"{delta_identifier(column)} = {delta_literal(part)}"
            for column, part in zip(columns, value)
        ]
        terms.append("(" + " AND ".join(parts) + ")")
    return " OR ".join(terms)


# ------------------------------------------------------------------------------------------------ arrow
def table_arrow_schema(table: Any) -> pa.Schema:
    """A `deltalake.DeltaTable`'s schema as a pyarrow schema."""
    return pa.schema(table.schema().to_arrow())


def conformed(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """`batches` with exactly the columns of `schema` (NULL where a batch lacks one), cast to its types."""
    for batch in batches:
        columns = []
        for field in schema:
            if field.name in batch.schema.names:
                column = batch.column(field.name)
                columns.append(column if column.type == field.type else column.cast(field.type))
            else:
                columns.append(pa.nulls(batch.num_rows, field.type))
        yield pa.RecordBatch.from_arrays(columns, schema=schema)


def without_tombstones(dataset: pads.Dataset, deleted_column: str | None) -> pads.Scanner:
    """The package's rows that are not tombstones."""
    if deleted_column is None or deleted_column not in dataset.schema.names:
        return dataset.scanner(batch_size=65536)
    flag = pc.field(deleted_column)
    # dlt's hard_delete: a boolean column deletes when true, another type when not NULL
    keep = flag.is_null() | ~flag if pa.types.is_boolean(dataset.schema.field(deleted_column).type) else flag.is_null()
    return dataset.scanner(filter=keep, batch_size=65536)


def distinct_values(dataset: pads.Dataset, column: str) -> set[Any]:
    return set(pc.unique(dataset.to_table(columns=[column]).column(0)).to_pylist())


def package_dataset(paths: Sequence[str]) -> pads.Dataset:
    """The package's parquet files of one table, under the union of their schemas (a later file may add columns)."""
    schemas = [pads.dataset(path, format="parquet").schema for path in paths]
    return pads.dataset(list(paths), schema=pa.unify_schemas(schemas, promote_options="permissive"), format="parquet")


# ------------------------------------------------------------------------------------------------ the job
class LakeDeltaLoadJob(DeltaLoadFilesystemJob):
    """Writes a table chain's files of one package into Delta tables (see the module docstring)."""

    def run(self) -> None:
        from dlt.common.libs.deltalake import deltalake_storage_options

        self.storage_options = deltalake_storage_options(
            self._job_client.config.credentials, self._job_client.config.deltalake_storage_options
        )
        by_table: dict[str, list[str]] = {}
        for path in self.file_paths:
            by_table.setdefault(ParsedLoadJobFileName.parse(os.path.basename(path)).table_name, []).append(path)
        root = self._load_table
        while "parent" in root:
            root = self._job_client.prepare_load_table(root["parent"])
        chain = [root["name"], *self._nested_tables(root["name"])]
        for name in chain:
            table = self._job_client.prepare_load_table(name)
            paths = by_table.get(name, [])
            if paths or self._cleans_orphans(table):
                self._write_table(table, paths)

    def _nested_tables(self, root: str) -> list[str]:
        """The nested tables of `root` in the schema, parents before children."""
        tables = self._job_client.schema.tables
        ordered, parents = [], [root]
        while parents:
            children = [name for name, table in tables.items() if table.get("parent") in parents]
            ordered.extend(children)
            parents = children
        return ordered

    def _cleans_orphans(self, table: PreparedTableSchema) -> bool:
        return table["write_disposition"] == "merge" and "parent" in table and ROOT_ID in table["columns"]

    # -------------------------------------------------------------------------------------------------
    def _open(self, name: str) -> Any:
        try:
            return self._job_client.load_open_table("delta", name)
        except DestinationUndefinedEntity:
            return None

    def _commit(self) -> Any:
        from deltalake import CommitProperties, Transaction

        return CommitProperties(app_transactions=[Transaction(COMMIT_APP_ID, load_version(self._load_id))])

    def _write_table(self, table: PreparedTableSchema, paths: Sequence[str]) -> None:
        from deltalake import write_deltalake
        from dlt.common.libs.deltalake import ensure_delta_compatible_arrow_schema, evolve_delta_table_schema

        name = table["name"]
        delta = self._open(name)
        if delta is not None and (delta.transaction_version(COMMIT_APP_ID) or -1) >= load_version(self._load_id):
            return  # committed by an earlier attempt at this package
        data = package_dataset(paths) if paths else None
        disposition = table["write_disposition"]
        deleted = get_first_column_name_with_prop(table, "hard_delete")
        if delta is None or disposition != "merge":
            if data is None:
                return
            rows = without_tombstones(data, deleted if disposition == "merge" else None)
            schema = ensure_delta_compatible_arrow_schema(data.schema)
            write_deltalake(
                self._job_client.get_open_table_location("delta", name) if delta is None else delta,
                pa.RecordBatchReader.from_batches(schema, conformed(rows.to_batches(), schema)),
                mode="overwrite" if disposition == "replace" else "append",
                schema_mode="merge" if delta is not None else None,
                storage_options=self.storage_options,
                configuration=self._job_client.config.deltalake_configuration,
                commit_properties=self._commit(),
            )
            return
        if data is not None:
            delta = evolve_delta_table_schema(delta, ensure_delta_compatible_arrow_schema(data.schema))
        target_schema = table_arrow_schema(delta)
        strategy = table.get("x-merge-strategy")  # type: ignore[typeddict-item]
        merge_keys = get_columns_names_with_prop(table, "merge_key")
        primary_key = get_columns_names_with_prop(table, "primary_key")
        if "parent" in table:
            self._replace_orphans(delta, data, target_schema, table)
        elif strategy != "delete-insert":
            self._dlt_merge(delta, data, table)
        elif merge_keys:
            if primary_key:
                raise ValueError(f"{name}: delete-insert on a merge key and a primary key at once is not supported")
            self._replace_slices(delta, data, target_schema, merge_keys, deleted)
        elif primary_key:
            self._merge_on_key(delta, data, target_schema, primary_key, deleted)
        else:
            raise ValueError(f"{name}: delete-insert needs a merge key or a primary key")

    def _replace_slices(
        self, delta: Any, data: pads.Dataset | None, schema: pa.Schema, keys: list[str], deleted: str | None
    ) -> None:
        """Every slice named in the package (its rows' and its tombstones' merge key values) replaced whole."""
        from deltalake import write_deltalake

        if data is None:
            return
        if len(keys) == 1:
            values: Iterable[tuple[Any, ...]] = ((value,) for value in distinct_values(data, keys[0]))
        else:
            values = (tuple(row[key] for key in keys) for row in data.to_table(columns=keys).to_pylist())
        predicate = values_predicate(keys, values)
        if predicate is None:
            return
        rows = without_tombstones(data, deleted)
        write_deltalake(
            delta,
            pa.RecordBatchReader.from_batches(schema, conformed(rows.to_batches(), schema)),
            mode="overwrite",
            predicate=predicate,
            storage_options=self.storage_options,
            commit_properties=self._commit(),
        )

    def _merge_on_key(
        self, delta: Any, data: pads.Dataset | None, schema: pa.Schema, keys: list[str], deleted: str | None
    ) -> None:
        """The package's keys deleted (tombstones) or overwritten, new keys inserted: one Delta MERGE."""
        if data is None or data.count_rows() == 0:
            return
        on = " AND ".join(f"target.{delta_identifier(key)} = source.{delta_identifier(key)}" for key in keys)
        source = pa.RecordBatchReader.from_batches(schema, conformed(data.to_batches(batch_size=65536), schema))
        merge = delta.merge(
            source=source,
            predicate=on,
            source_alias="source",
            target_alias="target",
            # held in memory (a night's changes): delta-rs then prunes the target's files by the source's key values
            streamed_exec=False,
            commit_properties=self._commit(),
        )
        kept = None
        if deleted is not None:
            flag = f"source.{delta_identifier(deleted)}"
            merge = merge.when_matched_delete(predicate=f"{flag} = true")
            kept = f"({flag} IS NULL OR {flag} = false)"
        merge.when_matched_update_all(predicate=kept).when_not_matched_insert_all(predicate=kept).execute()

    def _replace_orphans(
        self, delta: Any, data: pads.Dataset | None, schema: pa.Schema, table: PreparedTableSchema
    ) -> None:
        """A nested table of a merged root: the rows of roots that are gone, and of the package's roots, replaced by
        the package's rows (the root table is written first)."""
        from deltalake import write_deltalake

        root = table
        while "parent" in root:
            root = self._job_client.prepare_load_table(root["parent"])
        root_table = self._open(root["name"])
        live = distinct_values(root_table.to_pyarrow_dataset(), ROW_ID) if root_table is not None else set()
        stored = distinct_values(delta.to_pyarrow_dataset(), ROOT_ID)
        package = distinct_values(data, ROOT_ID) if data is not None else set()
        predicate = values_predicate([ROOT_ID], ((value,) for value in (stored - live) | package))
        if predicate is None:
            return
        batches = data.to_batches(batch_size=65536) if data is not None else []
        write_deltalake(
            delta,
            pa.RecordBatchReader.from_batches(schema, conformed(batches, schema)),
            mode="overwrite",
            predicate=predicate,
            storage_options=self.storage_options,
            commit_properties=self._commit(),
        )

    def _dlt_merge(self, delta: Any, data: pads.Dataset | None, table: PreparedTableSchema) -> None:
        from dlt.common.libs.deltalake import merge_delta_table

        if data is None:
            return
        merge_delta_table(
            table=delta,
            data=data.scanner(batch_size=65536).to_reader(),
            schema=table,
            load_table_name=table["name"],
            streamed_exec=self._job_client.config.deltalake_streamed_exec,
        )


class NothingToRun(RunnableLoadJob):
    """A job done as soon as it runs: the package's file of a Delta table (the table chain's job writes it) and the
    state row (dlt writes it when the package completes). dlt's own jobs for these are done without running, and the
    loader then notices them on its next one-second poll only: ~1 s per table of every package (a 40-student first
    sync took 58 s instead of 20). Run in the pool, they wake the loader at once."""

    def run(self) -> None:
        pass


class NothingToRunWithFollowup(NothingToRun, HasFollowupJobs):
    pass


class LakeFilesystemClient(FilesystemClient):
    """dlt's filesystem client, its Delta tables written by `LakeDeltaLoadJob`, one job per table chain."""

    batch_table_chain: ClassVar[bool] = True

    def get_load_job_class(self, table: PreparedTableSchema, file_path: str) -> type[LoadJob]:
        job_class = super().get_load_job_class(table, file_path)
        if job_class is FinalizedLoadJobWithFollowupJobs:
            return NothingToRunWithFollowup
        if job_class is FinalizedLoadJob:
            return NothingToRun
        return job_class

    @staticmethod
    def get_reference_followup_job_class(table: PreparedTableSchema) -> type[DeltaLoadFilesystemJob] | None:
        if table.get("table_format") == "delta":
            import dlt.common.libs.deltalake  # noqa: F401 - raises early when deltalake is missing

            return LakeDeltaLoadJob
        return FilesystemClient.get_reference_followup_job_class(table)  # type: ignore[return-value]

    def get_reference_followup_job_requests(
        self, table_chain: Sequence[PreparedTableSchema], completed_table_chain_jobs: Any
    ) -> list[ReferenceFollowupJobRequest]:
        """One job for the chain, named after a file of its root table when it has one (the root comes first)."""
        paths = [
            job.file_path
            for table in table_chain
            for job in completed_table_chain_jobs or []
            if job.job_file_info.table_name == table["name"]
        ]
        if not paths:
            return []
        return [ReferenceFollowupJobRequest(os.path.basename(paths[0]), paths)]


class lake(filesystem):
    """dlt's `filesystem` destination (configured as `destination.filesystem`), with `delete-insert` on Delta."""

    @property
    def client_class(self) -> type[FilesystemClient]:
        return LakeFilesystemClient

    def _raw_capabilities(self) -> DestinationCapabilitiesContext:
        caps = super()._raw_capabilities()
        caps.supported_merge_strategies = ["delete-insert", "upsert", "insert-only", "cdc"]
        return caps
