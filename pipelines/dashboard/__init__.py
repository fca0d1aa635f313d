"""The static dashboard: `illuminate-sync dashboard --duckdb PATH --out DIR` (or `--destination NAME`).

`build_dashboard` reads the marts of a warehouse (read-only, aggregates computed in SQL: `queries.py`), hides the
cells about fewer than `min_cell_size` students (`suppression.py`), arranges them into pages (`pages.py`) and writes
HTML (`render.py`) with plotly.min.js, a stylesheet and a script into one directory: the site opens from `file://`
with no server and no network. Pages: index, attendance, assessments, enrollment, sync health.

Everything is read and rendered before the first file is written, so a failing read leaves the directory as it was;
the files are written owner-only, like the warehouse (the attendance page can list students by name).
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import duckdb
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration

from illuminate_sync.pipelines.dashboard.pages import (
    Context,
    assessments_page,
    attendance_page,
    enrollment_page,
    index_page,
    sync_page,
)
from illuminate_sync.pipelines.dashboard.queries import Marts, Reader
from illuminate_sync.pipelines.dashboard.render import ASSETS, Page, Renderer, asset
from illuminate_sync.pipelines.dashboard.suppression import DEFAULT_MIN_CELL_SIZE
from illuminate_sync.pipelines.duckdb_warehouse import is_duckdb_file
from illuminate_sync.pipelines.warehouse import Warehouse, check_dir_to_write, owner_only_umask
from illuminate_sync.sources.illuminate.errors import ConfigurationError

__all__ = [
    "DashboardConfiguration",
    "DashboardSettings",
    "build_dashboard",
    "check_out_dir",
    "check_warehouse",
    "parse_min_cell_size",
]

MIN_CELL_SIZE_VARIABLE = "DASHBOARD__MIN_CELL_SIZE"
MIN_CELL_SIZE_EXPECTED = f"a whole number of students >= 1 (default {DEFAULT_MIN_CELL_SIZE})"
GENERATOR = '<meta name="generator" content="illuminate-sync dashboard">'
"""Marks an index.html written by this command: an existing --out directory is rebuilt only if it has one."""


@dataclass(frozen=True)
class DashboardSettings:
    """The dashboard's settings: the smallest group of students a shown figure may describe."""

    min_cell_size: int = DEFAULT_MIN_CELL_SIZE

    def __post_init__(self) -> None:
        if self.min_cell_size < 1:
            raise ConfigurationError(f"--min-cell-size {self.min_cell_size}: is not {MIN_CELL_SIZE_EXPECTED}")

    @classmethod
    def resolve(cls, min_cell_size: int | None = None) -> DashboardSettings:
        """`--min-cell-size` if given, else dlt's configuration: `[dashboard] min_cell_size` in
        `.dlt/config.toml` or `DASHBOARD__MIN_CELL_SIZE` (as `ModelSettings.resolve` reads `[models]`)."""
        if min_cell_size is not None:
            return cls(min_cell_size)
        raw = resolve_configuration(DashboardConfiguration()).min_cell_size
        if raw is None or not raw.strip():
            return cls()
        try:
            value = parse_min_cell_size(raw)
        except ValueError:
            raise ConfigurationError(f"{MIN_CELL_SIZE_VARIABLE}: {raw!r} is not {MIN_CELL_SIZE_EXPECTED}") from None
        return cls(value)


@configspec
class DashboardConfiguration(BaseConfiguration):
    """`[dashboard]` in `.dlt/config.toml` or the `DASHBOARD__*` variables, as dlt resolves them.

    The text the user wrote (dlt hands a TOML number to a `str` field as its text): `10.0` is accepted, which dlt's
    int coercion refuses, and a wrong value is named as `DASHBOARD__MIN_CELL_SIZE` (`parse_min_cell_size`)."""

    min_cell_size: str | None = None

    __section__: ClassVar[str] = "dashboard"
    """Looked up under `dashboard` only, as `ModelsConfiguration` under `models`."""


def parse_min_cell_size(raw: Any) -> int:
    """A whole number >= 1 (`10`, `10.0`); anything else raises ValueError."""
    if isinstance(raw, bool):
        raise ValueError(raw)
    value = float(str(raw).strip())
    if value != int(value) or value < 1:
        raise ValueError(raw)
    return int(value)


def check_out_dir(out_dir: Path) -> None:
    """`--out DIR`: a new directory in an existing one, or a directory this command wrote before (or an empty one).

    A directory holding other files is refused rather than mixed with the site's."""
    check_dir_to_write(out_dir, "--out", "a directory for the site")
    index = out_dir / "index.html"
    if (
        out_dir.is_dir()
        and any(out_dir.iterdir())
        and not (index.is_file() and GENERATOR in index.read_text(errors="replace"))
    ):
        raise ConfigurationError(
            f"--out {out_dir}: the directory holds other files (expected a new or empty directory, or one a"
            " previous dashboard was written to)"
        )


def check_warehouse(warehouse: Warehouse, duckdb_path: Path | None) -> None:
    """Before anything is written: the warehouse opens (read-only for a DuckDB file) and holds illuminate-sync's
    tables. Raw tables without models are fine (the pages say "no data yet", and a note says how to build them); a
    database with neither is not a warehouse of this tool."""
    if duckdb_path is not None:
        if not duckdb_path.exists():
            raise ConfigurationError(f"--duckdb {duckdb_path}: no such file (expected the DuckDB file a sync loaded)")
        try:
            is_database = duckdb_path.is_file() and is_duckdb_file(duckdb_path)
        except OSError as error:
            raise ConfigurationError(f"--duckdb {duckdb_path}: cannot be read ({error.strerror})") from None
        if not is_database:
            raise ConfigurationError(
                f"--duckdb {duckdb_path}: is not a DuckDB database (expected the DuckDB file a sync loaded)"
            )
        try:
            warehouse.fetch("select 1")
        except duckdb.Error as error:
            reason = str(error).splitlines()[0][:200]
            raise ConfigurationError(
                f"--duckdb {duckdb_path}: cannot be opened read-only ({reason}); if a sync is running, wait for it"
            ) from None
    else:
        warehouse.check()
    has_models = bool(Marts(warehouse, warehouse.model_dataset).settings())
    if not has_models and not warehouse.raw_tables():
        raise ConfigurationError(
            f"{warehouse.label}: holds no illuminate-sync tables (no raw tables in {warehouse.dataset}, no models in"
            f" {warehouse.model_dataset}): sync it first with illuminate-sync run"
        )
    if not has_models:
        print(
            f"illuminate-sync: note: {warehouse.label} has no models yet (schema {warehouse.model_dataset}); the pages"
            " say no data yet. Build them with illuminate-sync models",
            file=sys.stderr,
        )


def build_dashboard(
    reader: Reader,
    model_dataset: str,
    out_dir: Path,
    settings: DashboardSettings | None = None,
    label: str = "",
) -> Path:
    """Write the site into `out_dir` from the marts of `model_dataset` read through `reader` (a warehouse's
    `fetch`); returns the path of its index.html."""
    settings = settings or DashboardSettings()
    check_out_dir(out_dir)
    files = render_site(Marts(reader, model_dataset), settings, label)
    write_site(out_dir, files)
    return out_dir / "index.html"


def render_site(marts: Marts, settings: DashboardSettings, label: str) -> dict[str, str]:
    """Every file of the site (name -> text), read and rendered in memory."""
    model_settings = marts.settings()
    context = Context(settings.min_cell_size, model_settings, marts.names_kept())
    pages: list[Page] = [
        attendance_page(
            context,
            marts.chronic_cells(),
            marts.monthly_chronic(),
            marts.absence_bins(),
            marts.chronically_absent_students() if context.names_kept else [],
        ),
        assessments_page(
            context,
            marts.assessments(),
            marts.proficiency_cells(),
            marts.band_counts(),
            marts.band_labels(),
            marts.programs(),
        ),
        enrollment_page(context, marts.enrollment_cells(), marts.weekly_moves()),
        sync_page(context, marts.sync_tables(), marts.sync_runs(), marts.last_findings()),
    ]
    index = index_page(context, pages, label)
    district = district_name(marts)
    built = model_settings.built_at.strftime("%Y-%m-%d %H:%M") if model_settings and model_settings.built_at else "—"
    renderer = Renderer(
        district=district,
        footer=f"illuminate-sync dashboard · models built {built} · cells under {settings.min_cell_size} students"
        " suppressed",
        pages=[(page.file_name, page.title) for page in [index, *pages]],
    )
    files = {page.file_name: renderer.page(page) for page in [index, *pages]}
    files |= {name: asset(name) for name in ASSETS}
    files["plotly.min.js"] = plotly_js()
    return files


def district_name(marts: Marts) -> str:
    rows = marts.rows("select site_name from {dim_sites} where is_district order by site_id limit 1")
    return str(rows[0][0]) if rows and rows[0][0] else "District dashboard"


def plotly_js() -> str:
    """plotly.js as bundled in the plotly package (the site must not load it from a CDN: it opens offline)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def write_site(out_dir: Path, files: dict[str, str]) -> None:
    """Each file written whole (to a temporary name, then renamed), owner-only."""
    with owner_only_umask():
        out_dir.mkdir(exist_ok=True)
        for name, content in files.items():
            handle, temporary = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    stream.write(content)
                os.replace(temporary, out_dir / name)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
