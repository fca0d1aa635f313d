"""`max_concurrency = auto` against fixed concurrencies, on a simulated server with a capacity and a rate limit.

Usage: python -m bench.adaptive [--students 1000] [--latency 0.2] [--workers 12] [--rate-limit 40]
                                [--fixed 4,8,12,16,24] [--ceiling 16]

One simulator process (the given latency per request) with `--workers` workers (requests beyond them queue, so
latency grows with load) and a token-bucket rate limit answered with 429 + `Retry-After` (set through its control
API). On the same district, one after another, each a full first sync into a new DuckDB file without the SQL models
(`illuminate-sync run --skip-models`, through `bench.sync_child`), with `SOURCES__ILLUMINATE__MAX_CONCURRENCY` = each
fixed number, then `auto` (`SOURCES__ILLUMINATE__MAX_CONCURRENCY_CEILING` = `--ceiling`). Before each: request
counters zeroed and the token bucket refilled.

Per configuration: wall time, requests that reached the server, requests served, answered 429 (and their share), API
requests served per second (the throughput), the most requests the server had in flight, and for `auto` what its
limit did (from the run's summary line: start, final, highest, lowest, at most N in flight, backoffs). Compared: auto's
throughput / the best fixed one's (target >= 0.9), auto's share of 429s (target < 1 %), auto's most in flight <= the
ceiling. Results in `bench/results/adaptive/<name>.json`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import PREFIX, run_child
from bench.run import BENCH_DIR, SimulatorProcess, log, machine, machine_busy_s, source_state, sync_env

RESULTS = BENCH_DIR / "results" / "adaptive"
"""A folder of its own: `bench.report` renders every `results/*.json` as a sync benchmark's."""
AUTO_LINE = re.compile(
    r"concurrency auto: (?P<start>\d+) -> (?P<final>\d+) \(highest (?P<highest>\d+), lowest (?P<lowest>\d+),"
    r" ceiling (?P<ceiling>\d+)\), at most (?P<max_in_flight>\d+) in flight, (?P<backoffs>\d+) backoffs?"
)
TARGET_THROUGHPUT_SHARE = 0.9
TARGET_429_SHARE = 0.01


def one_sync(sim: SimulatorProcess, setting: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """A full sync at `setting` (a number or "auto"), measured against the server's counters."""
    capacity = {"workers": args.workers, "rate_limit": args.rate_limit, "rate_limit_burst": args.burst}
    sim.call("capacity", {"rate_limit": None})  # cleared and set again: a full bucket for every configuration
    sim.call("capacity", capacity)
    sim.call("capacity/reset")
    sim.reset()
    env = sync_env(sim, args.today, 0)
    env[f"{PREFIX}MAX_CONCURRENCY"] = setting
    env[f"{PREFIX}MAX_CONCURRENCY_CEILING"] = str(args.ceiling)
    database = work / f"c{setting}.duckdb"
    database.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "bench.sync_child", str(work / f"c{setting}.requests.jsonl"), "run"]
    argv += ["--duckdb", str(database), "--skip-models"]
    busy = machine_busy_s()
    result = run_child(argv, env, work, f"c{setting}", timeout=args.timeout)
    other = machine_busy_s() - busy - result.cpu_s
    stats = sim.call("capacity", method="GET")
    arrived = sum(sim.requests().values())
    outcome: dict[str, Any] = {
        "setting": setting,
        "ok": result.returncode == 0 and not result.timed_out,
        "wall_s": round(result.wall_s, 2),
        "requests_arrived": arrived,
        "served": stats["served"],
        "answered_429": stats["rate_limited"],
        "share_429": round(stats["rate_limited"] / arrived, 4) if arrived else None,
        "served_per_s": round(stats["served"] / result.wall_s, 2),
        "server_max_in_flight": stats["max_in_flight"],
        "server_max_queued": stats["max_queued"],
        "cpu_s": round(result.cpu_s, 1),
        "other_processes_cpu_s": round(other, 1),
    }
    match = AUTO_LINE.search(result.stdout)
    if match:
        outcome["auto"] = {key: int(value) for key, value in match.groupdict().items()}
    if not outcome["ok"]:
        log(f"{setting} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return outcome


def compare(runs: list[dict[str, Any]], ceiling: int) -> dict[str, Any]:
    """auto against the best fixed configuration, and the targets."""
    fixed = [run for run in runs if run["setting"] != "auto" and run["ok"]]
    auto = next(run for run in runs if run["setting"] == "auto")
    best = max(fixed, key=lambda run: run["served_per_s"])
    share = auto["served_per_s"] / best["served_per_s"]
    most = auto.get("auto", {}).get("max_in_flight")
    return {
        "best_fixed": best["setting"],
        "auto_over_best_fixed_throughput": round(share, 3),
        "auto_wall_over_best_fixed_wall": round(auto["wall_s"] / best["wall_s"], 3),
        "auto_share_429": auto["share_429"],
        "auto_max_in_flight": most,
        "targets_met": {
            "throughput_at_least_90_percent_of_best_fixed": share >= TARGET_THROUGHPUT_SHARE,
            "under_1_percent_429": (auto["share_429"] or 0) < TARGET_429_SHARE,
            "never_above_the_ceiling": most is not None and most <= ceiling,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--rate-limit", type=float, default=40.0)
    parser.add_argument("--burst", type=int, default=None, help="the token bucket's size (default: 1 s of the rate)")
    parser.add_argument("--fixed", default="4,8,12,16,24")
    parser.add_argument("--ceiling", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--today", default="2026-11-27")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--work-dir", default="/tmp/illuminate-bench-adaptive")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    name = args.name or (
        f"adaptive-s{args.students}-l{round(args.latency * 1000)}ms-w{args.workers}-r{args.rate_limit:g}"
    )
    sim = SimulatorProcess(args.students, args.seed, args.latency, date.fromisoformat(args.today), work / "sim")
    runs = []
    try:
        for setting in [*args.fixed.split(","), "auto"]:
            log(f"max_concurrency={setting}")
            runs.append(one_sync(sim, setting.strip(), args, work))
            log(json.dumps(runs[-1]))
    finally:
        sim.stop()
    results = {
        "scenario": vars(args),
        "machine": machine(),
        "source": source_state(),
        "runs": runs,
        "comparison": compare(runs, args.ceiling),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["comparison"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
