"""The sync's own records in the raw dataset, beside the data: quarantined records and the run history.

- `quarantine`: records whose values break their column type, kept out of their table (one row each).
- `sync_runs`: one row per run that held the lock, succeeded or failed: its duration, requests, retries, rows written
  and removed, quarantined records, and what the checks found (reconciliation, the shrink guard's refusal).
- `sync_run_tables`: one row per raw table per run: rows after the run, rows written and removed, whether the run
  synced it (`--resources` selects), its endpoint and strategy from the catalog.

The models `rpt_sync_runs` and `rpt_sync_tables` read the last two (the dashboard's sync health page). The rows are
Arrow tables with explicit types, so that a column that is null in a run (`error` of a run that succeeded) still has
its type in every warehouse.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa

from illuminate_sync.sources.illuminate.catalog import load_catalog
from illuminate_sync.sources.illuminate.convert import QuarantinedRecord

QUARANTINE_TABLE = "quarantine"
RUNS_TABLE = "sync_runs"
RUN_TABLES_TABLE = "sync_run_tables"
BOOKKEEPING_TABLES = frozenset({QUARANTINE_TABLE, RUNS_TABLE, RUN_TABLES_TABLE})
"""Tables the sync writes about itself: not data, left out of the run summary's table list."""

TIMESTAMP = pa.timestamp("us", tz="UTC")

QUARANTINE_SCHEMA = pa.schema(
    [
        ("quarantined_at", TIMESTAMP),
        ("table_name", pa.string()),
        ("endpoint", pa.string()),
        ("reason", pa.string()),
        ("record", pa.string()),
    ]
)
RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("started_at", TIMESTAMP),
        ("finished_at", TIMESTAMP),
        ("seconds", pa.float64()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("requests", pa.int64()),
        ("retries", pa.int64()),
        ("rows_written", pa.int64()),
        ("rows_removed", pa.int64()),
        ("quarantined", pa.int64()),
        ("findings", pa.string()),
    ]
)
RUN_TABLES_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("table_name", pa.string()),
        ("endpoint", pa.string()),
        ("strategy", pa.string()),
        ("synced", pa.bool_()),
        ("rows", pa.int64()),
        ("rows_written", pa.int64()),
        ("rows_removed", pa.int64()),
    ]
)


def quarantine_table(records: Sequence[QuarantinedRecord]) -> pa.Table:
    """A run's quarantined records as rows of `quarantine` (the raw record as JSON text)."""
    now = datetime.now(timezone.utc)
    return pa.Table.from_pylist(
        [
            {
                "quarantined_at": now,
                "table_name": record.table,
                "endpoint": record.endpoint,
                "reason": record.reason,
                "record": json.dumps(record.record, default=str, sort_keys=True),
            }
            for record in records
        ],
        schema=QUARANTINE_SCHEMA,
    )


@dataclass
class TableRun:
    rows: int
    rows_written: int | None
    rows_removed: int | None


@dataclass
class RunRecord:
    """One run as the history keeps it."""

    started_at: datetime
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    finished_at: datetime | None = None
    status: str = "running"
    error: str | None = None
    requests: int = 0
    retries: int = 0
    quarantined: int = 0
    findings: list[str] = field(default_factory=list)
    tables: dict[str, TableRun] = field(default_factory=dict)
    synced: frozenset[str] | None = None
    """The resources the run selected (None: every enabled one)."""

    def runs_table(self) -> pa.Table:
        finished = self.finished_at or datetime.now(timezone.utc)
        row = {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": finished,
            "seconds": (finished - self.started_at).total_seconds(),
            "status": self.status,
            "error": self.error,
            "requests": self.requests,
            "retries": self.retries,
            "rows_written": sum(table.rows_written or 0 for table in self.tables.values()),
            "rows_removed": sum(table.rows_removed or 0 for table in self.tables.values()),
            "quarantined": self.quarantined,
            "findings": "; ".join(self.findings) or None,
        }
        return pa.Table.from_pylist([row], schema=RUNS_SCHEMA)

    def tables_table(self) -> pa.Table:
        catalog = load_catalog()
        rows = []
        for table, change in sorted(self.tables.items()):
            root = table.split("__")[0]  # dlt's child tables: `<table>__<field>`
            endpoint = catalog.get(root)
            rows.append(
                {
                    "run_id": self.run_id,
                    "table_name": table,
                    "endpoint": endpoint.path if endpoint else None,
                    "strategy": endpoint.strategy if endpoint else None,
                    "synced": self.synced is None or root in self.synced,
                    "rows": change.rows,
                    "rows_written": change.rows_written,
                    "rows_removed": change.rows_removed,
                }
            )
        return pa.Table.from_pylist(rows, schema=RUN_TABLES_SCHEMA)
