"""Run the benchmark: simulator in its own process, then floor, today's practice, full and nightly sync, loading alone.

    python -m bench.run --students 20000 --latency 0.05 --concurrency 8 [--profile] [--destinations duckdb,postgres]

With `--destinations duckdb,postgres` the full and nightly syncs and loading alone also run into PostgreSQL (a
throwaway cluster with the server's default settings, a fresh database per scenario), beside DuckDB's, and loading
alone also with dlt's default `insert_values` format into PostgreSQL, the reference COPY has to beat.

See bench/README.md. Results go to bench/results/<name>.json and the tables in bench/README.md are regenerated.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from bench.common import CLK_TCK, PREFIX, ChildResult, process_cpu_seconds, process_rss_mb, read_request_log, run_child
from bench.postgres import CREDENTIALS_VARIABLE, PostgresCluster, bench_cluster, fresh_database, server_cpu_seconds
from bench.postgres import settings as postgres_settings
from bench.profile import SIMULATOR_RULES, SYNC_RULES, summarise
from bench.report import render_readme

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
PY_SPY_RATE = 100
PROGRESS = re.compile(r"^\s+(\w+): ([\d,]+) windows, ([\d,]+) pages, ([\d,]+) rows, ([\d.]+) s$")
SUMMARY = re.compile(r"^(\w+)\s+([\d,]+)\s+([\d,]+)\s+(-?[\d,]+)\s+([+-]?[\d,]+)$")
DESTINATIONS = ("duckdb", "postgres")
LOADING_ALONE = {
    # results key: (destination, dlt loader file format; None = the warehouse's own: parquet for DuckDB, csv for PG)
    "loading_alone": ("duckdb", None),
    "loading_alone_postgres": ("postgres", None),
    "loading_alone_postgres_insert_values": ("postgres", "insert_values"),
}


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SimulatorProcess:
    """`illuminate-sync simulator` in its own process, with its control API."""

    def __init__(self, students: int, seed: int, latency: float, today: date, log_dir: Path) -> None:
        self.port = free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stderr = (log_dir / "simulator.stderr").open("wb")
        argv = [
            str(VENV_BIN / "illuminate-sync"),
            "simulator",
            "--port",
            str(self.port),
            "--students",
            str(students),
            "--seed",
            str(seed),
            "--latency",
            str(latency),
            "--today",
            today.isoformat(),
        ]
        started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.env: dict[str, str] = {}
        assert self.proc.stdout is not None
        while len(self.env) < 7:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the simulator exited (code {self.proc.poll()}); see {log_dir}/simulator.stderr")
            name, _, value = line.strip().partition("=")
            if name.startswith(PREFIX):
                self.env[name] = value
        self.startup_s = time.monotonic() - started
        self.control = f"http://127.0.0.1:{self.port}/_control/"

    def call(self, action: str, payload: dict[str, Any] | None = None, method: str = "POST") -> Any:
        data = json.dumps(payload or {}).encode() if method == "POST" else None
        request = urllib.request.Request(
            self.control + action, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read() or b"null")

    def requests(self) -> dict[str, int]:
        counts: dict[str, int] = self.call("requests", method="GET")
        return counts

    def reset(self) -> None:
        self.call("requests/reset")

    def cpu_s(self) -> float:
        return process_cpu_seconds(self.proc.pid)

    def rss_mb(self) -> float:
        return process_rss_mb(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.stderr.close()


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine have used since boot (user, nice, system, irq, softirq, steal)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]) / CLK_TCK


def sync_env(sim: SimulatorProcess, today: str, concurrency: int) -> dict[str, str]:
    """The environment of a sync: the simulator's OAuth1 keys only (a client id would switch to OAuth2)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    env.update({k: v for k, v in sim.env.items() if "CLIENT_" not in k})
    env[f"{PREFIX}TODAY"] = today
    env[f"{PREFIX}MAX_CONCURRENCY"] = str(concurrency)
    return env


def rss_profile(request_log: Path) -> dict[str, Any]:
    """The sync's RSS peaks while downloading and after the last request (written by bench.sync_child)."""
    path = Path(f"{request_log}.rss.json")
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return {key: value for key, value in data.items() if key != "timeline"}


def parse_sync_output(result: ChildResult) -> dict[str, Any]:
    received = windows = pages = 0
    per_table: dict[str, dict[str, Any]] = {}
    for line in result.stderr.splitlines():
        match = PROGRESS.match(line)
        if match:
            table = match.group(1)
            w, p, r = (int(match.group(i).replace(",", "")) for i in (2, 3, 4))
            windows, pages, received = windows + w, pages + p, received + r
            per_table[table] = {"windows": w, "pages": p, "rows_received": r, "elapsed_s": float(match.group(5))}
    rows_total = rows_written = 0
    for line in result.stdout.splitlines():
        match = SUMMARY.match(line)
        if match and "__" not in match.group(1):  # child tables of the View documents are not API rows
            rows_total += int(match.group(2).replace(",", ""))
            rows_written += int(match.group(3).replace(",", ""))
            per_table.setdefault(match.group(1), {})["rows_after"] = int(match.group(2).replace(",", ""))
    reported = re.search(r"([\d,]+) requests \(([\d,]+) retried\) in ([\d.]+) s", result.stdout)
    models = re.search(r"built (\d+) models .* in ([\d.]+) s", result.stdout + result.stderr)
    return {
        "rows_received": received,
        "rows_in_tables": rows_total,
        "rows_written": rows_written,
        "windows": windows,
        "pages": pages,
        "client_requests": int(reported.group(1).replace(",", "")) if reported else None,
        "retries": int(reported.group(2).replace(",", "")) if reported else None,
        "sync_reported_s": float(reported.group(3)) if reported else None,
        "models_built": int(models.group(1)) if models else None,
        "models_s": float(models.group(2)) if models else None,
        "per_table": per_table,
    }


def scenario(
    result: ChildResult, requests: int, rows: int, sim_cpu: float, other_cpu: float, **extra: Any
) -> dict[str, Any]:
    if result.returncode != 0:
        log(f"scenario failed ({result.returncode}): {' '.join(result.argv)}\n{result.stderr[-2000:]}")
    return {
        "ok": result.returncode == 0 and not result.timed_out,
        "wall_s": round(result.wall_s, 2),
        "requests": requests,
        "rows": rows,
        "rows_per_s": round(rows / result.wall_s) if result.wall_s else None,
        "peak_rss_mb": round(result.max_rss_mb, 1),
        "cpu_s": round(result.cpu_s, 2),
        "cpu_share_of_2_cores": round(result.cpu_s / result.wall_s / (os.cpu_count() or 1), 3),
        "simulator_cpu_s": round(sim_cpu, 2),
        "simulator_cpu_share": round(sim_cpu / result.wall_s / (os.cpu_count() or 1), 3),
        # CPU used meanwhile by everything else on the machine (other jobs distort the figures when this is large)
        "other_processes_cpu_s": round(other_cpu, 1),
        **extra,
    }


def source_state() -> dict[str, Any]:
    """Which code was measured: the commit, the uncommitted source files and a hash of the source tree's content."""
    root = BENCH_DIR.parent

    def git(*command: str) -> str:
        try:
            done = subprocess.run(["git", *command], cwd=root, capture_output=True, text=True, timeout=30)
            return done.stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    files = sorted(
        f
        for d in ("sources", "pipelines", "simulator", "sql")
        for f in (root / d).rglob("*")
        if f.is_file() and f.suffix in (".py", ".toml", ".sql")
    )
    digest = hashlib.sha1()
    for f in files:
        digest.update(f.read_bytes())
    dirty = git("status", "--porcelain", "--", "sources", "pipelines", "simulator", "sql").splitlines()
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted": [line[3:] for line in dirty],
        "tree_sha1": digest.hexdigest()[:12],
    }


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--students", type=int, default=20000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per request by the simulator")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--today", type=date.fromisoformat, default=date(2026, 11, 27))
    parser.add_argument("--load-rows", type=int, default=600_000, help="rows of the loading-alone sample")
    parser.add_argument("--skip", default="", help="comma-separated scenarios to skip: practice,nightly,load")
    parser.add_argument(
        "--destinations",
        default="duckdb",
        help="comma-separated warehouses of the full and nightly syncs and loading alone: duckdb (always), postgres",
    )
    parser.add_argument(
        "--skip-models",
        action="store_true",
        help="syncs without the SQL models (implied with postgres when pipelines/models_postgres.py is missing)",
    )
    parser.add_argument(
        "--baseline", type=Path, default=None, help="an earlier results JSON: its DuckDB full sync against this run's"
    )
    parser.add_argument("--profile", action="store_true", help="also profile a full sync and the simulator (py-spy)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per scenario before it is killed")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/illuminate-bench"))
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--name", default=None, help="results file name (default: students-latency-concurrency)")
    args = parser.parse_args(argv)
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    destinations = [name.strip() for name in args.destinations.split(",") if name.strip()]
    unknown = [name for name in destinations if name not in DESTINATIONS]
    if unknown or "duckdb" not in destinations:
        parser.error(f"--destinations: duckdb and optionally postgres (got {args.destinations})")
    postgres = "postgres" in destinations
    models_note = None
    if args.skip_models:
        models_note = "skipped (--skip-models)"
    elif postgres and importlib.util.find_spec("illuminate_sync.pipelines.models_postgres") is None:
        # DuckDB's and PostgreSQL's full syncs compare only if both build the models or neither does
        models_note = "skipped in every sync of this run: pipelines/models_postgres.py is not in this code"
    skip_models = models_note is not None
    default_name = f"s{args.students}-l{int(args.latency * 1000)}ms-c{args.concurrency}" + ("-pg" if postgres else "")
    name = args.name or default_name
    baseline = baseline_summary(args.baseline) if args.baseline else None
    if baseline and (baseline["students"], baseline["latency_s"], baseline["concurrency"]) != (
        args.students,
        args.latency,
        args.concurrency,
    ):
        parser.error(f"--baseline {args.baseline}: another district size, latency or concurrency than this run")
    work = args.work_dir / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    python = sys.executable
    params = {
        "students": args.students,
        "latency_s": args.latency,
        "concurrency": args.concurrency,
        "seed": args.seed,
        "today": args.today.isoformat(),
        "load_rows": args.load_rows,
        "destinations": destinations,
        "skip_models": skip_models,
    }
    results: dict[str, Any] = {
        "name": name,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "source": source_state(),
        "params": params,
        "scenarios": {},
    }
    if models_note:
        results["models"] = models_note
    if baseline:
        results["baseline"] = baseline
    scenarios: dict[str, Any] = results["scenarios"]
    models_option = ["--skip-models"] if skip_models else []

    with contextlib.ExitStack() as stack:
        cluster: PostgresCluster | None = None
        if postgres:
            log("starting a throwaway PostgreSQL cluster (the server's default settings)")
            cluster = stack.enter_context(bench_cluster())
            results["postgres"] = postgres_settings(cluster)
            log(f"PostgreSQL {results['postgres']['version']} on port {cluster.port}")
        log(f"starting the simulator ({args.students} students, {args.latency * 1000:g} ms latency)")
        sim = SimulatorProcess(args.students, args.seed, args.latency, args.today, work)
        stack.callback(sim.stop)
        results["simulator"] = {"startup_s": round(sim.startup_s, 1), "rss_after_start_mb": round(sim.rss_mb(), 1)}
        log(f"simulator up in {sim.startup_s:.1f} s on port {sim.port}")
        today = args.today.isoformat()
        server_cpu_s: dict[str, float] = {}  # the PostgreSQL server's CPU seconds during each scenario

        def measured(label: str, child_argv: list[str], env: dict[str, str]) -> tuple[ChildResult, int, float, float]:
            sim.reset()
            cpu0, busy0 = sim.cpu_s(), machine_busy_s()
            server0 = server_cpu_seconds(cluster) if cluster else 0.0
            log(f"{label} ...")
            result = run_child(child_argv, env, work, label, args.timeout)
            sim_cpu = sim.cpu_s() - cpu0
            server_cpu = server_cpu_seconds(cluster) - server0 if cluster else 0.0
            other = max(0.0, machine_busy_s() - busy0 - sim_cpu - server_cpu - result.cpu_s)
            requests = sum(sim.requests().values())
            server_cpu_s[label] = round(server_cpu, 2)
            log(
                f"{label}: {result.wall_s:.1f} s, {requests} requests, peak {result.max_rss_mb:.0f} MB, other processes"
                f" {other:.0f} CPU s"
                + (f", PostgreSQL server {server_cpu:.0f} CPU s" if cluster else "")
                + f" (exit {result.returncode})"
            )
            return result, requests, sim_cpu, other

        def with_server(label: str, fields: dict[str, Any]) -> dict[str, Any]:
            """The server's CPU during a scenario (PostgreSQL's scenarios; DuckDB's show the server idle)."""
            if cluster is not None:
                fields["postgres_server_cpu_s"] = server_cpu_s[label]
            return fields

        def postgres_env(env: dict[str, str], database: str) -> dict[str, str]:
            assert cluster is not None
            return {**env, CREDENTIALS_VARIABLE: fresh_database(cluster, database)}

        # 3. full sync (first: the floor and today's practice replay its request list)
        full_log = work / "full.requests.jsonl"
        argv_full = [python, "-m", "bench.sync_child", str(full_log), "run", "--duckdb", str(work / "full.duckdb")]
        result, requests, sim_cpu, other = measured(
            "full", [*argv_full, *models_option], sync_env(sim, today, args.concurrency)
        )
        sync_info = {**parse_sync_output(result), **rss_profile(full_log)}
        scenarios["full"] = with_server(
            "full", scenario(result, requests, sync_info["rows_received"], sim_cpu, other, **sync_info)
        )
        if result.returncode != 0:
            raise SystemExit("the full sync failed; see the log above")

        # 3b. the same full sync into a new PostgreSQL database (COPY)
        postgres_data_dir = work / "postgres.dlt"  # dlt's working dir of the PostgreSQL syncs (full, then nightly)
        postgres_sync = ["run", "--destination", "postgres", "--data-dir", str(postgres_data_dir), *models_option]
        if cluster is not None:
            env_pg = postgres_env(sync_env(sim, today, args.concurrency), "bench_sync")
            pg_log = work / "full_postgres.requests.jsonl"
            argv = [python, "-m", "bench.sync_child", str(pg_log), *postgres_sync]
            result, requests, sim_cpu, other = measured("full_postgres", argv, env_pg)
            info = {**parse_sync_output(result), **rss_profile(pg_log)}
            scenarios["full_postgres"] = with_server(
                "full_postgres", scenario(result, requests, info["rows_received"], sim_cpu, other, **info)
            )

        # 1. floor: the same requests, same concurrency, bodies discarded
        env = sync_env(sim, today, args.concurrency)
        result, requests, sim_cpu, other = measured(
            "floor", [python, "-m", "bench.floor", str(full_log), str(args.concurrency)], env
        )
        floor_info = json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else {}
        scenarios["floor"] = with_server(
            "floor",
            scenario(
                result,
                requests,
                sync_info["rows_received"],
                sim_cpu,
                other,
                bytes=floor_info.get("bytes"),
                inner_s=floor_info.get("seconds"),
            ),
        )

        # 2. today's practice: sequential, limit 1000, json.loads into memory, no load
        if "practice" not in skip:
            argv_practice = [python, "-m", "bench.practice", str(full_log)]
            result, requests, sim_cpu, other = measured("practice", argv_practice, env)
            info = json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else {}
            scenarios["practice"] = with_server(
                "practice",
                scenario(
                    result,
                    requests,
                    int(info.get("rows", 0)),
                    sim_cpu,
                    other,
                    windows=info.get("windows"),
                    inner_s=info.get("seconds"),
                ),
            )

        # 5. loading alone (before the nightly change, on the full sync's pages): the same sample into each warehouse
        if "load" not in skip:
            for key, (destination, file_format) in LOADING_ALONE.items():
                if destination not in destinations:
                    continue
                label = key.replace("loading_alone", "loadonly")
                argv = [python, "-m", "bench.loadonly", str(full_log), str(work / label), str(args.load_rows)]
                argv += ["--destination", destination] + (["--format", file_format] if file_format else [])
                env_load = postgres_env(env, label) if destination == "postgres" else env
                result, _, sim_cpu, other = measured(label, argv, env_load)
                if result.returncode == 0:
                    loading = json.loads(result.stdout.strip().splitlines()[-1])
                    loading["process_peak_rss_mb"] = round(result.max_rss_mb, 1)
                    loading["wall_s"] = round(result.wall_s, 2)  # the process, with the untimed download
                    loading["simulator_cpu_s"] = round(sim_cpu, 2)  # serving the untimed download
                    loading["other_processes_cpu_s"] = round(other, 1)
                    results[key] = with_server(label, loading)
                    log(f"{label}: {round(loading['rows_per_s']['loading_alone'])} rows/s")
                else:
                    log(f"{label} failed:\n{result.stderr[-2000:]}")

        # 4. nightly: a small change to the district, one day later, rerun into the same file (and database)
        if "nightly" not in skip:
            mutations = [
                {"action": "add_students", "count": 5},
                {"action": "change_assessment_result", "count": 20},
                {"action": "update_assessment"},
            ]
            applied = [sim.call("mutate", m) for m in mutations]
            new_today = sim.call("advance_today", {"days": 1})["today"]
            applied.append({"action": "advance_today", "today": new_today})
            try:  # a correction of a recent attendance mark (retroactive, inside the lookback)
                applied.append(
                    sim.call(
                        "mutate",
                        {
                            "action": "correct_attendance",
                            "date": _recent_school_day(full_log, new_today),
                            "flag_code": "E",
                        },
                    )
                )
            except Exception as error:  # the benchmark goes on without it
                detail = error.read().decode(errors="replace") if hasattr(error, "read") else ""
                log(f"correct_attendance failed: {error} {detail}")
            changes = [{k: v for k, v in a.items() if k in ("action", "today", "date", "student_id")} for a in applied]
            env_nightly = sync_env(sim, new_today, args.concurrency)
            nightlies = [("nightly", ["run", "--duckdb", str(work / "full.duckdb"), *models_option], env_nightly)]
            if cluster is not None and "full_postgres" in scenarios:
                env_nightly_pg = {**env_nightly, CREDENTIALS_VARIABLE: env_pg[CREDENTIALS_VARIABLE]}
                nightlies.append(("nightly_postgres", postgres_sync, env_nightly_pg))
            for label, command, env_run in nightlies:  # both after the same change
                nightly_log = work / f"{label}.requests.jsonl"
                argv = [python, "-m", "bench.sync_child", str(nightly_log), *command]
                result, requests, sim_cpu, other = measured(label, argv, env_run)
                info = {**parse_sync_output(result), **rss_profile(nightly_log)}
                scenarios[label] = with_server(
                    label,
                    scenario(result, requests, info["rows_received"], sim_cpu, other, changes=changes, **info),
                )
                per_path: dict[str, int] = {}
                for item in read_request_log(nightly_log):
                    key = re.sub(r"/\d+/", "/{id}/", item.path.strip("/"))
                    per_path[key] = per_path.get(key, 0) + 1
                scenarios[label]["requests_per_path"] = dict(sorted(per_path.items(), key=lambda kv: -kv[1]))
            # 4c. the nightly's floor: its own request list, downloaded as the floor downloads the full sync's
            nightly_log = work / "nightly.requests.jsonl"
            if nightly_log.exists():
                argv_floor = [python, "-m", "bench.floor", str(nightly_log), str(args.concurrency)]
                result, requests, sim_cpu, other = measured("nightly_floor", argv_floor, env_nightly)
                scenarios["nightly_floor"] = with_server("nightly_floor", scenario(result, requests, 0, sim_cpu, other))

        if args.profile:
            results["profile"] = profile_full_sync(sim, work, python, today, args)
        results["simulator"]["rss_end_mb"] = round(sim.rss_mb(), 1)

    results["ratios"] = ratios(scenarios)
    results["ratios"].update(postgres_ratios(results))
    results["targets"] = targets(results, args.concurrency)
    results["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"{name}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"results: {out}")
    if args.results_dir.resolve() == (BENCH_DIR / "results").resolve():  # a scratch --results-dir leaves it alone
        render_readme(args.results_dir, BENCH_DIR / "README.md")
    print(json.dumps({"ratios": results["ratios"], "targets": results["targets"]}, indent=2))
    return 0


def baseline_summary(path: Path) -> dict[str, Any]:
    """What the DuckDB full sync of an earlier run (same machine) took, to compare this run's with."""
    earlier = json.loads(path.read_text())
    full, floor = earlier["scenarios"]["full"], earlier["scenarios"].get("floor", {})
    nightly = earlier["scenarios"].get("nightly", {})
    return {
        "file": path.name,
        "started": earlier.get("started"),
        "commit": earlier.get("source", {}).get("commit"),
        "students": earlier["params"]["students"],
        "latency_s": earlier["params"]["latency_s"],
        "concurrency": earlier["params"]["concurrency"],
        "full_wall_s": full["wall_s"],
        "full_models_s": full.get("models_s"),
        "full_other_processes_cpu_s": full.get("other_processes_cpu_s"),
        "floor_wall_s": floor.get("wall_s"),
        "full_over_floor_wall": earlier.get("ratios", {}).get("full_over_floor_wall"),
        "nightly_wall_s": nightly.get("wall_s"),
        "nightly_models_s": nightly.get("models_s"),
        "nightly_requests": nightly.get("requests"),
    }


def _recent_school_day(full_log: Path, today: str) -> str:
    """The newest attendance date with marks that the full sync fetched (a school day inside the nightly lookback)."""
    days = sorted(
        {
            r.params["date"]
            for r in read_request_log(full_log)
            if r.path.startswith("Attendance/Daily")
            and "date" in r.params
            and r.params["date"] < today
            and r.nbytes > 1000
        }
    )
    return days[-1]


def py_spy_record(out: Path, target: list[str]) -> list[str]:
    """`py-spy record` of the thread holding the GIL, as a raw profile into `out`; `target` selects the process."""
    options = ["--format", "raw", "--rate", str(PY_SPY_RATE), "--gil", "--nonblocking", "-o", str(out)]
    return [str(VENV_BIN / "py-spy"), "record", *options, *target]


def profile_full_sync(
    sim: SimulatorProcess, work: Path, python: str, today: str, args: argparse.Namespace
) -> dict[str, Any]:
    """A second full sync into a new file under py-spy, with py-spy on the simulator at the same time."""
    sync_raw, sim_raw = work / "profile.sync.txt", work / "profile.simulator.txt"
    sim_spy = subprocess.Popen(
        py_spy_record(sim_raw, ["--pid", str(sim.proc.pid)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    sync_child = ["-m", "bench.sync_child", str(work / "profile.requests.jsonl"), "run", "--duckdb"]
    argv = [*py_spy_record(sync_raw, ["--threads", "--", python]), *sync_child, str(work / "profile.duckdb")]
    log("profiling a full sync (py-spy) ...")
    result = run_child(argv, sync_env(sim, today, args.concurrency), work, "profile", args.timeout)
    sim_spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
    try:
        sim_spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        sim_spy.kill()
    note = "py-spy --gil: samples of the thread holding the GIL; samples / rate = seconds of Python CPU"
    out: dict[str, Any] = {"wall_s": round(result.wall_s, 1), "rate_hz": PY_SPY_RATE, "note": note}
    for label, path, rules in (("sync", sync_raw, SYNC_RULES), ("simulator", sim_raw, SIMULATOR_RULES)):
        if path.exists():
            summary = summarise(path, rules)
            for item in summary["categories"]:  # type: ignore[union-attr]
                item["cpu_s"] = round(item["samples"] / PY_SPY_RATE, 1)
            summary["gil_busy_share_of_wall"] = round(int(summary["busy_samples"]) / PY_SPY_RATE / result.wall_s, 3)  # type: ignore[call-overload]
            out[label] = summary
    return out


def _div(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def ratios(s: dict[str, Any]) -> dict[str, float | None]:
    def get(name: str, key: str) -> float | None:
        value = s.get(name, {}).get(key)
        return float(value) if value is not None else None

    return {
        "full_over_floor_wall": _div(get("full", "wall_s"), get("floor", "wall_s")),
        "practice_over_full_wall": _div(get("practice", "wall_s"), get("full", "wall_s")),
        "nightly_over_full_requests": _div(get("nightly", "requests"), get("full", "requests")),
        # issue 18: the nightly against its own floor, once the model build (not a download) is taken off
        "nightly_less_models_over_nightly_floor_wall": _div(
            without_models_s(s["nightly"]) if "nightly" in s else None, get("nightly_floor", "wall_s")
        ),
    }


def without_models_s(run: dict[str, Any]) -> float | None:
    """A full sync's wall time less the models' build (0 when it built none): DuckDB full syncs with and without
    the models compare on this."""
    if run.get("wall_s") is None:
        return None
    return float(run["wall_s"]) - float(run.get("models_s") or 0.0)


def postgres_ratios(results: dict[str, Any]) -> dict[str, float | None]:
    """PostgreSQL against DuckDB and the floor in this run, COPY against insert_values, and this run's DuckDB full
    sync against the baseline run's. Only the ratios whose scenarios ran."""
    s, out = results["scenarios"], {}
    full, floor = s.get("full", {}), s.get("floor", {})
    pg_full, pg_nightly = s.get("full_postgres"), s.get("nightly_postgres")
    if pg_full:
        out["postgres_full_over_floor_wall"] = _div(pg_full["wall_s"], floor.get("wall_s"))
        out["postgres_full_over_duckdb_full_wall"] = _div(pg_full["wall_s"], full.get("wall_s"))
    if pg_nightly:
        duckdb_nightly = s.get("nightly", {}).get("wall_s")
        out["postgres_nightly_over_duckdb_nightly_wall"] = _div(pg_nightly["wall_s"], duckdb_nightly)
        out["postgres_nightly_over_full_requests"] = _div(pg_nightly["requests"], pg_full and pg_full["requests"])

    def rps(key: str, step: str) -> float | None:
        value = results.get(key, {}).get("rows_per_s", {}).get(step)
        return float(value) if value is not None else None

    if "loading_alone_postgres" in results:
        out["postgres_loading_alone_over_duckdb"] = _div(
            rps("loading_alone_postgres", "loading_alone"), rps("loading_alone", "loading_alone")
        )
        load_step = rps("loading_alone_postgres", "load")
        out["postgres_load_step_over_duckdb"] = _div(load_step, rps("loading_alone", "load"))
    if "loading_alone_postgres_insert_values" in results:
        ref = "loading_alone_postgres_insert_values"
        out["postgres_csv_over_insert_values_loading_alone"] = _div(
            rps("loading_alone_postgres", "loading_alone"), rps(ref, "loading_alone")
        )
        out["postgres_csv_over_insert_values_dlt"] = _div(
            rps("loading_alone_postgres", "dlt_extract_normalize_load"), rps(ref, "dlt_extract_normalize_load")
        )
        out["postgres_csv_over_insert_values_load_step"] = _div(rps("loading_alone_postgres", "load"), rps(ref, "load"))
    baseline = results.get("baseline")
    if baseline and full:
        out["duckdb_full_over_baseline_wall"] = _div(full["wall_s"], baseline["full_wall_s"])
        earlier = {"wall_s": baseline["full_wall_s"], "models_s": baseline.get("full_models_s")}
        out["duckdb_full_over_baseline_without_models"] = _div(without_models_s(full), without_models_s(earlier))
        nightly = s.get("nightly")
        if nightly and baseline.get("nightly_wall_s"):
            out["duckdb_nightly_over_baseline_wall"] = _div(nightly["wall_s"], baseline["nightly_wall_s"])
            earlier = {"wall_s": baseline["nightly_wall_s"], "models_s": baseline.get("nightly_models_s")}
            out["duckdb_nightly_over_baseline_without_models"] = _div(
                without_models_s(nightly), without_models_s(earlier)
            )
    return out


def targets(results: dict[str, Any], concurrency: int) -> dict[str, Any]:
    r, s = results["ratios"], results["scenarios"]
    loading = results.get("loading_alone", {}).get("rows_per_s", {}).get("loading_alone")
    peak = s.get("full", {}).get("peak_rss_mb")
    out: dict[str, Any] = {
        "full_within_1.25x_floor": None if r["full_over_floor_wall"] is None else r["full_over_floor_wall"] <= 1.25,
        "6x_faster_than_practice": None if r["practice_over_full_wall"] is None else r["practice_over_full_wall"] >= 6,
        "peak_memory_below_400mb": None if peak is None else peak < 400,
        "nightly_at_most_5pct_requests": None
        if r["nightly_over_full_requests"] is None
        else r["nightly_over_full_requests"] <= 0.05,
        "loading_alone_100k_rows_per_s": None if loading is None else loading >= 100_000,
    }

    def at_most(ratio: str, bound: float) -> bool | None:
        return None if r.get(ratio) is None else r[ratio] <= bound

    def at_least(ratio: str, bound: float) -> bool | None:
        return None if r.get(ratio) is None else r[ratio] >= bound

    if results["params"].get("latency_s", 0) >= 0.2:  # issue 18's targets, where the network is the limit
        out["full_within_1.15x_floor"] = at_most("full_over_floor_wall", 1.15)
        out["nightly_within_1.5x_own_floor_plus_models"] = at_most("nightly_less_models_over_nightly_floor_wall", 1.5)
    if "postgres" in results["params"].get("destinations", []):
        out["postgres_loading_alone_at_least_0.8x_duckdb"] = at_least("postgres_loading_alone_over_duckdb", 0.8)
        out["postgres_copy_faster_than_insert_values"] = at_least("postgres_csv_over_insert_values_loading_alone", 1.0)
        out["postgres_full_within_1.3x_floor"] = at_most("postgres_full_over_floor_wall", 1.3)
    if "baseline" in results:
        # models built or not: compared without their build time (see without_models_s)
        out["duckdb_full_no_slower_than_baseline"] = at_most("duckdb_full_over_baseline_without_models", 1.0)
        out["duckdb_nightly_no_slower_than_baseline"] = at_most("duckdb_nightly_over_baseline_without_models", 1.0)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
