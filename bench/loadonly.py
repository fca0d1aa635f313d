"""Loading alone: already downloaded pages of the largest tables, parsed, converted and loaded into a new DuckDB file
or a PostgreSQL database.

Usage: python -m bench.loadonly REQUEST_LOG.jsonl WORK_DIR MAX_ROWS [--destination postgres] [--format insert_values]
(the simulator's env lines in the environment; for postgres DESTINATION__POSTGRES__CREDENTIALS, an empty database)

Untimed: the pages the sync requested for the largest tables (attendance, gradebook scores) are downloaded again
into memory as raw bodies, up to MAX_ROWS rows in all. Timed, in the sync's own code: parsing (a `PageDecoder` per
table, as the client does: Arrow's JSON reader after the first page) and `RowConverter.to_table` per page, in a
pool of one thread per core as the client's page pool does (their sums of thread CPU time, and the wall time of
both: `parse_convert_wall`); the sync's de-duplication (`KeyFilter`), `rebatch`, and a dlt pipeline made by
`pipelines.sync.make_pipeline` with the write dispositions, merge keys and column hints of the sync's resources in a
first sync (appending into empty tables), the warehouse's loader file format (`parquet` for DuckDB, `csv`, i.e.
COPY, for PostgreSQL; `--format` to compare another), extract, normalize and load (DuckDB on one connection, as the
sync loads; PostgreSQL by dlt's load step, as the sync loads it) timed separately. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.json import json as dlt_json
from dlt.extract import DltResource

from bench.common import (
    LoggedRequest,
    RssSampler,
    api_root,
    http_session,
    oauth1_signer,
    read_request_log,
    self_peak_rss_mb,
)
from illuminate_sync.pipelines.memory import hold_less_memory
from illuminate_sync.pipelines.sync import make_pipeline
from illuminate_sync.pipelines.warehouse import Warehouse, open_warehouse
from illuminate_sync.sources.illuminate.catalog import Endpoint, load_catalog
from illuminate_sync.sources.illuminate.convert import RowConverter
from illuminate_sync.sources.illuminate.resources import KeyFilter, appending, column_hints, deleted_hint, rebatch
from illuminate_sync.sources.illuminate.settings import DELETED_COLUMN, SLICE_YEAR_COLUMN
from illuminate_sync.sources.illuminate.wire import PageDecoder, WirePage

TABLES = ("attendance_section", "attendance_daily", "gradebook_scores")


def academic_year_of(day: str) -> int:
    parsed = date.fromisoformat(day)
    return parsed.year + 1 if parsed.month >= 7 else parsed.year


def resource_for(endpoint: Endpoint, tables: list[pa.Table]) -> DltResource:
    """A resource configured like the sync's resource of this endpoint's strategy, in a first sync."""
    if endpoint.strategy == "attendance_date":
        options: dict[str, Any] = {"merge_key": "date", "columns": {**column_hints(endpoint), **deleted_hint()}}
    else:
        options = {
            "merge_key": SLICE_YEAR_COLUMN,
            "columns": {**column_hints(endpoint, extra_columns(endpoint)), **deleted_hint()},
        }

    def items() -> Iterator[Any]:
        yield dlt.mark.materialize_table_schema()
        yield from rebatch(tables)

    merging = dlt.resource(
        items, name=endpoint.table, write_disposition={"disposition": "merge", "strategy": "delete-insert"}, **options
    )
    return appending(merging)  # the sync appends into a table that is still empty (this file is new)


def extra_columns(endpoint: Endpoint) -> dict[str, str]:
    """The columns the sync adds to an endpoint's rows (`resources.academic_year_slice_resource`): the year slice and
    the request's window columns (a gradebook's `_session_type`, part of its key), and the deletion flag."""
    if endpoint.strategy == "attendance_date":
        return {DELETED_COLUMN: "bool"}
    return {SLICE_YEAR_COLUMN: "bigint", DELETED_COLUMN: "bool", **dict.fromkeys(endpoint.window_columns, "text")}


def parsed_and_converted(
    decode: PageDecoder, converter: RowConverter, page: tuple[LoggedRequest, bytes]
) -> tuple[pa.Table, float, float]:
    """One page decoded and converted as the sync does it, with the thread CPU seconds of each step."""
    item, body = page
    started = time.thread_time()
    answer = decode(body)
    rows = answer.records if isinstance(answer, WirePage) else answer.get("results") or []
    decoded = time.thread_time()
    endpoint = converter.endpoint
    constants = (
        {}
        if endpoint.strategy == "attendance_date"
        else {
            SLICE_YEAR_COLUMN: academic_year_of(item.params["date"]),
            **{column: item.params.get(parameter) for column, parameter in endpoint.window_columns.items()},
        }
    )
    return converter.to_table(rows, constants), decoded - started, time.thread_time() - decoded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadonly")
    parser.add_argument("request_log", type=Path)
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("max_rows", type=int)
    parser.add_argument("--destination", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--format", default=None, help="dlt's loader file format (default: the warehouse's)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    log_path, work_dir, max_rows = args.request_log, args.work_dir, args.max_rows
    hold_less_memory()  # the sync's allocator settings (run_sync makes them before it starts)
    catalog = load_catalog()
    by_path = {endpoint.url_path().strip("/"): endpoint for endpoint in catalog.values() if endpoint.table in TABLES}
    wanted: dict[str, list[LoggedRequest]] = {table: [] for table in TABLES}
    for item in read_request_log(log_path):
        endpoint = by_path.get(item.path.strip("/"))
        if endpoint is not None and item.status == 200:
            wanted[endpoint.table].append(item)

    env = dict(os.environ)
    root, signer, session = api_root(env), oauth1_signer(env), http_session(8)

    def download(item: LoggedRequest) -> bytes:
        response = session.get(root + item.path, params=item.params, auth=signer, timeout=120)
        response.raise_for_status()
        return response.content

    # untimed: raw pages, up to an equal share of MAX_ROWS per table (estimated from the first page's size)
    pages: dict[str, list[tuple[LoggedRequest, bytes]]] = {}
    with ThreadPoolExecutor(8) as pool:
        for table, items in wanted.items():
            share, got, fetched = max_rows // len(TABLES), 0, []
            position = 0
            while got < share and position < len(items):
                batch = items[position : position + 16]
                position += len(batch)
                for item, body in zip(batch, pool.map(download, batch)):
                    fetched.append((item, body))
                    got += len(dlt_json.loadb(body).get("results") or [])
            pages[table] = fetched

    # parse and convert: CPU seconds of the threads; parse_convert_wall: wall time of both, in a pool of one thread
    # per core as the client's page pool does (Arrow's JSON reader and kernels run without the GIL)
    timings: dict[str, float] = {"parse": 0.0, "convert": 0.0, "parse_convert_wall": 0.0, "dedupe": 0.0}
    converted: dict[str, list[pa.Table]] = {}
    rows_by_table: dict[str, int] = {}
    with ThreadPoolExecutor(os.cpu_count() or 2) as workers:
        for table, fetched in pages.items():
            endpoint = catalog[table]
            converter = RowConverter(endpoint, extra_columns(endpoint))  # type: ignore[arg-type]
            unique = KeyFilter(endpoint)
            parse_and_convert = partial(parsed_and_converted, PageDecoder(), converter)
            started = time.perf_counter()
            # the first page alone (it teaches the decoder the wire types, as page 1 of a window does in the sync)
            out_parts = [parse_and_convert(fetched[0]), *workers.map(parse_and_convert, fetched[1:])]
            timings["parse_convert_wall"] += time.perf_counter() - started
            out = [page_table for page_table, _, _ in out_parts]
            timings["parse"] += sum(parse for _, parse, _ in out_parts)
            timings["convert"] += sum(convert for _, _, convert in out_parts)
            t2 = time.perf_counter()
            out = unique(out)  # the sync calls it once per request window; here once for the whole sample
            timings["dedupe"] += time.perf_counter() - t2
            converted[table] = out
            rows_by_table[table] = sum(t.num_rows for t in out)
            del fetched
    pages.clear()

    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    if args.destination == "duckdb":
        warehouse = open_warehouse(duckdb_path=work_dir / "load.duckdb", data_dir=work_dir / "dlt")
    else:
        warehouse = open_warehouse(destination=args.destination, data_dir=work_dir / "dlt")
    file_format = args.format or warehouse.file_format
    pipeline = make_pipeline(warehouse)
    resources = [resource_for(catalog[table], tables) for table, tables in converted.items()]
    sampler = RssSampler(0.1)
    sampler.start()
    before_dlt = sampler.current()
    t0 = time.perf_counter()
    pipeline.extract(resources, loader_file_format=file_format)  # type: ignore[arg-type]
    t1 = time.perf_counter()
    pipeline.normalize()
    t2 = time.perf_counter()
    info = warehouse.load(pipeline)  # DuckDB: `load_on_one_connection`, as the sync loads
    t3 = time.perf_counter()
    warehouse.close()
    if info.has_failed_jobs:
        raise SystemExit(f"loading into {warehouse.kind} failed: {info}")
    loaded = {table: warehouse_rows(warehouse, table) for table in rows_by_table}
    if loaded != rows_by_table:
        raise SystemExit(f"the {warehouse.kind} tables hold {loaded} rows, the sample {rows_by_table}")
    sampler.stopped.set()
    sampler.join()
    # RSS growth of each dlt step above what the process held before it (the converted tables, the raw pages)
    rss_growth = {
        step: round(sampler.peak(start, end) - before_dlt, 1)
        for step, start, end in (("extract", t0, t1), ("normalize", t1, t2), ("load", t2, t3))
    }
    timings.update({"extract": t1 - t0, "normalize": t2 - t1, "load": t3 - t2})
    rows = sum(rows_by_table.values())
    dlt_total = t3 - t0
    convert_total = timings["parse_convert_wall"] + timings["dedupe"]
    result = {
        "destination": args.destination,
        "file_format": file_format,
        "rows": rows,
        "rows_by_table": rows_by_table,
        "seconds": {key: round(value, 3) for key, value in timings.items()},
        "rows_per_s": {
            "parse": rows / timings["parse"] if timings["parse"] else None,
            "convert": rows / timings["convert"] if timings["convert"] else None,
            "dedupe": rows / timings["dedupe"] if timings["dedupe"] else None,
            "extract": rows / timings["extract"],
            "load": rows / timings["load"],
            "dlt_extract_normalize_load": rows / dlt_total,
            "loading_alone": rows / (convert_total + dlt_total),
        },
        "peak_rss_mb": self_peak_rss_mb(),
        "rss_before_dlt_mb": round(before_dlt, 1),
        "rss_growth_per_dlt_step_mb": rss_growth,
    }
    print(json.dumps(result))
    return 0


def warehouse_rows(warehouse: Warehouse, table: str) -> int:
    """Rows of `table` in the warehouse after the load (the sample's rows must all be there)."""
    try:
        return warehouse.count(table)
    finally:
        warehouse.close()


if __name__ == "__main__":
    raise SystemExit(main())
