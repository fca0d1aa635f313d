"""The `illuminate-sync` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from dlt.common.configuration.exceptions import ConfigurationException

from illuminate_sync.pipelines.cli_base import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    OneLineParser,
    positive_int,
)
from illuminate_sync.pipelines.duckdb_settings import out_of_memory_message
from illuminate_sync.pipelines.writeback import add_writeback_commands, run_writeback_command
from illuminate_sync.sources.illuminate.catalog import OFF_DESCRIPTION, STRATEGY_DESCRIPTIONS, load_catalog
from illuminate_sync.sources.illuminate.errors import ConfigurationError, IlluminateError
from illuminate_sync.sources.illuminate.privacy import PII_MODES
from illuminate_sync.sources.illuminate.setting_rules import is_time_zone


def academic_year(text: str) -> int:
    """`--academic-year` values: the ending year, `2027` (also `2026-27` / `2026-2027`)."""
    value = text.strip()
    if "-" in value:
        first, _, last = value.partition("-")
        if first.isdigit() and last.isdigit() and len(first) == 4:
            ending = int(last) if len(last) == 4 else int(first[:2] + last)
            if ending == int(first) + 1:
                return ending
    elif value.isdigit() and len(value) == 4:
        return int(value)
    raise argparse.ArgumentTypeError(
        f"{text!r} is not an academic year: give the ending year as YYYY (2027 means 2026-27)"
    )


def resource_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def min_cell_size(text: str) -> int:
    from illuminate_sync.pipelines.dashboard import MIN_CELL_SIZE_EXPECTED, parse_min_cell_size

    try:
        return parse_min_cell_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {MIN_CELL_SIZE_EXPECTED}") from None


def time_zone(text: str) -> str:
    """An IANA zone name (`America/Chicago`)."""
    if not is_time_zone(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a time zone: use an IANA name such as America/Chicago")
    return text


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value > 0 and value != float("inf"):
        return value
    raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")


def instance_name(text: str) -> str:
    """`--instance` values: a name declared under `[sources.illuminate.instances.<name>]` (checked when the run
    resolves it); here only its form, which becomes schema names."""
    from illuminate_sync.sources.illuminate.instances import check_instance_name

    try:
        check_instance_name(text)
    except ConfigurationError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--instance ")) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="illuminate-sync", description="Sync Illuminate Education data into DuckDB.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = commands.add_parser("run", help="sync the instance configured in .dlt/ or SOURCES__ILLUMINATE__* variables")
    _add_sync_arguments(run, duckdb_required=True)
    which = run.add_mutually_exclusive_group()
    which.add_argument(
        "--instance",
        type=instance_name,
        default=None,
        help="sync named instance NAME, declared under [sources.illuminate.instances.NAME] or"
        " SOURCES__ILLUMINATE__INSTANCES__NAME__*, into dataset illuminate_NAME (models in analytics_NAME)",
    )
    which.add_argument(
        "--all-instances",
        action="store_true",
        help="sync every declared instance at the same time, each into its own dataset, within"
        " SOURCES__ILLUMINATE__NETWORK_MAX_CONCURRENCY requests in flight together",
    )

    demo = commands.add_parser("demo", help="start the built-in simulated district and sync it")
    _add_sync_arguments(demo, duckdb_required=False)
    demo.add_argument("--students", type=int, default=600, help="size of the simulated district (default 600)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the simulated district (default 1)")

    simulator = commands.add_parser("simulator", help="serve a simulated Illuminate instance on 127.0.0.1")
    simulator.add_argument("--port", type=int, default=8800)
    simulator.add_argument("--students", type=int, default=1000)
    simulator.add_argument("--seed", type=int, default=1)
    simulator.add_argument("--today", type=iso_date, default=None, help="the simulated today (default: real date)")
    simulator.add_argument("--attendance-mode", choices=["all", "exceptions"], default="all")
    simulator.add_argument("--token-lifetime", type=int, default=3600, help="OAuth2 token lifetime in seconds")
    simulator.add_argument("--html-auth-failures", action="store_true", help="answer auth failures with a 200 page")
    simulator.add_argument("--latency", type=float, default=0.0, help="added seconds per request (a distant API)")
    simulator.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="API requests served at once, the rest queue (default: no limit)",
    )
    simulator.add_argument(
        "--rate-limit", type=positive_number, default=None, help="API requests per second before 429 (default: none)"
    )
    simulator.add_argument(
        "--timezone",
        type=time_zone,
        default=None,
        help="the zone of the server's clock: its timestamps and modified_after (default America/Los_Angeles)",
    )

    models = commands.add_parser("models", help="rebuild the SQL models in schema analytics (and test them)")
    _add_warehouse_arguments(models, required=True, duckdb_help="the DuckDB file a sync loaded")
    models.add_argument("--test", action="store_true", help="also run the model tests; exit 1 if one fails")
    models.add_argument(
        "--network",
        action="store_true",
        help="build schema analytics from the models of every declared instance (analytics_NAME), each table with a"
        " leading instance column; with --test, test the network keys",
    )

    dashboard = commands.add_parser(
        "dashboard", help="write a static dashboard (HTML, opens offline) of the marts into a directory"
    )
    _add_warehouse_arguments(dashboard, required=True, duckdb_help="the DuckDB file a sync loaded (opened read-only)")
    dashboard.add_argument("--out", type=Path, required=True, help="the site's directory (its parent must exist)")
    dashboard.add_argument(
        "--min-cell-size",
        type=min_cell_size,
        default=None,
        help="suppress figures about fewer students than this (default 10, or DASHBOARD__MIN_CELL_SIZE)",
    )

    commands.add_parser("endpoints", help="print the endpoint / table / key / strategy table (markdown)")
    add_writeback_commands(commands)
    return parser


def _add_warehouse_arguments(parser: argparse.ArgumentParser, required: bool, duckdb_help: str) -> None:
    """`--duckdb PATH` or `--destination NAME [--dataset NAME]`: where the raw tables and the models are."""
    where = parser.add_mutually_exclusive_group(required=required)
    where.add_argument("--duckdb", type=Path, default=None, help=duckdb_help)
    where.add_argument(
        "--destination",
        default=None,
        help="a dlt destination instead of a DuckDB file: postgres (verified), motherduck, bigquery, snowflake,"
        " redshift; credentials from DESTINATION__<NAME>__CREDENTIALS or .dlt/secrets.toml; or delta: Delta tables"
        " under DESTINATION__FILESYSTEM__BUCKET_URL (a directory or an object store; pip install"
        " 'illuminate-sync[lake]')",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="the raw tables' dataset (schema of a DuckDB file; default illuminate): the models go to analytics"
        " beside illuminate, analytics_<name> beside illuminate_<name>, else <dataset>_analytics",
    )


def _add_sync_arguments(parser: argparse.ArgumentParser, duckdb_required: bool) -> None:
    _add_warehouse_arguments(
        parser,
        required=duckdb_required,
        duckdb_help="the DuckDB file to load into (created if missing; its directory must exist)"
        + ("" if duckdb_required else "; default demo.duckdb"),
    )
    parser.add_argument("--resources", type=resource_list, default=None, help="comma-separated tables to sync")
    parser.add_argument(
        "--academic-year",
        dest="academic_years",
        type=academic_year,
        action="append",
        default=None,
        help="academic year to sync (ending year, repeatable); default: the current and the previous one",
    )
    parser.add_argument("--full-refresh", action="store_true", help="refetch everything selected, ignoring cursors")
    parser.add_argument("--reconcile", action="store_true", help="compare assessment aggregates with the API's counts")
    parser.add_argument(
        "--allow-shrink", action="store_true", help="load a refetch even if it holds far fewer rows than the table"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="dlt's working directory (default: beside the file)"
    )
    parser.add_argument(
        "--pii",
        choices=PII_MODES,
        default=None,
        help="direct identifiers: keep (default), hash (keyed, needs SOURCES__ILLUMINATE__PII_HASH_KEY) or exclude",
    )
    parser.add_argument("--skip-models", action="store_true", help="do not rebuild the SQL models after the sync")
    parser.add_argument("--verbose", action="store_true", help="log retries and requests")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "instance", None) is not None and args.dataset is not None:
        parser.error(f"--instance {args.instance} goes without --dataset (its dataset is illuminate_{args.instance})")
    if getattr(args, "all_instances", False) and args.dataset is not None:
        parser.error("--all-instances goes without --dataset (each instance's dataset is illuminate_<name>)")
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        result = run_writeback_command(args)
        if result is not None:
            return result
        if args.command == "run":
            return command_run(args)
        if args.command == "demo":
            return command_demo(args)
        if args.command == "simulator":
            return command_simulator(args)
        if args.command == "models":
            return command_models(args)
        if args.command == "dashboard":
            return command_dashboard(args)
        if args.command == "endpoints":
            print(endpoint_table())
            return EXIT_OK
    except IlluminateError as error:
        print(f"illuminate-sync: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ConfigurationException as error:  # a settings file or value dlt could not read, whichever command read it
        from illuminate_sync.pipelines.sync import configuration_error

        print(f"illuminate-sync: error: {configuration_error(error)}", file=sys.stderr)
        return EXIT_FAILED
    except duckdb.OutOfMemoryException:
        print(f"illuminate-sync: error: {out_of_memory_message('writing the warehouse')}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("illuminate-sync: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_USAGE


def command_run(args: argparse.Namespace, **source_options: object) -> int:
    from illuminate_sync.pipelines.sync import run_sync

    if args.pii is not None:
        source_options["pii"] = args.pii
    if getattr(args, "all_instances", False):  # `run` only
        return command_run_all_instances(args, **source_options)
    instance = getattr(args, "instance", None)  # `run` only
    duckdb_path = args.duckdb
    if duckdb_path is None and args.destination is None:
        duckdb_path = Path("demo.duckdb")  # `demo` without a warehouse
    summary = run_sync(
        duckdb_path,
        destination=args.destination,
        dataset=args.dataset,
        instance=instance,
        data_dir=args.data_dir,
        **sync_options(args),
        **source_options,
    )
    print(summary.render())
    return EXIT_OK


def sync_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of `run` (and `demo`) that every sync takes, single instance or all of them."""
    return {
        "resources": args.resources,
        "academic_years": args.academic_years,
        "full_refresh": args.full_refresh,
        "reconcile": args.reconcile,
        "allow_shrink": args.allow_shrink,
        "build_models_after": not args.skip_models,
    }


def command_run_all_instances(args: argparse.Namespace, **source_options: object) -> int:
    """`run --all-instances`: each instance's summary table, then one line per instance; exit 1 naming the failed."""
    from illuminate_sync.pipelines.all_instances import run_all_instances

    network = run_all_instances(
        duckdb_path=args.duckdb,
        destination=args.destination,
        **sync_options(args),
        out=sys.stderr,  # the stream of the moment (a caller may have redirected it), not the default's
        **source_options,
    )
    for outcome in network.outcomes:
        if outcome.summary is not None:
            print(f"instance {outcome.name} ({outcome.dataset}):\n{outcome.summary.render()}\n")
    print(network.render())
    if network.network_failed:
        print(f"illuminate-sync: error: the network models failed: {network.network_models}", file=sys.stderr)
    if network.failed:
        print(
            f"illuminate-sync: error: {len(network.failed)} of {len(network.outcomes)} instances failed:"
            f" {', '.join(network.failed)} (the others are loaded; run --instance NAME to retry one)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_FAILED if network.network_failed else EXIT_OK


def command_models(args: argparse.Namespace) -> int:
    from illuminate_sync.pipelines.models import ModelSettings
    from illuminate_sync.pipelines.warehouse import open_warehouse

    if args.duckdb is not None and not args.duckdb.is_file():
        raise ConfigurationError(f"--duckdb {args.duckdb}: no such file (expected the DuckDB file a sync loaded)")
    if args.network:
        failures = network_models(args)
        if failures is None:
            return EXIT_OK
    else:
        warehouse = open_warehouse(args.duckdb, args.destination, args.dataset)
        warehouse.check()
        warehouse.check_models()
        settings = ModelSettings.resolve()
        with warehouse.lock():
            warehouse.build_models(settings, out=sys.stderr)
            if not args.test:
                return EXIT_OK
            failures = warehouse.test_models()
    for failure in failures:
        print(f"model test failed: {failure}", file=sys.stderr)
    print(f"model tests: {len(failures)} failed" if failures else "model tests: all passed", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def network_models(args: argparse.Namespace) -> list[str] | None:
    """`models --network`: the network schema built from every declared instance's models (and tested with
    `--test`: the failures, else None)."""
    from illuminate_sync.pipelines.warehouse import open_warehouse
    from illuminate_sync.sources.illuminate.instances import declared_instances

    if args.dataset is not None:
        raise ConfigurationError(
            f"--network with --dataset {args.dataset}: the network reads every instance's analytics_<name>"
            " (drop --dataset)"
        )
    instances = declared_instances()
    if not instances:
        raise ConfigurationError(
            "--network: no instances are declared: declare each under [sources.illuminate.instances.<name>]"
            " (or SOURCES__ILLUMINATE__INSTANCES__<NAME>__*) and sync it with `illuminate-sync run --instance NAME`"
        )
    warehouse = open_warehouse(args.duckdb, args.destination)
    warehouse.check()
    with warehouse.lock():
        warehouse.build_network_models(instances, out=sys.stderr)  # its progress, then its line
        return warehouse.test_network_models() if args.test else None


def command_dashboard(args: argparse.Namespace) -> int:
    path = build_dashboard_of(args.duckdb, args.destination, args.dataset, args.out, args.min_cell_size)
    print(f"dashboard: {path}")
    return EXIT_OK


def build_dashboard_of(
    duckdb_path: Path | None, destination: str | None, dataset: str | None, out: Path, cell_size: int | None = None
) -> Path:
    """The dashboard of a warehouse, after checking the warehouse, the settings and the output directory."""
    from illuminate_sync.pipelines.dashboard import DashboardSettings, build_dashboard, check_out_dir, check_warehouse
    from illuminate_sync.pipelines.warehouse import open_warehouse

    settings = DashboardSettings.resolve(cell_size)
    check_out_dir(out)
    warehouse = open_warehouse(duckdb_path, destination, dataset)
    try:
        check_warehouse(warehouse, duckdb_path)
        return build_dashboard(warehouse, warehouse.model_dataset, out, settings, label=warehouse.label)
    finally:
        warehouse.close()


def command_demo(args: argparse.Namespace) -> int:
    from illuminate_sync.simulator import Simulator, SimulatorConfig

    config = SimulatorConfig(students=args.students, seed=args.seed)
    simulator = Simulator(config)
    simulator.start(port=0)
    try:
        print(f"simulated district ({args.students} students) serving at {simulator.base_url}", file=sys.stderr)
        os.environ.update(simulator.env())
        result = command_run(args, today=simulator.today.isoformat())
    finally:
        simulator.stop()
    if result == EXIT_OK and not args.skip_models:
        out = demo_dashboard_dir(args.duckdb, args.destination)
        duckdb_path = None if args.destination else (args.duckdb or Path("demo.duckdb"))
        path = build_dashboard_of(duckdb_path, args.destination, args.dataset, out)
        print(f"dashboard: {path}")
    return result


def demo_dashboard_dir(duckdb_path: Path | None, destination: str | None) -> Path:
    """`demo`'s dashboard: beside the demo file (`demo.duckdb` -> `demo-dashboard/`), or `demo-dashboard/` here."""
    if destination is not None:
        return Path("demo-dashboard")
    path = duckdb_path or Path("demo.duckdb")
    return path.with_name(f"{path.stem}-dashboard")


def command_simulator(args: argparse.Namespace) -> int:
    from illuminate_sync.simulator import SimulatorConfig
    from illuminate_sync.simulator.server import serve_forever

    options = {
        "students": args.students,
        "seed": args.seed,
        "attendance_mode": args.attendance_mode,
        "token_lifetime": args.token_lifetime,
        "html_auth_failures": args.html_auth_failures,
        "latency": args.latency,
        "workers": args.workers,
        "rate_limit": args.rate_limit,
    }
    if args.timezone is not None:
        options["timezone"] = args.timezone
    if args.today is not None:
        options["today"] = args.today
    serve_forever(SimulatorConfig(**options), args.port)  # type: ignore[arg-type]
    return EXIT_OK


def endpoint_table() -> str:
    """The README's strategy table, generated from the catalog."""
    lines = ["| endpoint | table | key | strategy |", "|---|---|---|---|"]
    for endpoint in load_catalog().values():
        key = ", ".join(endpoint.primary_key)
        strategy = STRATEGY_DESCRIPTIONS[endpoint.strategy]
        if not endpoint.enabled:
            strategy += f"; {OFF_DESCRIPTION}"
        if endpoint.iterate:
            strategy += f" (one request window per {endpoint.iterate})"
        if endpoint.refresh_setting:
            strategy += f"; the current year every `{endpoint.refresh_setting}`"
        lines.append(f"| `{endpoint.path}` | `{endpoint.table}` | {key} | {strategy} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
