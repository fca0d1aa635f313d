"""Render bench/results/*.json into the results section of bench/README.md.

Usage: python -m bench.report   (run.py calls it after each run)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

START, END = "<!-- results:start -->", "<!-- results:end -->"
LABELS = {
    "floor": "1. floor (same requests, same concurrency, bodies discarded)",
    "practice": "2. today's practice (sequential, limit 1000, json.loads)",
    "full": "3. full sync (`illuminate-sync run`, new DuckDB file)",
    "nightly": "4. nightly sync (rerun after a small change, +1 day)",
}


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "met" if value else "**missed**"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def render_result(result: dict[str, Any]) -> str:
    p, m, s = result["params"], result["machine"], result["scenarios"]
    lines = [
        f"### {result['name']}: {p['students']:,} students, {p['latency_s'] * 1000:g} ms latency, concurrency"
        f" {p['concurrency']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, {m['os']}. Seed"
        f" {p['seed']}, today {p['today']}. Run {result['started']}. Simulator start-up"
        f" {result['simulator']['startup_s']} s, {result['simulator']['rss_after_start_mb']:,.0f} MB."
        + (
            f" Code: commit {result['source']['commit']}, tree {result['source']['tree_sha1']}, uncommitted:"
            f" {', '.join(result['source']['uncommitted']) or 'none'}."
            if result.get("source")
            else ""
        ),
        "",
        "| scenario | wall s | requests | rows | rows/s | peak RSS MB | CPU s (process) | simulator CPU s |"
        " other processes CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in ("floor", "practice", "full", "nightly"):
        if key in s:
            x = s[key]
            lines.append(
                f"| {LABELS[key]} | {_fmt(x['wall_s'])} | {_fmt(x['requests'])} | {_fmt(x['rows'])} |"
                f" {_fmt(x['rows_per_s'])} | {_fmt(x['peak_rss_mb'], 0)} | {_fmt(x['cpu_s'])} |"
                f" {_fmt(x['simulator_cpu_s'])} | {_fmt(max(0.0, x.get('other_processes_cpu_s') or 0.0))} |"
            )
    r = result["ratios"]
    if "full" in s:
        ideal = s["full"]["requests"] * p["latency_s"] / p["concurrency"]
        lines += [
            "",
            f"Ideal network floor (full sync's requests x latency / concurrency, an infinitely fast server):"
            f" {ideal:,.1f} s; full sync / ideal floor {s['full']['wall_s'] / ideal:,.1f}.",
        ]
        full = s["full"]
        if full.get("peak_rss_while_downloading_mb") is not None:
            lines += [
                "",
                f"Full sync memory: peak {full['peak_rss_while_downloading_mb']:,.0f} MB while downloading (extract),"
                f" {full['peak_rss_after_last_request_mb']:,.0f} MB after the last request (normalize, load, summary,"
                f" models; {full.get('seconds_after_last_request')} s).",
            ]
    lines += [
        "",
        f"Ratios: full / floor **{_fmt(r['full_over_floor_wall'], 2)}** (target <= 1.25); today's practice / full"
        f" **{_fmt(r['practice_over_full_wall'], 2)}** (target >= 6); nightly / full requests"
        f" **{_fmt(r['nightly_over_full_requests'], 3)}** (target <= 0.05).",
    ]
    loading = result.get("loading_alone")
    if loading:
        rps, secs = loading["rows_per_s"], loading["seconds"]
        lines += [
            "",
            f"Loading alone ({loading['rows']:,} rows of {', '.join(loading['rows_by_table'])}, already downloaded):"
            f" **{_fmt(rps['loading_alone'], 0)} rows/s** end to end (target >= 100,000) — parse"
            f" {secs['parse']} s, convert {secs['convert']} s"
            + (
                f" (CPU; {secs['parse_convert_wall']} s of wall on one thread per core)"
                if "parse_convert_wall" in secs
                else ""
            )
            + f", dedupe {secs['dedupe']} s, dlt extract"
            f" {secs['extract']} s, normalize {secs['normalize']} s, load {secs['load']} s"
            f" (convert alone {_fmt(rps['convert'], 0)} rows/s, dlt alone {_fmt(rps['dlt_extract_normalize_load'], 0)}"
            " rows/s).",
        ]
    t = result["targets"]
    lines += ["", "Targets: " + "; ".join(f"{name} {_fmt(value)}" for name, value in t.items()) + "."]
    profile = result.get("profile")
    if profile:
        for label in ("sync", "simulator"):
            if label in profile:
                data = profile[label]
                busy = [c for c in data["categories"] if not c["category"].startswith("waiting")]
                top = ", ".join(f"{c['category']} {c['cpu_s']} s ({c['share'] * 100:.0f} %)" for c in busy[:8])
                gil = data.get("gil_busy_share_of_wall")
                held = f"; GIL held {gil * 100:.0f} % of the {profile['wall_s']} s wall" if gil is not None else ""
                lines += [
                    "",
                    f"Profile of the {label} process (py-spy --gil: Python CPU with the GIL held{held}): {top}.",
                ]
    return "\n".join(lines)


def render_scaling(results: list[dict[str, Any]]) -> str:
    """One line per run: how the full sync's time, requests and memory grow with the district."""
    lines = [
        "### Scaling with district size",
        "",
        "| students | full sync s | requests | rows | full / floor | ideal floor s | full / ideal | peak RSS MB |"
        " peak while downloading MB | peak after last request MB | s after last request | nightly / full requests |"
        " other processes CPU s (full) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        p, full = result["params"], result["scenarios"].get("full")
        if not full:
            continue
        ideal = full["requests"] * p["latency_s"] / p["concurrency"]
        lines.append(
            f"| {p['students']:,} | {_fmt(full['wall_s'])} | {_fmt(full['requests'])} | {_fmt(full['rows'])} |"
            f" {_fmt(result['ratios']['full_over_floor_wall'], 2)} | {ideal:,.1f} | {full['wall_s'] / ideal:,.1f} |"
            f" {_fmt(full['peak_rss_mb'], 0)} | {_fmt(full.get('peak_rss_while_downloading_mb'), 0)} |"
            f" {_fmt(full.get('peak_rss_after_last_request_mb'), 0)} | {_fmt(full.get('seconds_after_last_request'))} |"
            f" {_fmt(result['ratios']['nightly_over_full_requests'], 3)} | {_fmt(full.get('other_processes_cpu_s'))} |"
        )
    return "\n".join(lines)


def render_readme(results_dir: Path, readme: Path) -> None:
    files = sorted(results_dir.glob("*.json"), key=lambda f: json.loads(f.read_text())["params"]["students"])
    results = [json.loads(f.read_text()) for f in files]
    body = "\n\n".join([render_scaling(results), *(render_result(result) for result in results)])
    section = f"{START}\n{body}\n{END}"
    text = readme.read_text() if readme.exists() else f"# Benchmark\n\n## Results\n\n{START}\n{END}\n"
    if START in text and END in text:
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        text = head + section + tail
    else:
        text += "\n" + section + "\n"
    readme.write_text(text)


def main() -> int:
    here = Path(__file__).resolve().parent
    render_readme(here / "results", here / "README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
