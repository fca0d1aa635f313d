"""A first sync and a nightly of one simulated district into a DuckDB file or a local Delta lake, timed.

    python -m bench.lake duckdb 150      # or: python -m bench.lake delta 150

One process per warehouse (run both, alternate their order on a shared machine). The simulator runs in the same
process (its CPU counts in the process CPU time, alike for both). The night: 5 new students, 20 changed assessment
results, a revised assessment, the day advanced by one. No models (`--skip-models`): the sync alone.
"""

from __future__ import annotations

import io
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from illuminate_sync.pipelines.sync import run_sync
from illuminate_sync.simulator import Simulator, SimulatorConfig

TODAY = date(2026, 11, 27)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(kind: str, students: int) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    sim = Simulator(SimulatorConfig(students=students, seed=1, today=TODAY))
    sim.start(port=0)
    os.environ.update({name: value for name, value in sim.env().items() if "CLIENT_" not in name})
    target: dict[str, Any] = {"destination": "delta"} if kind == "delta" else {"duckdb_path": root / "w.duckdb"}
    os.environ["DESTINATION__FILESYSTEM__BUCKET_URL"] = str(root / "lake")
    try:
        for night in ("first sync", "nightly"):
            if night == "nightly":
                sim.mutate("add_students", count=5, entry_date=sim.today.isoformat())
                sim.mutate("change_assessment_result", count=20)
                sim.mutate("update_assessment")
                sim.advance_today(1)
            started, cpu_started = time.monotonic(), cpu()
            summary = run_sync(**target, today=sim.today.isoformat(), out=io.StringIO(), build_models_after=False)
            rows = sum(change.rows_after for change in summary.tables.values())
            print(
                f"{kind:6} {students} students {night:10}: {time.monotonic() - started:6.1f} s wall,"
                f" {cpu() - cpu_started:6.1f} s CPU, {summary.requests:,} requests, {rows:,} rows",
                flush=True,
            )
    finally:
        sim.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 150)
