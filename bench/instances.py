"""Several instances: `run --all-instances` against each instance alone, one after another, and the floors.

Usage: python -m bench.instances [--instances 4] [--students 1000] [--latency 0.2] [--concurrency 8]

N simulators (seeds 1..N, each its own process, the given latency per request) are declared as instances
`i1..iN`. Measured in one run, on the same simulators and the same data (request counters reset in between):

1. **Each alone**: `illuminate-sync run --duckdb alone_<k>.duckdb --instance i<k>`, one after another (so also
   "one after another": the sum of their walls). Each logs its request list (`bench.sync_child`).
2. **Floors**: each instance's request list replayed by `bench.floor` at its concurrency, one after another (each
   instance's floor) and all N at the same time (the floor of the instances together).
3. **Together**: `illuminate-sync run --duckdb together.duckdb --all-instances`, with
   `SOURCES__ILLUMINATE__NETWORK_MAX_CONCURRENCY` = N x the concurrency (no instance held below its own limit).

Ratios: together / slowest alone (target <= 1.3), together / floors together, together / one after another,
peak memory together / the largest alone (target <= 1.5). Results in `bench/results/instances/<name>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import PREFIX, ChildResult, run_child
from bench.run import BENCH_DIR, SimulatorProcess, log, machine, machine_busy_s, parse_sync_output, source_state

RESULTS = BENCH_DIR / "results" / "instances"
"""Beside, not among, the sync benchmark's results (`bench.report` reads every `results/*.json` as one of those)."""


def instance_env(sims: list[SimulatorProcess], today: str, concurrency: int) -> dict[str, str]:
    """Every simulator declared as instance `i<k>` (OAuth1), nothing of the single instance but today."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(PREFIX)}
    env[f"{PREFIX}TODAY"] = today
    env[f"{PREFIX}NETWORK_MAX_CONCURRENCY"] = str(concurrency * len(sims))
    for number, sim in enumerate(sims, start=1):
        prefix = f"{PREFIX}INSTANCES__I{number}__"
        for name, value in sim.env.items():
            if "CLIENT_" not in name:
                env[prefix + name.removeprefix(PREFIX)] = value
        env[f"{prefix}MAX_CONCURRENCY"] = str(concurrency)
    return env


def single_env(sim: SimulatorProcess) -> dict[str, str]:
    """The floor's environment: the simulator's base URL and OAuth1 keys as the single instance's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(PREFIX)}
    env.update({name: value for name, value in sim.env.items() if "CLIENT_" not in name})
    return env


def measured(result: ChildResult, requests: int, other_cpu: float) -> dict[str, Any]:
    if result.returncode != 0:
        log(f"failed ({result.returncode}): {' '.join(result.argv)}\n{result.stderr[-2000:]}")
    return {
        "ok": result.returncode == 0 and not result.timed_out,
        "wall_s": round(result.wall_s, 2),
        "requests": requests,
        "peak_rss_mb": round(result.max_rss_mb, 1),
        "cpu_s": round(result.cpu_s, 2),
        "other_processes_cpu_s": round(other_cpu, 1),
    }


def served(sims: list[SimulatorProcess]) -> int:
    return sum(sum(sim.requests().values()) for sim in sims)


def reset(sims: list[SimulatorProcess]) -> None:
    for sim in sims:
        sim.reset()


def timed(sims: list[SimulatorProcess], argv: list[str], env: dict[str, str], work: Path, name: str) -> dict[str, Any]:
    """One child process, measured (wall, peak RSS, CPU, requests served, the machine's other CPU meanwhile)."""
    reset(sims)
    busy = machine_busy_s()
    result = run_child(argv, env, work, name)
    other = machine_busy_s() - busy - result.cpu_s
    outcome = measured(result, served(sims), other)
    outcome["sync"] = parse_sync_output(result)
    return outcome


def floors_together(sims: list[SimulatorProcess], logs: list[Path], concurrency: int, work: Path) -> dict[str, Any]:
    """Every instance's floor at the same time: N processes started together; the wall is the last one's end."""
    import subprocess

    reset(sims)
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.floor", str(path), str(concurrency)],
            env=single_env(sim),
            stdout=(work / f"floor_together_{number}.stdout").open("wb"),
            stderr=subprocess.DEVNULL,
        )
        for number, (sim, path) in enumerate(zip(sims, logs, strict=True), start=1)
    ]
    codes = [process.wait() for process in processes]
    return {"ok": not any(codes), "wall_s": round(time.monotonic() - started, 2), "requests": served(sims)}


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    today = date.fromisoformat(args.today)
    python = sys.executable
    sims = [
        SimulatorProcess(args.students, seed, args.latency, today, work / f"sim{seed}")
        for seed in range(1, args.instances + 1)
    ]
    try:
        env = instance_env(sims, args.today, args.concurrency)
        results: dict[str, Any] = {"alone": [], "floors": []}
        logs = []
        for number in range(1, args.instances + 1):
            request_log = work / f"alone_{number}.requests.jsonl"
            database = work / f"alone_{number}.duckdb"
            database.unlink(missing_ok=True)
            logs.append(request_log)
            argv = [python, "-m", "bench.sync_child", str(request_log), "run", "--duckdb", str(database)]
            log(f"instance i{number} alone")
            results["alone"].append(timed(sims, [*argv, "--instance", f"i{number}"], env, work, f"alone_{number}"))
        for number, (sim, request_log) in enumerate(zip(sims, logs, strict=True), start=1):
            log(f"floor of i{number}")
            argv = [python, "-m", "bench.floor", str(request_log), str(args.concurrency)]
            results["floors"].append(timed(sims, argv, single_env(sim), work, f"floor_{number}"))
        log("floors together")
        results["floors_together"] = floors_together(sims, logs, args.concurrency, work)
        log("all instances together")
        together_db = work / "together.duckdb"
        together_db.unlink(missing_ok=True)
        argv = [python, "-m", "bench.sync_child", str(work / "together.requests.jsonl"), "run", "--duckdb"]
        results["together"] = timed(sims, [*argv, str(together_db), "--all-instances"], env, work, "together")
    finally:
        for sim in sims:
            sim.stop()
    results["ratios"] = ratios(results)
    return results


def ratios(results: dict[str, Any]) -> dict[str, float]:
    alone = [run["wall_s"] for run in results["alone"]]
    together = results["together"]
    return {
        "together_over_slowest_alone": round(together["wall_s"] / max(alone), 3),
        "together_over_one_after_another": round(together["wall_s"] / sum(alone), 3),
        "together_over_floors_together": round(together["wall_s"] / results["floors_together"]["wall_s"], 3),
        "together_over_sum_of_floors": round(together["wall_s"] / sum(f["wall_s"] for f in results["floors"]), 3),
        "peak_together_over_largest_alone": round(
            together["peak_rss_mb"] / max(run["peak_rss_mb"] for run in results["alone"]), 3
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--today", default="2026-11-27")
    parser.add_argument("--work-dir", default="/tmp/illuminate-bench-instances")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    name = (
        args.name or f"instances-{args.instances}x{args.students}-l{round(args.latency * 1000)}ms-c{args.concurrency}"
    )
    results = {
        "scenario": vars(args),
        "machine": machine(),
        "source": source_state(),
        **run_bench(args),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["ratios"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
